// The e-ID login: a person at LoA3 logs in through the development
// identity provider, sees who they are and logs out (the old cookie is then
// refused); a person at LoA2 is refused with a page that says why.

import { check, loginAs, pageBasics, shoot, trackDocuments, viewports } from "../lib.mjs";

export default async function login({ browser, kuvert }) {
  // A person at LoA3 logs in, sees who they are, and logs out.
  {
    const context = await browser.newContext({ viewport: viewports.desktop });
    const page = await context.newPage();
    trackDocuments(page);
    await loginAs(page, kuvert.url, "Anna Andersson");
    const body = await page.textContent("body");
    check(/Inloggad som\s+Anna Andersson/.test(body ?? ""), `logged in as Anna (${page.url()}): ${body?.slice(0, 300)}`);
    await pageBasics(page, "start page (logged in)", { testBanner: true });
    await shoot(page, "logged-in");
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.httpOnly && c.name.toLowerCase().includes("session"));
    check(Boolean(session), `an HttpOnly session cookie (${cookies.map((c) => c.name).join(", ")})`);
    check(session?.sameSite === "Lax", "the session cookie is SameSite=Lax");
    await Promise.all([page.waitForLoadState("load"), page.click("form[action='/logout'] button")]);
    const after = await page.textContent("body");
    check(!/Inloggad som/.test(after ?? ""), "logged out: the page no longer says who is logged in");
    // The old cookie, presented again, is refused: the session ended
    // server-side, not only in the browser.
    if (session) {
      const replay = await browser.newContext();
      await replay.addCookies([session]);
      const again = await replay.newPage();
      await again.goto(`${kuvert.url}/`);
      const text = await again.textContent("body");
      check(!/Inloggad som/.test(text ?? ""), "the logged-out session cookie is refused");
      await replay.close();
    }
    await context.close();
  }
  // A person at LoA2 is refused, with a page that says why.
  {
    const context = await browser.newContext({ viewport: viewports.desktop });
    const page = await context.newPage();
    trackDocuments(page);
    await loginAs(page, kuvert.url, "Lars Lågnivå");
    const body = await page.textContent("body");
    check(!/Inloggad som/.test(body ?? ""), "the LoA2 person is not logged in");
    check(/tillitsniv|level of assurance|nivå/i.test(body ?? ""), `the refusal says why: ${body?.slice(0, 300)}`);
    await pageBasics(page, "LoA refusal", { testBanner: true, status: 403 });
    await shoot(page, "loa-refused");
    await context.close();
  }
}
