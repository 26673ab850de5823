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
# As the README says: send, keep what was signed, wait for the receipt.
"$bin" send --data "$data" --to "$anna" --subject "Röktest" --body "Hej från CI" \
  --attach "$data/beslut.pdf" --wait --save "$data/sent.json" >"$data/status.json"
cat "$data/status.json"
grep -q '"status": "delivered"' "$data/status.json" || { echo "smoke: not delivered"; cat "$log"; exit 1; }
# The receipt, checked by kuvert's command and, independently, from the
# documentation alone (scripts/verify-receipt.py); a tampered copy must fail.
keys="http://127.0.0.1:$port/register/v1/operators/kuvert-brevlada/keys"
"$bin" receipt verify --receipt "$data/status.json" --delivery "$data/sent.json" --keys "$keys"
# With the register's base URL it also checks the sender's key certificate and
# the delivery's signature, pinned to the register key id given out of band.
register_key_id=$(python3 -c "import json,sys,urllib.request; print([k['key_id'] for k in json.load(urllib.request.urlopen(sys.argv[1]))['keys'] if k['purpose'] == 'register_certificate'][0])" "http://127.0.0.1:$port/register/v1/keys")
KUVERT_REGISTER_KEY_ID="$register_key_id" python3 "$(dirname "$0")/verify-receipt.py" \
  "$data/status.json" "$data/sent.json" "$keys" "http://127.0.0.1:$port"
if KUVERT_REGISTER_KEY_ID="ed25519:0000000000000000" python3 "$(dirname "$0")/verify-receipt.py" \
  "$data/status.json" "$data/sent.json" "$keys" "http://127.0.0.1:$port" >/dev/null; then
  echo "smoke: a certificate verified against a register key not pinned"; exit 1
fi
python3 - "$data/status.json" "$data/forged.json" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
status["receipt"]["delivered_at"] = "2026-01-01T00:00:00.000000Z"
json.dump(status, open(sys.argv[2], "w"))
PY
if python3 "$(dirname "$0")/verify-receipt.py" "$data/forged.json" "$data/sent.json" "$keys" >/dev/null; then
  echo "smoke: a forged receipt verified"; exit 1
fi
if "$bin" receipt verify --receipt "$data/forged.json" --delivery "$data/sent.json" --keys "$keys" >/dev/null 2>&1; then
  echo "smoke: kuvert accepted a forged receipt"; exit 1
fi
sleep 1.5
kill -INT $pid
wait $pid || true
"$bin" audit verify --data "$data"
echo "smoke: OK"
