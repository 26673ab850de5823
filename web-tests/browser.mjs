// kuvert's pages in a real browser: Debian's chromium, driven by
// playwright-core (its own browser download does not work here, so the
// installed one is launched by path), with axe-core run on every page.
//
//   node web-tests/browser.mjs [--kuvert target/debug/kuvert] [--screenshots docs/screenshots]
//
// Starts `kuvert serve --demo` on a fresh data folder and a free port, logs
// in through the development identity provider as a person would, checks
// each page (language, test-login banner, security headers, no serious or
// critical axe violation), logs out and checks that the old session cookie
// is refused. Exits non-zero on the first failure, naming it.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const kuvertBin = resolve(option("--kuvert", join(here, "..", "target", "debug", "kuvert")));
const screenshots = option("--screenshots", null);
const chromiumPath = option("--chromium", "/usr/bin/chromium");
const axeSource = readFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");

const viewports = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1280, height: 800 },
};

let failures = 0;
let checks = 0;
function check(condition, what) {
  checks += 1;
  if (!condition) {
    failures += 1;
    console.error(`FAIL: ${what}`);
  }
}

async function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

async function startKuvert() {
  const data = mkdtempSync(join(tmpdir(), "kuvert-browser-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    kuvertBin,
    ["serve", "--demo", "--data", data, "--listen", `127.0.0.1:${port}`, "--public-url", url],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr.on("data", (chunk) => {
    log += chunk;
  });
  const until = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`kuvert exited with ${child.exitCode}:\n${log}`);
    }
    try {
      const answer = await fetch(`${url}/health`);
      if (answer.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`kuvert did not answer /health:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, data, child };
}

/// axe-core on the page as it is now. `page.evaluate` runs outside the
/// page's Content-Security-Policy, so the strict CSP stays on.
async function accessibility(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
  const serious = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(serious.length === 0, `${name}: axe found ${JSON.stringify(serious)}`);
  const minor = result.filter((v) => !serious.includes(v));
  if (minor.length > 0) console.log(`  ${name}: axe, minor: ${minor.map((v) => v.id).join(", ")}`);
}

/// The last document the page navigated to (after any redirects), so a
/// page reached by a click or a form is checked like one opened directly.
const lastDocument = new WeakMap();
function trackDocuments(page) {
  page.on("response", (response) => {
    if (response.request().isNavigationRequest() && response.frame() === page.mainFrame()) {
      lastDocument.set(page, response);
    }
  });
}

/// What every HTML page of kuvert's must have.
async function pageBasics(page, name, { testBanner, status = 200 }) {
  const response = lastDocument.get(page);
  check(
    response?.status() === status,
    `${name}: answered ${status} (${response?.status()} ${response?.url()})`,
  );
  const headers = response ? response.headers() : {};
  const csp = headers["content-security-policy"] ?? "";
  check(csp.includes("default-src 'self'"), `${name}: CSP default-src 'self' (${csp})`);
  check(csp.includes("frame-ancestors 'none'"), `${name}: CSP frame-ancestors 'none'`);
  check(!/script-src[^;]*'unsafe-inline'/.test(csp), `${name}: no inline script allowed`);
  check(headers["x-content-type-options"] === "nosniff", `${name}: X-Content-Type-Options nosniff`);
  check(Boolean(headers["referrer-policy"]), `${name}: a Referrer-Policy`);
  const lang = await page.getAttribute("html", "lang");
  check(lang === "sv" || lang === "en", `${name}: <html lang> is sv or en (${lang})`);
  if (testBanner) {
    const body = await page.textContent("body");
    check(/Testinloggning|test login/i.test(body ?? ""), `${name}: the test-login banner is shown`);
  }
  await accessibility(page, name);
}

async function shoot(page, name) {
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  for (const [label, size] of Object.entries(viewports)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(screenshots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(viewports.desktop);
}

async function loginAs(page, url, person) {
  await page.goto(`${url}/`);
  await pageBasics(page, "start page (logged out)", { testBanner: true });
  await shoot(page, "start");
  await page.click("a[href='/login']");
  await page.waitForLoadState("load");
  check(page.url().includes("/dev-idp/"), `the login goes to the dev identity provider (${page.url()})`);
  await pageBasics(page, "dev identity provider", { testBanner: true });
  await shoot(page, "dev-idp");
  await Promise.all([page.waitForLoadState("load"), page.click(`button:has-text("${person}")`)]);
}

async function main() {
  const kuvert = await startKuvert();
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
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
  } finally {
    await browser.close();
    const exited = new Promise((ok) => kuvert.child.once("exit", ok));
    kuvert.child.kill("SIGTERM");
    await exited;
    rmSync(kuvert.data, { recursive: true, force: true });
  }
  console.log(`browser: ${checks - failures} of ${checks} checks passed`);
  if (failures > 0) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
