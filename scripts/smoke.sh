#!/usr/bin/env bash
# Boots the real `kuvert` binary with demo data, sends a message with a PDF
# the way the README tells a newcomer to, waits for `delivered`, and checks
# the audit log with a witness beside it. Usage: scripts/smoke.sh path/to/kuvert
set -euo pipefail
bin=${1:-target/debug/kuvert}
data=$(mktemp -d)
port=${KUVERT_SMOKE_PORT:-18787}
log="$data/serve.log"
wport=${KUVERT_SMOKE_WITNESS_PORT:-18788}
witness="http://127.0.0.1:$wport"
wait_for() {
  for _ in $(seq 1 100); do
    "$bin" healthcheck --url "$1" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$bin" healthcheck --url "$1"
}
"$bin" serve --demo --data "$data" --listen "127.0.0.1:$port" --audit-checkpoint-seconds 1 >"$log" 2>&1 &
pid=$!
wpid=
trap 'kill $pid $wpid 2>/dev/null || true; rm -rf "$data"' EXIT
wait_for "http://127.0.0.1:$port"
# A witness beside it, in its own folder, pinned to the node's two audit
# logs and its published audit key; then the node again, sending each
# checkpoint to the witness.
curl -fsS "http://127.0.0.1:$port/register/v1/keys" >"$data/installation-keys.json"
pins=$(python3 - "$data" <<'PY'
import json, sqlite3, sys
data = sys.argv[1]
keys = json.load(open(f"{data}/installation-keys.json"))["keys"]
audit = [k["public_key"] for k in keys if k["purpose"] == "audit_checkpoint" and not k.get("valid_until")][0]
for db in ("kuvert.db", "mailbox.db"):
    conn = sqlite3.connect(f"file:{data}/{db}?mode=ro", uri=True)
    (log,) = conn.execute("SELECT log_id FROM audit_log_identity").fetchone()
    print(f"--log {log}={audit}")
PY
)
# shellcheck disable=SC2086
"$bin" witness --data "$data/witness" --listen "127.0.0.1:$wport" $pins >"$data/witness.log" 2>&1 &
wpid=$!
wait_for "$witness"
wkey=$(curl -fsS "$witness/witness/v1/key" | python3 -c "import json,sys; print(json.load(sys.stdin)['public_key'])")
kill -INT $pid
wait $pid || true
"$bin" serve --demo --data "$data" --listen "127.0.0.1:$port" --audit-checkpoint-seconds 1 \
  --witness "$witness" --witness-key "$wkey" >>"$log" 2>&1 &
pid=$!
wait_for "http://127.0.0.1:$port"
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
# The audit logs, with the published keys only, the witness's key and its
# latest checkpoints; then a copy with one entry edited must fail.
"$bin" audit verify --data "$data" --keys "$data/installation-keys.json" \
  --witness-key "$wkey" --witness "$witness"
mkdir "$data/tampered"
cp "$data/kuvert.db" "$data/mailbox.db" "$data/tampered/"
python3 - "$data/tampered/kuvert.db" <<'PY'
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = 3")
conn.commit()
PY
if "$bin" audit verify --data "$data/tampered" --keys "$data/installation-keys.json" \
  --witness-key "$wkey" --witness "$witness" >"$data/tampered.out" 2>&1; then
  echo "smoke: a tampered audit log verified"; cat "$data/tampered.out"; exit 1
fi
grep -q "kuvert.db: TAMPERED" "$data/tampered.out" || { cat "$data/tampered.out"; exit 1; }
echo "smoke: OK"
