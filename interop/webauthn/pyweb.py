"""The py_webauthn (3.x) half of a WebAuthn vector check, for interop/test_webauthn.py and the generators.

    judged = judge(vector)                # {"verified": True, "fields": {...}} | {"verified": False, "message", "code"}
                                          # | {"skip": "reason"}
    problems = disagreements(vector, judged)                  # [] when py_webauthn agrees with the vector's expect
    problems = disagreements_with_output(vector, judged, out)  # [] when it agrees with `tessera webauthn ...`

How py_webauthn is called is check_vectors_py.py's business (check_registration / check_authentication: origins
list, require_user_verification from the input, trustAnchors or pyWebauthn.pemRootCertsByFmt as
pem_root_certs_bytes_by_fmt, every algorithm py_webauthn knows unless input.allowedAlgorithms, the clock set to
input.verificationTime); this module only turns its answer into Tessera's output names and compares.
`"pyWebauthn": {"skip": "reason"}` skips the py_webauthn half.

Fields compared (Tessera's output name <- py_webauthn):
  format <- fmt, signCount <- sign_count, credentialId <- credential_id, aaguid <- aaguid, userVerified <- user_verified,
  backupState <- credential_backed_up, backupEligible/passkeyType <- credential_device_type (multi_device = synced),
  newSignCount <- new_sign_count (authentication).
py_webauthn has no idea of attestation trust beyond "the chain validates against the roots it was given", so
attestationType / attestationTrusted are not compared. Keep this folder without __init__.py (see chromium.py).
"""
from __future__ import annotations

import base64
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_vectors_py as _cv  # noqa: E402

# py_webauthn's messages -> Tessera's WebAuthnError codes, best effort (shown in failure messages only).
_MESSAGE_CODES = [
    ("Could not verify authentication signature", "assertion.signature"),
    ("User verification is required", "authData.userNotVerified"),
    ("User was not present", "authData.userNotPresent"),
    ("User presence was required", "authData.userNotPresent"),
    ("was not greater than current count", "assertion.possibleClone"),
    ("challenge was not expected challenge", "clientData.challenge"),
    ("Unexpected client data origin", "clientData.origin"),
    ("Unexpected client data type", "clientData.type"),
    ("Unexpected RP ID hash", "authData.rpIdHash"),
    ("Unsupported credential public key alg", "credential.algorithmNotAllowed"),
    ("Certificate chain could not be validated", "attestation.untrusted"),
]


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def message_code(message: str) -> str | None:
    for needle, code in _MESSAGE_CODES:
        if needle in message:
            return code
    return None


def skip_reason(vector: dict) -> str | None:
    hint = vector.get("pyWebauthn") or {}
    return str(hint["skip"]) if hint.get("skip") else None


def judge(vector: dict) -> dict:
    """Run py_webauthn on a vector's input."""
    reason = skip_reason(vector)
    if reason:
        return {"skip": reason}
    try:
        if vector["ceremony"] == "registration":
            got = _cv.check_registration(vector)
        else:
            got = _cv.check_authentication(vector)
            got["newSignCount"] = got.pop("signCount")
            got["passkeyType"] = "synced" if got["backupEligible"] else "deviceBound"
    except Exception as e:  # py_webauthn raises its own exceptions, and sometimes others (parsing)
        message = f"{type(e).__name__}: {e}"
        if e.__cause__ is not None:
            message += f" (cause: {type(e.__cause__).__name__}: {e.__cause__})"
        return {"verified": False, "message": message, "code": message_code(message)}
    got.pop("verified", None)
    if "aaguid" in got:
        got["aaguid"] = str(got["aaguid"]).lower()
    return {"verified": True, "fields": got}


# Authentication outputs share fewer fields: backupEligible/passkeyType there are what the flags say now.
_REGISTRATION_FIELDS = ("format", "signCount", "credentialId", "aaguid", "userVerified", "backupEligible",
                        "backupState", "passkeyType")
_AUTHENTICATION_FIELDS = ("newSignCount", "userVerified", "backupState", "backupEligible", "passkeyType",
                          "credentialId")


def _shared(ceremony: str):
    return _REGISTRATION_FIELDS if ceremony == "registration" else _AUTHENTICATION_FIELDS


def disagreements(vector: dict, judged: dict) -> list[str]:
    """Where py_webauthn's judgment differs from the vector's expect (verified/rejected and shared fields)."""
    if "skip" in judged:
        return []
    expect = vector["expect"]
    want = bool(expect.get("verified", True))
    if judged["verified"] != want:
        return [f"expect verified={want}" + (f" ({expect.get('error')})" if not want else "")
                + f", py_webauthn: " + ("verified" if judged["verified"] else judged["message"])]
    if not want:
        return []
    return [f"{k}: expect {expect[k]!r}, py_webauthn {judged['fields'][k]!r}"
            for k in _shared(vector["ceremony"]) if k in expect and k in judged["fields"]
            and _norm(expect[k]) != _norm(judged["fields"][k])]


def disagreements_with_output(vector: dict, judged: dict, output: dict) -> list[str]:
    """Where py_webauthn's judgment differs from `tessera webauthn verify-*` output (fields present in both)."""
    if "skip" in judged:
        return []
    if bool(output.get("verified")) != judged["verified"]:
        return [f"tessera verified={output.get('verified')} ({output.get('error')}), py_webauthn: "
                + ("verified" if judged["verified"] else judged["message"])]
    if not judged["verified"]:
        return []
    return [f"{k}: tessera {output[k]!r}, py_webauthn {judged['fields'][k]!r}"
            for k in _shared(vector["ceremony"]) if k in output and k in judged["fields"]
            and _norm(output[k]) != _norm(judged["fields"][k])]


def _norm(value):
    return value.lower() if isinstance(value, str) and len(value) == 36 and value.count("-") == 4 else value
