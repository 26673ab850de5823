// The relying party against an OpenID Provider not written here: a second
// kuvert, configured as in production (`kuvert keys init` on a fresh data
// folder, then `serve --oidc-issuer … --oidc-client-id …`, no --demo, so no
// development provider and no test banner), logs a person in through
// oidc-provider (op/provider.mjs) in the browser, and out again. Twice: once
// with a client secret (client_secret_basic), once with kuvert's own key
// (private_key_jwt, the provider fetching kuvert's /login/jwks).

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { check, freePort, pageBasics, settings, shoot, startKuvert, trackDocuments, viewports } from "../lib.mjs";
import { PERSONAL_NUMBER_SCOPE, startProvider, testPerson } from "../op/provider.mjs";

const methods = ["client_secret_basic", "private_key_jwt"];

export default async function thirdPartyOp({ browser, stopKuvert }) {
  for (const [i, auth] of methods.entries()) {
    await loginThrough(browser, stopKuvert, auth, i === 0);
  }
}

async function loginThrough(browser, stopKuvert, auth, screenshots) {
  const name = `third-party OP (${auth})`;
  const data = mkdtempSync(join(tmpdir(), "kuvert-production-"));
  // A new installation, as the operations guide has it: keys first.
  execFileSync(settings.kuvertBin, ["keys", "init", "--data", data], { stdio: "ignore" });
  const secret = randomBytes(32).toString("base64url");
  const authArgs = ["--oidc-client-auth", auth];
  if (auth !== "private_key_jwt") {
    const secretFile = join(data, "oidc-client-secret");
    writeFileSync(secretFile, secret, { mode: 0o600 });
    authArgs.push("--oidc-client-secret-file", secretFile);
  }
  const opPort = await freePort();
  let kuvert = null;
  let op = null;
  let context = null;
  try {
    // kuvert discovers the provider at the first login, not at start, so
    // it can start first and tell the provider its redirect URI.
    kuvert = await startKuvert(
      [
        "--allow-plain-http",
        "--oidc-issuer",
        `http://127.0.0.1:${opPort}`,
        "--oidc-client-id",
        "kuvert",
        ...authArgs,
        "--oidc-scope",
        PERSONAL_NUMBER_SCOPE,
      ],
      { data },
    );
    op = await startProvider({
      port: opPort,
      client: {
        redirectUri: `${kuvert.url}/login/callback`,
        auth,
        secret,
        jwksUri: `${kuvert.url}/login/jwks`,
      },
    });
    context = await browser.newContext({ viewport: viewports.desktop });
    const page = await context.newPage();
    trackDocuments(page);

    await page.goto(`${kuvert.url}/`);
    await pageBasics(page, `${name}: start page`, { testBanner: false });
    const start = await page.textContent("body");
    check(!/Testinloggning|test login/i.test(start ?? ""), `${name}: no test-login banner in production`);
    const devIdp = await fetch(`${kuvert.url}/dev-idp/.well-known/openid-configuration`);
    check(devIdp.status === 404, `${name}: no development provider in production (${devIdp.status})`);

    await Promise.all([page.waitForLoadState("load"), page.click("a[href='/login']")]);
    check(page.url().startsWith(`${op.issuer}/interaction/`), `${name}: the login goes to the provider (${page.url()})`);
    if (screenshots) await shoot(page, "third-party-op-login");
    await page.fill("#login", testPerson.accountId);
    await Promise.all([page.waitForURL(`${kuvert.url}/**`), page.click("button[type=submit]")]);
    await page.waitForLoadState("load");

    const fullName = `${testPerson.given_name} ${testPerson.family_name}`;
    const body = await page.textContent("body");
    check(
      new RegExp(`Inloggad som\\s+${fullName}`).test(body ?? ""),
      `${name}: logged in as ${fullName} (${page.url()}): ${body?.slice(0, 300)} ${op.errors.join("; ")}`,
    );
    await pageBasics(page, `${name}: start page (logged in)`, { testBanner: false });
    check(!/Testinloggning|test login/i.test(body ?? ""), `${name}: no test-login banner when logged in`);
    if (screenshots) await shoot(page, "third-party-op");
    check(
      JSON.stringify(op.tokenRequests) === JSON.stringify([auth]),
      `${name}: one code exchanged, authenticated with ${auth} (${op.tokenRequests.join(", ")})`,
    );
    const cookies = await context.cookies(kuvert.url);
    const session = cookies.find((c) => c.name === "kuvert_session");
    check(Boolean(session?.httpOnly), `${name}: an HttpOnly session cookie (${cookies.map((c) => c.name).join(", ")})`);
    check(session?.sameSite === "Lax", `${name}: the session cookie is SameSite=Lax`);

    await Promise.all([page.waitForLoadState("load"), page.click("form[action='/logout'] button")]);
    const after = await page.textContent("body");
    check(!/Inloggad som/.test(after ?? ""), `${name}: logged out`);
    check(op.errors.length === 0, `${name}: the provider logged no error (${op.errors.join("; ")})`);
  } finally {
    await context?.close();
    await op?.stop();
    if (kuvert) await stopKuvert(kuvert);
  }
}
