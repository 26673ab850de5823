// Sending by hand (decision 0020): the demo's authority user, Hanna
// Handläggare, logs in, writes a message to Anna with a PDF attachment and
// sends it; follows it to "delivered" in the sent list, with its chart and
// the chart's table; the recipient then finds it through the recipient API
// (the inbox pages are another flow's).

import { readFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { check, loginAs, pageBasics, shoot, trackDocuments, viewports } from "../lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));

export default async function sender({ browser, kuvert }) {
  const demo = JSON.parse(readFileSync(join(kuvert.data, "demo", "demo.json"), "utf8"));
  const kommun = demo.tenants.find((t) => t.tenant === "demokommun");
  const sender = kommun.senders[0].id;
  const anna = demo.recipients.find((r) => r.name === "Anna Andersson");
  const subject = `Beslut om bygglov ${Date.now()}`;

  const context = await browser.newContext({ viewport: viewports.desktop });
  const page = await context.newPage();
  trackDocuments(page);
  await loginAs(page, kuvert.url, "Hanna Handläggare");

  // The start page offers the sender pages to a person holding the role.
  await Promise.all([page.waitForLoadState("load"), page.click("a[href='/sender']")]);
  await pageBasics(page, "sender list", { testBanner: true });
  check((await page.textContent("main"))?.includes("Demo kommun"), "the sender list names Demo kommun");

  await Promise.all([page.waitForLoadState("load"), page.click(`a[href='/sender/${sender}/new']`)]);
  await pageBasics(page, "new message form", { testBanner: true });
  // The form is written as a person would: labels, not selectors.
  await page.getByLabel("Mottagarens person- eller organisationsnummer").fill(
    `${anna.id.slice(2, 8)}-${anna.id.slice(8)}`,
  );
  await page.getByLabel("Ämne").fill(subject);
  await page.getByLabel("Meddelande", { exact: true }).fill("Hej Anna!\n\nBeslutet finns i bilagan.\n\nMed vänlig hälsning\nHanna Handläggare");
  await page.setInputFiles("#attachments", join(here, "..", "..", "docs", "examples", "beslut.pdf"));
  await shoot(page, "sender-new");

  await Promise.all([page.waitForLoadState("load"), page.click("form.compose button[type=submit]")]);
  await pageBasics(page, "sent receipt page", { testBanner: true });
  check(/\/sender\/\d+\/sent\/[0-9a-f-]{36}\?sent=1$/.test(page.url()), `after sending, the delivery's page (${page.url()})`);
  check((await page.textContent("h1")) === "Skickat", "the page says Skickat");
  const delivery = page.url().match(/sent\/([0-9a-f-]{36})/)?.[1];

  // The relay delivers in the background: the page shows it once it has.
  let status = "";
  for (const until = Date.now() + 30_000; Date.now() < until; ) {
    await page.goto(`${kuvert.url}/sender/${sender}/sent/${delivery}`);
    status = (await page.textContent(".facts")) ?? "";
    if (status.includes("levererat")) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  check(/levererat i mottagarens brevlåda \d{4}-\d\d-\d\d \d\d:\d\d UTC/.test(status), `delivered, with the receipt's time: ${status}`);

  await page.goto(`${kuvert.url}/sender/${sender}/sent`);
  await pageBasics(page, "sent list", { testBanner: true });
  const svg = page.locator("svg[role=img]");
  check((await svg.count()) === 1, "one chart");
  check((await svg.getAttribute("aria-labelledby")) === "chart-title chart-desc", "the chart is labelled by its title and description");
  check((await page.locator("table.chart-table caption").count()) === 1, "the chart's table has a caption");
  const delivered = await page.locator("table.chart-table tfoot td").first().textContent();
  check(Number(delivered) >= 1, `the table counts the delivered message (${delivered})`);
  const row = page.locator(`.sent-list a[href^='/sender/${sender}/sent/${delivery}']`);
  check((await row.count()) === 1, "the message is in the sent list");
  await shoot(page, "sender-sent");

  await page.goto(`${kuvert.url}/sender/${sender}/sent?lang=en`);
  await pageBasics(page, "sent list (English)", { testBanner: true });
  check((await page.getAttribute("html", "lang")) === "en", "the English sent list says lang=en");
  check((await page.textContent("h1")) === "Sent messages", "the heading in English");
  await context.close();

  // The recipient finds it, with its attachment, through the recipient API.
  const list = await fetch(`${kuvert.url}/mailbox/v1/messages?page_size=100`, {
    headers: { authorization: `Bearer ${anna.token}` },
  }).then((r) => r.json());
  const message = list.messages?.find((m) => m.subject === subject);
  check(Boolean(message), `Anna has the message "${subject}"`);
  if (message) {
    const opened = await fetch(`${kuvert.url}/mailbox/v1/messages/${message.id}`, {
      headers: { authorization: `Bearer ${anna.token}` },
    }).then((r) => r.json());
    check(opened.sender_name === "Demo kommun", `from Demo kommun (${opened.sender_name})`);
    check(opened.attachments?.[0]?.filename === "beslut.pdf", "with its PDF attachment");
  }
}
