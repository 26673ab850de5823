// Delegation: Anna gives Bertil the right to read her mail; Bertil, logged
// in with his own e-ID in a browser of his own, sees it under "Post du kan
// läsa åt andra" and opens the separate view ("Post till Anna Andersson");
// Anna revokes, and Bertil's very next request to the delegation is refused.

import { check, loginAs, pageBasics, shoot, trackDocuments, viewports } from "../lib.mjs";

async function personIn(browser, url, name) {
  const context = await browser.newContext({ viewport: viewports.desktop });
  const page = await context.newPage();
  trackDocuments(page);
  await loginAs(page, url, name);
  return { context, page };
}

export default async function delegation({ browser, kuvert }) {
  const anna = await personIn(browser, kuvert.url, "Anna Andersson");
  const bertil = await personIn(browser, kuvert.url, "Bertil Berg");
  try {
    // Anna reaches the page from the start page and gives Bertil read rights.
    await Promise.all([anna.page.waitForLoadState("load"), anna.page.click("a[href='/delegations']")]);
    await pageBasics(anna.page, "delegations (owner, empty)", { testBanner: true });
    await anna.page.fill("#delegate", "19750505-3178");
    await anna.page.check("#rights-read");
    await Promise.all([anna.page.waitForLoadState("load"), anna.page.click("form.delegation-form button[type=submit]")]);
    check(anna.page.url().endsWith("/delegations?done=granted"), `after the grant, back on the page (${anna.page.url()})`);
    const given = await anna.page.textContent("body");
    check(/19750505-\*\*\*\*/.test(given ?? ""), "Anna sees Bertil's masked number among those who may read");
    await pageBasics(anna.page, "delegations (owner, granted)", { testBanner: true });

    // Bertil sees the mailbox he may read, and opens the separate view.
    await bertil.page.goto(`${kuvert.url}/delegations`);
    await pageBasics(bertil.page, "delegations (delegate)", { testBanner: true });
    const list = await bertil.page.textContent("body");
    check(/Post du kan läsa åt andra/.test(list ?? ""), "Bertil's page lists mail he can read for others");
    check(/Post till Anna Andersson/.test(list ?? ""), "… Anna's mail among it");
    const view = await bertil.page.getAttribute("a[href^='/for/']:not([href$='/inbox'])", "href");
    check(Boolean(view), `a link to the delegate's view (${view})`);
    await bertil.page.goto(`${kuvert.url}${view}`);
    await pageBasics(bertil.page, "delegated view", { testBanner: true });
    const heading = await bertil.page.textContent("h1");
    check(/Post till Anna Andersson/.test(heading ?? ""), `the view says whose mail it is (${heading})`);
    await shoot(bertil.page, "delegated");

    // What Anna sees now (Bertil's name is known once he used the right),
    // in Swedish and in English.
    await anna.page.goto(`${kuvert.url}/delegations`);
    const named = await anna.page.textContent("body");
    check(/Bertil Berg \(19750505-\*\*\*\*\)/.test(named ?? ""), "Anna sees Bertil's name once he has used the right");
    await shoot(anna.page, "delegations");
    // WCAG reflow: at 320 px (what 1280 px at 400 % zoom is) nothing
    // scrolls sideways.
    for (const [who, page] of [["owner", anna.page], ["delegate", bertil.page]]) {
      await page.setViewportSize({ width: 320, height: 640 });
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= 320, `the ${who}'s delegation page fits 320 px (${wide} px wide)`);
      await page.setViewportSize(viewports.desktop);
    }
    await anna.page.goto(`${kuvert.url}/delegations?lang=en`);
    await pageBasics(anna.page, "delegations (English)", { testBanner: true });
    check((await anna.page.getAttribute("html", "lang")) === "en", "the English page is lang=en");

    // Anna revokes; Bertil's very next request is refused like a missing page.
    // (Back to Swedish: the language chosen is kept until changed.)
    await anna.page.goto(`${kuvert.url}/delegations?lang=sv`);
    await Promise.all([
      anna.page.waitForLoadState("load"),
      anna.page.click("form[action$='/revoke'] button"),
    ]);
    check(anna.page.url().endsWith("/delegations?done=revoked"), `after the revocation, back on the page (${anna.page.url()})`);
    const after = await anna.page.textContent("body");
    check(!/19750505-\*\*\*\*\)?\s*Läsa ·/.test(after ?? "") && /Ingen annan än du/.test(after ?? ""), "no one may read Anna's mail any more");
    await bertil.page.goto(`${kuvert.url}${view}`);
    await pageBasics(bertil.page, "delegated view after revocation", { testBanner: true, status: 404 });
    const refused = await bertil.page.textContent("body");
    check(/not_found/.test(refused ?? "") && !/Post till Anna/.test(refused ?? ""), "the revoked delegation is refused as a missing page");
    await bertil.page.goto(`${kuvert.url}/delegations`);
    check(!/Post till Anna Andersson/.test((await bertil.page.textContent("body")) ?? ""), "… and gone from Bertil's list");
  } finally {
    await anna.context.close();
    await bertil.context.close();
  }
}
