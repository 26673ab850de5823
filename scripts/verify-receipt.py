#!/usr/bin/env python3
"""Checks a kuvert receipt the way an outside integrator would: written from
docs/architecture.md ("What is signed, and how") alone, with none of kuvert's
code. Python's standard library for the JSON, the digest and the keys
document; the Ed25519 check by OpenSSL's command line.

Usage: verify-receipt.py STATUS.json SENT.json KEYS_URL
  STATUS.json  what `kuvert send --wait` printed (holds "receipt")
  SENT.json    the signed delivery as sent (`kuvert send --save`)
  KEYS_URL     the operator's keys document (…/register/v1/operators/{id}/keys)
Exits 0 when the receipt is genuine and bound to the delivery; prints why not.
"""
import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request


def jcs(value):
    # RFC 8785 for kuvert's model (no floats; ASCII keys): sorted keys, no
    # whitespace, UTF-8 rather than \u escapes. JSON.stringify's escaping of
    # control characters is what json.dumps does with ensure_ascii=False.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def instant(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def main(status_file, sent_file, keys_url):
    receipt = json.load(open(status_file))["receipt"]
    delivery = json.load(open(sent_file))["delivery"]
    keys = json.load(urllib.request.urlopen(keys_url))
    problems = []

    # The receipt is bound to what was signed.
    digest = hashlib.sha256(jcs(delivery)).hexdigest()
    if receipt["delivery_digest"] != digest:
        problems.append(f"delivery_digest {receipt['delivery_digest']} is not {digest}")
    ids = [m["header"]["id"] for m in delivery["messages"]]
    if receipt["message_ids"] != ids:
        problems.append(f"message_ids {receipt['message_ids']} are not {ids}")

    # A published receipt key of the operator the receipt names, in use then.
    if keys["format"] != "kuvert-keys-v1" or keys["owner"]["id"] != receipt["operator_id"]:
        problems.append("the keys document is not that of the receipt's operator")
    listed = [k for k in keys["keys"] if k["purpose"] == "receipt" and k["key_id"] == receipt["key_id"]]
    if not listed:
        problems.append(f"{receipt['key_id']} is not a published receipt key")
        return report(problems)
    key = listed[0]
    raw = base64.b64decode(key["public_key"])
    if "ed25519:" + hashlib.sha256(raw).hexdigest()[:16] != receipt["key_id"]:
        problems.append("the published key does not derive to its key id")
    at = instant(receipt["delivered_at"])
    if not (instant(key["valid_from"]) <= at and ("valid_until" not in key or at < instant(key["valid_until"]))):
        problems.append("the key was not in use at delivered_at")

    # The signature: Ed25519 over domain || 0x00 || JCS of the array.
    signed = [receipt[f] for f in ("format", "delivery_id", "recipient", "sender_id", "operator_id",
                                   "delivered_at", "delivery_digest", "message_ids", "key_id")]
    message = b"kuvert/v2/delivery-receipt\x00" + jcs(signed)
    spki = bytes.fromhex("302a300506032b6570032100") + raw
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name) for name in ("key.der", "message", "signature")}
        open(paths["key.der"], "wb").write(spki)
        open(paths["message"], "wb").write(message)
        open(paths["signature"], "wb").write(base64.b64decode(receipt["signature"]))
        verified = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", paths["key.der"],
             "-rawin", "-in", paths["message"], "-sigfile", paths["signature"]],
            capture_output=True, text=True)
        if verified.returncode != 0:
            problems.append("the signature does not verify: " + (verified.stdout + verified.stderr).strip())
    return report(problems)


def report(problems):
    for problem in problems:
        print("verify-receipt: " + problem)
    if not problems:
        print("verify-receipt: genuine, checked from the documentation alone")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
