#!/usr/bin/env bash
# Boots the real `kuvert` binary with demo data, sends a message with a PDF
# the way the README tells a newcomer to, waits for `delivered`, and checks
# the audit log. Usage: scripts/smoke.sh path/to/kuvert
set -euo pipefail
bin=${1:-target/debug/kuvert}
data=$(mktemp -d)
port=${KUVERT_SMOKE_PORT:-18787}
log="$data/serve.log"
"$bin" serve --demo --data "$data" --listen "127.0.0.1:$port" --audit-checkpoint-seconds 1 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  "$bin" healthcheck --url "http://127.0.0.1:$port" >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin" healthcheck --url "http://127.0.0.1:$port"
anna=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['recipients'][0]['id'])" "$data/demo/demo.json")
# A real one-page PDF (kuvert refuses bytes that only claim to be one).
cp "$(dirname "$0")/../docs/examples/beslut.pdf" "$data/beslut.pdf"
out=$("$bin" send --data "$data" --to "$anna" --subject "Röktest" --body "Hej från CI" --attach "$data/beslut.pdf" --wait)
echo "$out"
echo "$out" | grep -q '"status": "delivered"' || { echo "smoke: not delivered"; cat "$log"; exit 1; }
sleep 1.5
kill -INT $pid
wait $pid || true
"$bin" audit verify --data "$data"
echo "smoke: OK"
