// Reading mail: a message with a PDF is sent through the sender API
// (`kuvert send`), Anna logs in, sees it unread in the inbox, opens it,
// downloads the attachment (it is a PDF), archives it and finds it in the
// archive. Every page passes pageBasics; the inbox and the message are
// photographed on a phone and a desktop. Then a keyboard-only walk: the
// skip link, a message link, Enter, the attachment link, each focused
// element checked and its focus outline visible.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { check, lastDocument, loginAs, pageBasics, settings, shoot, trackDocuments, viewports } from "../lib.mjs";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const ANNA = "198001012387";

/// `kuvert send` against the test instance, as a sender would; waits for
/// the final status.
export function send(kuvert, subject, extra = []) {
  const out = execFileSync(
    settings.kuvertBin,
    ["send", "--data", kuvert.data, "--url", kuvert.url, "--to", ANNA, "--subject", subject, "--wait", ...extra],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  return JSON.parse(out);
}

/// What has keyboard focus: its tag, classes, text and whether its focus
/// outline shows.
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    const style = el ? getComputedStyle(el) : null;
    return {
      tag: el?.tagName.toLowerCase(),
      className: el?.className ?? "",
      text: (el?.textContent ?? "").trim().slice(0, 80),
      href: el?.getAttribute?.("href") ?? "",
      outline: style ? style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2 : false,
    };
  });
}

/// Presses Tab until `matches(focused)` (at most `limit` times), checking
/// that every element on the way shows its focus.
async function tabTo(page, what, matches, limit = 20) {
  for (let i = 0; i < limit; i += 1) {
    await page.keyboard.press("Tab");
    const now = await focused(page);
    check(now.outline, `keyboard: focus is visible on ${now.tag}.${now.className} "${now.text}"`);
    if (matches(now)) return now;
  }
  check(false, `keyboard: ${what} reached within ${limit} Tabs`);
  return null;
}

export default async function mailbox({ browser, kuvert }) {
  const subject = "Beslut om bygglov";
  const status = send(kuvert, subject, [
    "--body",
    "Hej!\n\nDin ansökan om bygglov är beviljad.\nBeslutet finns som bilaga.",
    "--attach",
    join(repo, "docs", "examples", "beslut.pdf"),
  ]);
  check(status.status === "delivered", `the message was delivered (${JSON.stringify(status).slice(0, 200)})`);

  const context = await browser.newContext({ viewport: viewports.desktop, acceptDownloads: true });
  const page = await context.newPage();
  trackDocuments(page);
  await loginAs(page, kuvert.url, "Anna Andersson");

  // The start page links the inbox.
  await Promise.all([page.waitForLoadState("load"), page.click("a[href='/inbox']")]);
  await pageBasics(page, "inbox", { testBanner: true });
  const item = page.locator("li.unread", { hasText: subject });
  check((await item.count()) === 1, "the message is listed unread");
  check(/Oläst/.test((await item.textContent()) ?? ""), "unread is said in words, not by colour alone");
  check(/\d+ olästa?/.test((await page.textContent(".counts")) ?? ""), "the unread count is shown");
  await shoot(page, "inbox");

  // Open it.
  await Promise.all([page.waitForLoadState("load"), item.locator("a.message-link").click()]);
  await pageBasics(page, "message", { testBanner: true });
  const text = (await page.textContent("main")) ?? "";
  check(text.includes(subject), "the message page shows the subject");
  check(text.includes("Levererat (rättslig leveranstidpunkt)"), "the legal moment of delivery is stated");
  check(text.includes("Din ansökan om bygglov är beviljad."), "the body is shown");
  const lines = await page.evaluate(() => getComputedStyle(document.querySelector(".body-text")).whiteSpace);
  check(lines === "pre-wrap", `line breaks are kept (${lines})`);
  check(/beslut\.pdf/.test(text) && /\d+(,\d)? (byte|kB|MB)/.test(text), "the attachment with its name and size");
  await shoot(page, "message");

  // Download the attachment: a PDF.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click(".attachments a")]);
  const bytes = readFileSync(await download.path());
  check(bytes.subarray(0, 4).toString("latin1") === "%PDF", "the attachment downloads as a PDF");
  check(download.suggestedFilename() === "beslut.pdf", `its name is kept (${download.suggestedFilename()})`);

  // Back in the inbox, it is read now.
  await page.goto(`${kuvert.url}/inbox`);
  check((await page.locator("li.unread", { hasText: subject }).count()) === 0, "opened: no longer unread");

  // The keyboard walk: skip link, a message link, Enter, the attachment.
  await page.goto(`${kuvert.url}/inbox`);
  const skip = await tabTo(page, "the skip link", (f) => f.className.includes("skip"), 1);
  check(skip !== null, "keyboard: the first Tab reaches the skip link");
  await page.keyboard.press("Enter");
  check(page.url().endsWith("#main"), `keyboard: the skip link goes to the content (${page.url()})`);
  const link = await tabTo(page, "a message link", (f) => f.className.includes("message-link"));
  check(link !== null && /\/messages\//.test(link.href), "keyboard: a message link has focus");
  await Promise.all([page.waitForURL(/\/messages\//), page.keyboard.press("Enter")]);
  check(/\/messages\/[0-9a-f-]+$/.test(page.url()), `keyboard: Enter opens the message (${page.url()})`);
  const attachment = await tabTo(page, "the attachment link", (f) => /\/attachments\/0$/.test(f.href), 30);
  check(attachment !== null, "keyboard: the attachment link has focus");

  // Archive it, from the message page; it is in the archive then.
  await page.goto(`${kuvert.url}/inbox`);
  await Promise.all([page.waitForLoadState("load"), page.locator("li", { hasText: subject }).locator("a.message-link").click()]);
  await Promise.all([page.waitForLoadState("load"), page.click("form.archive button")]);
  check(new URL(page.url()).pathname === "/inbox", `archived: back in the inbox (${page.url()})`);
  check((await page.locator("li", { hasText: subject }).count()) === 0, "archived: not in the inbox");
  await page.goto(`${kuvert.url}/inbox?folder=archive`);
  await pageBasics(page, "archive", { testBanner: true });
  check((await page.locator("li", { hasText: subject }).count()) === 1, "archived: in the archive");
  await shoot(page, "archive");
  await Promise.all([page.waitForLoadState("load"), page.locator("li", { hasText: subject }).locator("form.archive button").click()]);
  await page.goto(`${kuvert.url}/inbox`);
  check((await page.locator("li", { hasText: subject }).count()) === 1, "moved back: in the inbox again");

  // At 320 px (and so at 200 % zoom of a 640 px window) nothing needs a
  // sideways scroll.
  await page.setViewportSize({ width: 320, height: 640 });
  for (const path of ["/inbox?folder=archive", "/inbox"]) {
    await page.goto(`${kuvert.url}${path}`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 320, `${path} fits 320 px (${wide})`);
  }
  await page.locator("a.message-link").first().click();
  await page.waitForURL(/\/messages\//);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 320, `the message page fits 320 px (${wide})`);
  await page.setViewportSize(viewports.desktop);

  // An HTML body: shown in its sandboxed frame, the page's CSP unchanged.
  send(kuvert, "Kallelse till möte", [
    "--html",
    "--body",
    "<h2>Kallelse</h2><p>Välkommen till ett möte om ditt <strong>bygglov</strong> den 14 december kl. 10.</p><ul><li>Ta med legitimation.</li><li>Ring oss om tiden inte passar.</li></ul>",
  ]);
  await page.goto(`${kuvert.url}/inbox`);
  await Promise.all([page.waitForLoadState("load"), page.locator("li", { hasText: "Kallelse till möte" }).locator("a.message-link").click()]);
  await pageBasics(page, "message (HTML body)", { testBanner: true });
  const frame = page.frames().find((f) => f.url().endsWith("/body"));
  check(Boolean(frame) && /Välkommen till ett möte/.test((await frame?.textContent("body")) ?? ""), "the HTML body shows in its frame");
  check((await page.getAttribute("iframe.body-frame", "sandbox")) === "", "the frame is sandboxed, nothing allowed");
  await shoot(page, "message-html");

  // In English.
  await page.goto(`${kuvert.url}/inbox?lang=en`);
  await pageBasics(page, "inbox (English)", { testBanner: true });
  check(/unread/.test((await page.textContent(".counts")) ?? ""), "the inbox in English");
  check(lastDocument.get(page)?.status() === 200, "the English inbox answers 200");
  await context.close();
}
