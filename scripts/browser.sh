#!/usr/bin/env bash
# kuvert's pages in a real browser: installs Debian's chromium (when missing)
# and the pinned npm packages of web-tests/ (npm ci, from its lock file),
# then runs web-tests/browser.mjs against the given kuvert binary.
# Usage: scripts/browser.sh path/to/kuvert [--screenshots docs/screenshots]
set -euo pipefail
bin=$(realpath "${1:-target/debug/kuvert}")
shift || true
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "browser: installing Debian's chromium"
  sudo=
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
fi
/usr/bin/chromium --version

if [ ! -d web-tests/node_modules/playwright-core ] || [ web-tests/package-lock.json -nt web-tests/node_modules ]; then
  echo "browser: npm ci in web-tests/"
  (cd web-tests && npm ci --no-audit --no-fund --loglevel=error)
fi

node web-tests/browser.mjs --kuvert "$bin" "$@"
