// Settings: David Dahl (no other flow uses him) opens the settings from the
// start page, stores a notification email and phone (a bad address first:
// the form again with the error beside the field), refuses a sender and
// accepts it again, downloads all his mail as a zip, and goes through the
// deregistration's confirmation page but cancels, so he stays registered.

import { readFileSync } from "node:fs";
import { check, loginAs, pageBasics, shoot, trackDocuments, viewports } from "../lib.mjs";

export default async function settings({ browser, kuvert }) {
  const context = await browser.newContext({ viewport: viewports.desktop, acceptDownloads: true });
  const page = await context.newPage();
  trackDocuments(page);
  await loginAs(page, kuvert.url, "David Dahl");
  await Promise.all([page.waitForLoadState("load"), page.click("a[href='/settings']")]);
  check(new URL(page.url()).pathname === "/settings", `the start page links to the settings (${page.url()})`);
  await pageBasics(page, "settings", { testBanner: true });
  const body = await page.textContent("main");
  check(/Du tar emot digital post/.test(body ?? ""), "David is registered");

  // A bad email address: 422, the error next to the field, nothing saved.
  await page.fill("#email", "inte-en-adress");
  await page.fill("#phone", "070-123 45 67");
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/settings/contacts'] button")]);
  await pageBasics(page, "settings (bad email)", { testBanner: true, status: 422 });
  check((await page.getAttribute("#email", "aria-invalid")) === "true", "the bad email field is marked invalid");
  check(
    ((await page.getAttribute("#email", "aria-describedby")) ?? "").includes("email-error"),
    "the error is tied to the field (aria-describedby)",
  );
  check(/namn@exempel\.se/.test((await page.textContent("#email-error")) ?? ""), "the error says how to write it");
  check(await page.isVisible(".error-summary a[href='#email']"), "an error summary at the top links to the field");
  await shoot(page, "settings-error");

  // Good values: saved, the phone number shown as E.164.
  await page.fill("#email", "david.dahl@exempel.se");
  await Promise.all([page.waitForLoadState("load"), page.click("form[action='/settings/contacts'] button")]);
  await pageBasics(page, "settings (contacts saved)", { testBanner: true });
  check((await page.inputValue("#email")) === "david.dahl@exempel.se", "the email is stored");
  check((await page.inputValue("#phone")) === "+46701234567", "the phone is stored as E.164");
  check(/kontaktuppgifter .* sparade/.test((await page.textContent("[role=status]")) ?? ""), "a saved notice");
  await shoot(page, "settings");

  // Refuse Demomyndigheten, then accept it again.
  const row = page.locator(".senders li", { hasText: "Demomyndigheten" });
  await Promise.all([page.waitForLoadState("load"), row.locator("button").click()]);
  check(/Nekad/.test((await page.locator(".senders li", { hasText: "Demomyndigheten" }).textContent()) ?? ""), "the sender is refused");
  await pageBasics(page, "settings (sender refused)", { testBanner: true });
  await Promise.all([
    page.waitForLoadState("load"),
    page.locator(".senders li", { hasText: "Demomyndigheten" }).locator("button").click(),
  ]);
  check(
    !/Nekad/.test((await page.locator(".senders li", { hasText: "Demomyndigheten" }).textContent()) ?? ""),
    "the sender is accepted again",
  );

  // Download all mail: a zip.
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click("form[action='/settings/export'] button"),
  ]);
  const zip = readFileSync(await download.path());
  check(zip.subarray(0, 2).toString("latin1") === "PK", `the download is a zip (${download.suggestedFilename()})`);
  check(/^kuvert-post-\d{4}-\d\d-\d\d\.zip$/.test(download.suggestedFilename()), "the zip is named by the day");

  // Deregistration: the confirmation page, then cancel.
  await Promise.all([page.waitForLoadState("load"), page.click("a[href='/settings/deregister']")]);
  await pageBasics(page, "deregister confirmation", { testBanner: true });
  check(/på papper/.test((await page.textContent("main")) ?? ""), "the confirmation says mail comes on paper");
  await shoot(page, "settings-deregister");
  await Promise.all([page.waitForLoadState("load"), page.click("main a.button")]);
  check(new URL(page.url()).pathname === "/settings", "cancel goes back to the settings");
  check(/Du tar emot digital post/.test((await page.textContent("main")) ?? ""), "still registered after cancelling");

  // Someone without a mailbox sees the terms and the operator choice
  // (only looked at: the registration itself is tested in the API tests).
  {
    const other = await browser.newContext({ viewport: viewports.desktop });
    const cecilia = await other.newPage();
    trackDocuments(cecilia);
    await loginAs(cecilia, kuvert.url, "Cecilia Ceder");
    await cecilia.goto(`${kuvert.url}/settings`);
    await pageBasics(cecilia, "settings (not registered)", { testBanner: true });
    check(await cecilia.isVisible("#terms"), "the terms checkbox is shown");
    check(await cecilia.isVisible("input[name=operator]"), "an operator to choose");
    await shoot(cecilia, "settings-register");
    await other.close();
  }

  // In English.
  await page.goto(`${kuvert.url}/settings?lang=en`);
  await pageBasics(page, "settings (English)", { testBanner: true });
  check((await page.textContent("h1")) === "Settings", "the English page");
  await context.close();
}
