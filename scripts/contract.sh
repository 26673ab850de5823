#!/usr/bin/env bash
# API contract fuzzing: boots the real `kuvert` binary with demo data and runs
# schemathesis against the OpenAPI document it serves (the committed
# docs/openapi.json; a test keeps the two equal), authenticated as a sender, a
# recipient and the platform operator. Fails on any 5xx and on any answer whose
# status, content type or body the document does not describe.
# Usage: scripts/contract.sh path/to/kuvert   (see docs/contract-testing.md)
set -euo pipefail
bin=$(realpath "${1:-target/debug/kuvert}")
version=4.32.5
examples=${KUVERT_CONTRACT_EXAMPLES:-50}
seed=${KUVERT_CONTRACT_SEED:-20261124}

# schemathesis in its own virtualenv, pinned, installed once per machine.
venv=${KUVERT_SCHEMATHESIS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kuvert/schemathesis-$version}
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "version $version"; then
  echo "contract: installing schemathesis $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --retries 5 --timeout 60 \
    "schemathesis==$version"
fi

data=$(mktemp -d)
log="$data/serve.log"
pid=
cleanup() {
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

umask 077
python3 -c 'import secrets; print("kva_" + secrets.token_urlsafe(32))' >"$data/admin-token"
# Port 0: the instance picks a free port and prints where it listens.
"$bin" serve --demo --data "$data" --listen 127.0.0.1:0 \
  --admin-token-file "$data/admin-token" >"$log" 2>&1 &
pid=$!
url=
for _ in $(seq 1 150); do
  url=$(sed -n 's/^kuvert is running at \(http[^ ]*\).*/\1/p' "$log" | head -n1)
  if [ -n "$url" ] && "$bin" healthcheck --url "$url" >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "contract: kuvert exited"; cat "$log"; exit 1; }
  sleep 0.1
done
"$bin" healthcheck --url "$url" >/dev/null || { echo "contract: no /health"; cat "$log"; exit 1; }

# Demo credentials: demokommun's API credential, Anna's recipient token.
demo="$data/demo/demo.json"
field() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))$1)" "$demo"; }
KUVERT_SENDER_TOKEN=$(field '["tenants"][0]["token"]')
KUVERT_RECIPIENT_TOKEN=$(field '["recipients"][0]["token"]')
KUVERT_ADMIN_TOKEN=$(cat "$data/admin-token")
# The relay's credential at the built-in mailbox: kvm_ + the key file's
# 32 bytes as URL-safe base64 without padding.
KUVERT_RELAY_TOKEN=$(python3 -c 'import base64, sys
raw = base64.b64decode(open(sys.argv[1]).read().strip())
print("kvm_" + base64.urlsafe_b64encode(raw).decode().rstrip("="))' "$data/keys/relay-mailbox-credential.secret")
export KUVERT_SENDER_TOKEN KUVERT_RECIPIENT_TOKEN KUVERT_ADMIN_TOKEN KUVERT_RELAY_TOKEN

# Something to find: a delivered message with an attachment, so that reading,
# archiving and downloading get past 404 now and then.
# A real one-page PDF (kuvert refuses bytes that only claim to be one).
cp "$(dirname "$0")/../docs/examples/beslut.pdf" "$data/beslut.pdf"
"$bin" send --data "$data" --to "$(field '["recipients"][0]["id"]')" --subject "Kontrakt" \
  --body "Hej" --attach "$data/beslut.pdf" --wait >"$data/sent.json"
# `send --wait` prints the final status, one JSON document.
delivery=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["delivery_id"])' "$data/sent.json")
message=$(python3 -c '
import json, os, sys, urllib.request
request = urllib.request.Request(sys.argv[1] + "/mailbox/v1/messages",
    headers={"Authorization": "Bearer " + os.environ["KUVERT_RECIPIENT_TOKEN"]})
print(json.load(urllib.request.urlopen(request))["messages"][0]["id"])' "$url")

# One credential per security scheme of the document (sender, recipient,
# admin, relay); a path `id` is one of the known ids half of the time.
cat >"$data/schemathesis.toml" <<TOML
[auth.openapi.sender]
bearer = "\${KUVERT_SENDER_TOKEN}"
[auth.openapi.recipient]
bearer = "\${KUVERT_RECIPIENT_TOKEN}"
[auth.openapi.admin]
bearer = "\${KUVERT_ADMIN_TOKEN}"
[auth.openapi.relay]
bearer = "\${KUVERT_RELAY_TOKEN}"
[dictionaries.known-ids]
values = ["$message", "$delivery", "demokommun", "demoformedlare"]
[parameters]
"path.id" = { dictionary = "known-ids", probability = 0.5 }
TOML

run() {
  (cd "$data" && "$venv/bin/schemathesis" --no-color --config-file "$data/schemathesis.toml" \
    run "$url/openapi.json" "$@" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$examples" --seed "$seed" --workers 1 \
    --generation-database none --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much)
}
# The admin API runs last: it suspends tenants and revokes credentials, which
# would turn the rest into 403s.
status=0
start=$SECONDS
run --exclude-path-regex '^/admin/' || status=$?
run --include-path-regex '^/admin/' || status=$?
echo "contract: schemathesis took $((SECONDS - start)) s"

if [ "$status" -ne 0 ]; then
  echo "contract: FAILED (exit $status); the instance's log:"
  tail -n 50 "$log"
  exit "$status"
fi
if grep -aq 'ERROR' "$log"; then
  echo "contract: the instance logged errors:"
  grep -a 'ERROR' "$log" | tail -n 20
  exit 1
fi
echo "contract: OK"
