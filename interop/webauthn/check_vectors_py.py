#!/usr/bin/env python3
"""Checks every WebAuthn vector in Tests/WebAuthnTests/Vectors/**/*.json with py_webauthn.

Each vector's `input` is handed to py_webauthn 3.x the way the Swift verifier reads it:

- registration: verify_registration_response(credential=input.response, expected_challenge,
  expected_rp_id, expected_origin=input.origins, require_user_verification,
  pem_root_certs_bytes_by_fmt={fmt: input.trustAnchors}) -- or the vector's
  pyWebauthn.pemRootCertsByFmt when it names one.
- authentication: verify_authentication_response(credential=input.response, expected_challenge,
  expected_rp_id, expected_origin, credential_public_key=input.credential.publicKey,
  credential_current_sign_count=input.credential.signCount, require_user_verification).

When `input.verificationTime` is present the check runs "at" that moment, the way py_webauthn's own
tests do it: the X509Store that validate_certificate_chain builds gets set_time(verificationTime)
(tests/helpers/x509store.py upstream), and time.time() (used by the SafetyNet timestampMs check)
returns that moment.

`pyWebauthn.skip` skips a vector (with its reason). The fields of `expect` that py_webauthn reports
(verified, format, credentialId, signCount, aaguid, userVerified, backupEligible, backupState,
passkeyType) are compared; an `expect` of {"verified": false} must make py_webauthn raise.

Usage: check_vectors_py.py [VECTOR_DIR_OR_FILE ...]   (default: the repository's Vectors folder)
Exit status 0 when every vector agrees, 1 otherwise. Needs: pip install webauthn==3.0.1
"""
from __future__ import annotations

import base64
import datetime as _dt
import inspect
import json
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from OpenSSL.crypto import X509Store

import webauthn
from webauthn.helpers import validate_certificate_chain
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import AttestationFormat

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / "Tests" / "WebAuthnTests" / "Vectors"


def b64url_decode(value: str) -> bytes:
    value = value.replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def parse_time(text: str) -> _dt.datetime:
    moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment


def at_time(stack: ExitStack, moment: _dt.datetime) -> None:
    """Run certificate-chain validation and the SafetyNet clock check at `moment`."""
    naive_utc = moment.astimezone(_dt.timezone.utc).replace(tzinfo=None)

    def new_store() -> X509Store:
        store = X509Store()
        store.set_time(naive_utc)
        return store

    stack.enter_context(
        mock.patch.object(
            inspect.getmodule(validate_certificate_chain), "_generate_new_cert_store", new_store
        )
    )
    stack.enter_context(mock.patch("time.time", return_value=moment.timestamp()))


def _val(x):
    return getattr(x, "value", x)


def allowed_algorithms(inp: dict) -> list:
    """input.allowedAlgorithms, else every algorithm py_webauthn can verify (its own default is only
    EdDSA, ES256 and RS256, narrower than the Swift verifier's default)."""
    if inp.get("allowedAlgorithms"):
        known = {a.value for a in COSEAlgorithmIdentifier}
        return [COSEAlgorithmIdentifier(a) for a in inp["allowedAlgorithms"] if a in known]
    return list(COSEAlgorithmIdentifier)


def check_registration(vector: dict) -> dict:
    inp = vector["input"]
    pyw = vector.get("pyWebauthn") or {}
    fmt = json_fmt(inp["response"]["response"]["attestationObject"])
    roots: dict = {}
    if pyw.get("pemRootCertsByFmt"):
        for name, pems in pyw["pemRootCertsByFmt"].items():
            roots[AttestationFormat(name)] = [p.encode() for p in pems]
    elif inp.get("trustAnchors") and fmt is not None:
        roots[AttestationFormat(fmt)] = [p.encode() for p in inp["trustAnchors"]]
    with ExitStack() as stack:
        if inp.get("verificationTime"):
            at_time(stack, parse_time(inp["verificationTime"]))
        result = webauthn.verify_registration_response(
            credential=inp["response"],
            expected_challenge=b64url_decode(inp["challenge"]),
            expected_rp_id=inp["rpId"],
            expected_origin=inp["origins"],
            require_user_verification=bool(inp.get("requireUserVerification", False)),
            pem_root_certs_bytes_by_fmt=roots or None,
            supported_pub_key_algs=allowed_algorithms(inp),
        )
    return {
        "verified": True,
        "format": _val(result.fmt),
        "credentialId": b64url_encode(result.credential_id),
        "signCount": result.sign_count,
        "aaguid": result.aaguid,
        "userVerified": result.user_verified,
        "backupEligible": _val(result.credential_device_type) == "multi_device",
        "backupState": result.credential_backed_up,
        "passkeyType": "synced" if _val(result.credential_device_type) == "multi_device" else "deviceBound",
    }


def check_authentication(vector: dict) -> dict:
    inp = vector["input"]
    cred = inp["credential"]
    with ExitStack() as stack:
        if inp.get("verificationTime"):
            at_time(stack, parse_time(inp["verificationTime"]))
        result = webauthn.verify_authentication_response(
            credential=inp["response"],
            expected_challenge=b64url_decode(inp["challenge"]),
            expected_rp_id=inp["rpId"],
            expected_origin=inp["origins"],
            credential_public_key=b64url_decode(cred["publicKey"]),
            credential_current_sign_count=int(cred.get("signCount", 0)),
            require_user_verification=bool(inp.get("requireUserVerification", False)),
        )
    return {
        "verified": True,
        "credentialId": b64url_encode(result.credential_id),
        "signCount": result.new_sign_count,
        "userVerified": result.user_verified,
        "backupEligible": _val(result.credential_device_type) == "multi_device",
        "backupState": result.credential_backed_up,
    }


def json_fmt(attestation_object_b64: str):
    try:
        from webauthn.helpers import parse_attestation_object

        return _val(parse_attestation_object(b64url_decode(attestation_object_b64)).fmt)
    except Exception:  # noqa: BLE001 - malformed objects are the verifier's business
        return None


COMPARED = (
    "verified", "format", "credentialId", "signCount", "aaguid", "userVerified",
    "backupEligible", "backupState", "passkeyType",
)


def check_file(path: Path) -> tuple[str, str]:
    vector = json.loads(path.read_text())
    pyw = vector.get("pyWebauthn") or {}
    if pyw.get("skip"):
        return "SKIP", pyw["skip"]
    expect = vector.get("expect", {})
    ceremony = vector.get("ceremony")
    try:
        if ceremony == "registration":
            got = check_registration(vector)
        elif ceremony == "authentication":
            got = check_authentication(vector)
        else:
            return "FAIL", f"unknown ceremony {ceremony!r}"
    except Exception as exc:  # noqa: BLE001 - report every refusal
        if expect.get("verified") is False:
            return "OK", f"refused as expected: {type(exc).__name__}: {exc}"
        return "FAIL", f"py_webauthn refused: {type(exc).__name__}: {exc}"
    if expect.get("verified") is False:
        return "FAIL", "py_webauthn accepted a vector that must be refused"
    diffs = [
        f"{key}: expect {expect[key]!r}, py_webauthn {got[key]!r}"
        for key in COMPARED
        if key in expect and key in got and expect[key] != got[key]
    ]
    if diffs:
        return "FAIL", "; ".join(diffs)
    return "OK", ""


def main(argv: list[str]) -> int:
    targets = [Path(a) for a in argv] or [DEFAULT_DIR]
    files: list[Path] = []
    for target in targets:
        files.extend(sorted(target.rglob("*.json")) if target.is_dir() else [target])
    failures = 0
    for path in files:
        status, detail = check_file(path)
        failures += status == "FAIL"
        try:
            shown = path.relative_to(DEFAULT_DIR)
        except ValueError:
            shown = path
        print(f"{status:4} {shown}" + (f"  -- {detail}" if detail else ""))
    print(f"{len(files)} vectors, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
