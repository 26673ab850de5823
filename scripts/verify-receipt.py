#!/usr/bin/env python3
"""Checks a kuvert receipt the way an outside integrator would: written from
docs/architecture.md ("What is signed, and how") alone, with none of kuvert's
code. Python's standard library for the JSON, the digest and the keys
document; the Ed25519 check by OpenSSL's command line.

Usage: verify-receipt.py STATUS.json SENT.json KEYS_URL [REGISTER_URL]
  STATUS.json   what `kuvert send --wait` printed (holds "receipt")
  SENT.json     the signed delivery as sent (`kuvert send --save`)
  KEYS_URL      the operator's keys document (…/register/v1/operators/{id}/keys)
  REGISTER_URL  also check the sender's key certificate and the delivery's
                signature against the register's certificate key (base URL);
                set KUVERT_REGISTER_KEY_ID to the key id you got out of band
                to pin it
Exits 0 when everything checked is genuine and bound to the delivery; prints
why not.
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


def main(status_file, sent_file, keys_url, register_url=None):
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
    if not ed25519_ok(raw, b"kuvert/v2/delivery-receipt\x00" + jcs(signed), receipt["signature"]):
        problems.append("the signature does not verify")
    if register_url:
        problems += check_certificate(register_url, receipt, json.load(open(sent_file)))
    return report(problems)


def check_certificate(register_url, receipt, sent):
    """The sender's key as the register certified it, and the delivery's
    signature by that key."""
    problems = []
    base = register_url.rstrip("/")
    keys = json.load(urllib.request.urlopen(base + "/register/v1/keys"))
    pinned = os.environ.get("KUVERT_REGISTER_KEY_ID")
    registers = {k["key_id"]: base64.b64decode(k["public_key"]) for k in keys["keys"]
                 if k["purpose"] == "register_certificate" and (not pinned or k["key_id"] == pinned)}
    sender = sent["delivery"]["header"]["sender"]["id"]
    document = json.load(urllib.request.urlopen(f"{base}/register/v1/senders/{sender}/certificates"))
    key_id = sent["signature"]["key_id"]
    found = [c for c in document["certificates"] if c["certificate"]["key_id"] == key_id]
    if not found:
        return [f"the register has no certificate for the signing key {key_id}"]
    certificate = found[0]["certificate"]
    register_key = registers.get(certificate["register_key_id"])
    if register_key is None:
        return [f"the certificate is signed by {certificate['register_key_id']}, not a register key trusted here"]
    fields = [certificate[f] for f in ("format", "sender_id", "sender_name", "key_id", "public_key",
                                       "valid_from", "register_key_id")]
    if certificate["format"] != "kuvert-sender-key-certificate-v1" or not ed25519_ok(
            register_key, b"kuvert/v1/sender-key-certificate\x00" + jcs(fields), certificate["signature"]):
        problems.append("the sender's key certificate does not verify")
    sender_key = base64.b64decode(certificate["public_key"])
    if "ed25519:" + hashlib.sha256(sender_key).hexdigest()[:16] != key_id:
        problems.append("the certified key does not derive to the signature's key id")
    if certificate["sender_id"] != receipt["sender_id"]:
        problems.append("the certificate is for another sender")
    revocation = found[0].get("revocation")
    if revocation and instant(revocation["revoked_at"]) <= instant(receipt["delivered_at"]):
        problems.append("the key was revoked before the delivery")
    if not ed25519_ok(sender_key, b"kuvert/v1/signed-delivery\x00" + jcs(sent["delivery"]),
                      sent["signature"]["value"]):
        problems.append("the sender's signature over the delivery does not verify")
    if not problems:
        print(f"verify-receipt: signed by {certificate['sender_name']} ({certificate['sender_id']}), "
              f"key certified by the register ({certificate['register_key_id']})")
    return problems


def ed25519_ok(raw_key, message, signature_base64):
    """Ed25519 by OpenSSL's command line (the RFC 8032 equation)."""
    spki = bytes.fromhex("302a300506032b6570032100") + raw_key
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name) for name in ("key.der", "message", "signature")}
        open(paths["key.der"], "wb").write(spki)
        open(paths["message"], "wb").write(message)
        open(paths["signature"], "wb").write(base64.b64decode(signature_base64))
        verified = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER", "-inkey", paths["key.der"],
             "-rawin", "-in", paths["message"], "-sigfile", paths["signature"]],
            capture_output=True, text=True)
        return verified.returncode == 0


def report(problems):
    for problem in problems:
        print("verify-receipt: " + problem)
    if not problems:
        print("verify-receipt: genuine, checked from the documentation alone")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
