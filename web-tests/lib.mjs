// Shared pieces of the browser tests (see browser.mjs): starting kuvert,
// the checks every page must pass, axe-core, screenshots and the dev-IdP
// login. A flow in flows/ imports what it needs from here.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, mkdirSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const axeSource = readFileSync(join(here, "node_modules", "axe-core", "axe.min.js"), "utf8");

export const viewports = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1280, height: 800 },
};

/// Where screenshots go (`--screenshots DIR`), or null for none.
export const settings = { screenshots: null, kuvertBin: null };

export const tally = { checks: 0, failures: 0 };
export function check(condition, what) {
  tally.checks += 1;
  if (!condition) {
    tally.failures += 1;
    console.error(`FAIL: ${what}`);
  }
}

export async function freePort() {
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

/// `kuvert serve` on a free port. `data`: an existing data folder (one made
/// with `kuvert keys init`, as in production); a fresh one by default.
export async function startKuvert(extraArgs = [], { data = mkdtempSync(join(tmpdir(), "kuvert-browser-")) } = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    settings.kuvertBin,
    ["serve", "--data", data, "--listen", `127.0.0.1:${port}`, "--public-url", url, ...extraArgs],
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
export async function accessibility(page, name) {
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
export const lastDocument = new WeakMap();
export function trackDocuments(page) {
  page.on("response", (response) => {
    if (response.request().isNavigationRequest() && response.frame() === page.mainFrame()) {
      lastDocument.set(page, response);
    }
  });
}

/// What every HTML page of kuvert's must have.
export async function pageBasics(page, name, { testBanner, status = 200 }) {
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

export async function shoot(page, name) {
  const screenshots = settings.screenshots;
  if (!screenshots) return;
  mkdirSync(screenshots, { recursive: true });
  for (const [label, size] of Object.entries(viewports)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: join(screenshots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(viewports.desktop);
}

export async function loginAs(page, url, person) {
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
