// kuvert's pages in a real browser: Debian's chromium, driven by
// playwright-core (its own browser download does not work here, so the
// installed one is launched by path), with axe-core run on every page.
//
//   node web-tests/browser.mjs [--kuvert target/debug/kuvert] [--screenshots docs/screenshots] [--only NAME]
//
// Starts `kuvert serve --demo` on a fresh data folder and a free port and
// runs each flow of flows/ against it, in file-name order (a flow exports
// one default async function taking { browser, kuvert }; lib.mjs has the
// checks every page must pass). Exits non-zero if any check failed, naming
// each failure.

import { readdirSync, rmSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { settings, startKuvert, tally } from "./lib.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
settings.kuvertBin = resolve(option("--kuvert", join(here, "..", "target", "debug", "kuvert")));
settings.screenshots = option("--screenshots", null);
const chromiumPath = option("--chromium", "/usr/bin/chromium");
const only = option("--only", null);

async function stop(kuvert) {
  const exited = new Promise((ok) => kuvert.child.once("exit", ok));
  kuvert.child.kill("SIGTERM");
  await exited;
  rmSync(kuvert.data, { recursive: true, force: true });
}

async function main() {
  const names = readdirSync(join(here, "flows"))
    .filter((f) => f.endsWith(".mjs"))
    .sort()
    .filter((f) => !only || f === `${only}.mjs`);
  const kuvert = await startKuvert(["--demo"]);
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
    for (const name of names) {
      const before = tally.failures;
      const flow = (await import(pathToFileURL(join(here, "flows", name)).href)).default;
      try {
        await flow({ browser, kuvert, stopKuvert: stop });
      } catch (e) {
        tally.checks += 1;
        tally.failures += 1;
        console.error(`FAIL: ${name} threw: ${e?.stack ?? e}`);
      }
      console.log(`  ${name}: ${tally.failures === before ? "ok" : "FAILED"}`);
    }
  } finally {
    await browser.close();
    await stop(kuvert);
  }
  console.log(`browser: ${tally.checks - tally.failures} of ${tally.checks} checks passed`);
  if (tally.failures > 0) process.exit(1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
