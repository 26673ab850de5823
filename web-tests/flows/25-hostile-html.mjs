// Hostile HTML: each payload of ../shared/vectors/xss/ (DOMPurify's test
// vectors) is sent as a text/html body through the sender API; those the
// intake accepts are opened on the message page with every request, dialog,
// console message and navigation hooked. Nothing may run (no dialog), no
// request may leave for anything but kuvert's own page, stylesheet and body
// URLs, and the top page may not navigate. Prints how many were accepted
// and shown.

import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { check, loginAs, settings, trackDocuments, viewports } from "../lib.mjs";
import { ANNA } from "./20-mailbox.mjs";

const run = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const vectors = join(repo, "..", "shared", "vectors", "xss", "dompurify-payloads.json");

/// Sends every payload (a few at a time); returns the subjects accepted.
async function sendAll(kuvert, payloads) {
  const folder = mkdtempSync(join(tmpdir(), "kuvert-xss-"));
  const accepted = [];
  const refused = {};
  const queue = payloads.map((p, i) => ({ ...p, i }));
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const file = join(folder, `${job.i}.html`);
      writeFileSync(file, job.payload);
      const subject = `XSS ${String(job.i).padStart(3, "0")}`;
      try {
        await run(settings.kuvertBin, [
          "send", "--data", kuvert.data, "--url", kuvert.url, "--to", ANNA,
          "--subject", subject, "--html", "--body-file", file, "--wait",
        ]);
        accepted.push(subject);
      } catch (e) {
        // Refused at intake (unsafe_html and the like): never stored.
        const code = /"code"\s*:\s*"([^"]+)"/.exec(`${e.stdout}${e.stderr}`)?.[1] ?? "other";
        refused[code] = (refused[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  rmSync(folder, { recursive: true, force: true });
  return { accepted: accepted.sort(), refused };
}

/// The message links of the archive-less inbox, all pages, by subject.
async function messageLinks(page, url) {
  const links = new Map();
  let next = `${url}/inbox?page_size=100`;
  while (next) {
    await page.goto(next);
    for (const a of await page.locator("a.message-link").all()) {
      const subject = ((await a.locator(".subject").textContent()) ?? "").trim();
      links.set(subject, await a.getAttribute("href"));
    }
    const more = page.locator("a[rel='next']");
    next = (await more.count()) > 0 ? new URL(await more.getAttribute("href"), url).href : null;
  }
  return links;
}

export default async function hostileHtml({ browser, kuvert }) {
  const payloads = JSON.parse(readFileSync(vectors, "utf8"));
  const { accepted, refused } = await sendAll(kuvert, payloads);

  const context = await browser.newContext({ viewport: viewports.desktop });
  const page = await context.newPage();
  trackDocuments(page);
  await loginAs(page, kuvert.url, "Anna Andersson");
  const links = await messageLinks(page, kuvert.url);

  // From here on, every request is looked at: only kuvert's own message
  // page, its stylesheet and the message's body frame may be fetched.
  const origin = new URL(kuvert.url).origin;
  let current = null;
  const leaks = [];
  await context.route("**/*", (route) => {
    const url = new URL(route.request().url());
    const own =
      url.origin === origin &&
      (url.pathname === "/static/kuvert.css" ||
        (current && (url.pathname === current || url.pathname === `${current}/body`)));
    if (own) return route.continue();
    leaks.push(`${current}: ${route.request().url()}`);
    return route.abort();
  });
  const dialogs = [];
  page.on("dialog", (d) => {
    dialogs.push(`${current}: ${d.type()} ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  let consoleMessages = 0;
  page.on("console", () => {
    consoleMessages += 1; // CSP reports of what was blocked, among others
  });
  const topNavigations = [];
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame() && current && new URL(frame.url()).pathname !== current) {
      topNavigations.push(`${current} -> ${frame.url()}`);
    }
  });

  let shown = 0;
  for (const subject of accepted) {
    const href = links.get(subject);
    check(Boolean(href), `${subject}: accepted, so listed in the inbox`);
    if (!href) continue;
    current = href;
    const response = await page.goto(`${kuvert.url}${href}`, { waitUntil: "load" });
    check(response?.status() === 200, `${subject}: the message page answers 200`);
    const frame = page.frames().find((f) => f.url().endsWith(`${href}/body`));
    check(Boolean(frame), `${subject}: the body is in its own frame`);
    const sandbox = await page.getAttribute("iframe.body-frame", "sandbox");
    check(sandbox === "", `${subject}: the frame is sandboxed with no allowances (${sandbox})`);
    // A moment for anything delayed (a timer, a late image) to show itself.
    await page.waitForTimeout(50);
    shown += 1;
  }
  // As if the sanitiser had missed everything: one message's body frame is
  // answered with every raw payload, under the headers kuvert really sent
  // for it. The frame's own CSP and sandbox must hold on their own.
  const sample = links.get(accepted[0]);
  let raw = 0;
  if (sample) {
    current = sample;
    await page.route(`${kuvert.url}${sample}/body`, async (route) => {
      const real = await route.fetch();
      raw += 1;
      const hostile = payloads.map((p) => p.payload).join("\n");
      await route.fulfill({
        status: real.status(),
        headers: real.headers(),
        body: `<!DOCTYPE html><html lang="sv"><head><meta charset="utf-8"><title>x</title></head><body>${hostile}<script>alert("raw")</script><img src="http://example.invalid/leak.png"></body></html>`,
      });
    });
    await page.goto(`${kuvert.url}${sample}`, { waitUntil: "load" });
    await page.waitForTimeout(500);
    const frame = page.frames().find((f) => f.url().endsWith(`${sample}/body`));
    check(raw === 1 && Boolean(frame), "the raw payloads were served in the body frame");
    await page.unroute(`${kuvert.url}${sample}/body`);
  }
  current = null;
  check(dialogs.length === 0, `no dialog opened: ${dialogs.slice(0, 5).join("; ")}`);
  check(leaks.length === 0, `no request left kuvert's own page: ${leaks.slice(0, 5).join("; ")}`);
  check(topNavigations.length === 0, `the top page never navigated: ${topNavigations.slice(0, 5).join("; ")}`);
  console.log(
    `  hostile HTML: ${payloads.length} payloads, ${accepted.length} accepted and ${shown} shown, ${Object.values(refused).reduce((a, b) => a + b, 0)} refused at intake ${JSON.stringify(refused)}; ` +
      `${leaks.length} requests blocked, ${dialogs.length} dialogs, ${topNavigations.length} top navigations, ${consoleMessages} console messages; raw (unsanitised) payloads in the frame: ${raw ? "nothing ran or left" : "not tried"}`,
  );
  await context.close();
}
