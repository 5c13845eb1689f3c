#!/usr/bin/env python3
"""Write WebAuthn vectors from real Chromium's CDP virtual authenticator to Tests/WebAuthnTests/Vectors/chromium/.

    interop/.venv/bin/python interop/webauthn/gen_chromium_vectors.py [--out DIR] [--check]

Every run makes new keys and challenges, so the files change completely; commit them as they come out. Each vector
is checked with py_webauthn 3.x before it is written (--check only runs and checks, writing nothing).
Needs Debian's chromium + chromium-driver and interop/requirements.txt (selenium, webauthn, cbor2).

Scenarios (authenticator options; see chromium.py):
  ctap2-none-synced      ctap2 internal RK UV, defaultBackupEligibility/State → fmt none, BE=1 BS=1
  ctap2-none-devicebound the same without the backup options → BE=0 BS=0
  ctap2-packed-synced    attestation "direct" → fmt packed with x5c (Chromium's self-signed batch certificate)
  ctap2-packed-devicebound
  u2f-fido-u2f           u2f usb, attestation "direct" → fmt fido-u2f
  u2f-none               u2f usb, attestation "none" → fmt none
Each gives a registration and one or two authentications. The x5c variants also get a "-trusted" registration
whose input lists the attestation certificate as a trust anchor (attestationTrusted true; without it false).
Rejections come from CDP response override bits and from replaying/re-targeting real assertions.
"""
from __future__ import annotations

import argparse
import datetime
import json
import secrets
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import chromium as C  # noqa: E402
import pyweb  # noqa: E402

REPO = HERE.parent.parent
DEFAULT_OUT = REPO / "Tests" / "WebAuthnTests" / "Vectors" / "chromium"


def cert_pem(der: bytes) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()


def cert_subject(der: bytes) -> str:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


class Generator:
    def __init__(self, chrome: C.Chromium, date: str):
        self.c = chrome
        self.date = date
        self.vectors: list[dict] = []
        self.notes: list[str] = []

    def source(self, options: dict, what: str) -> str:
        opts = ", ".join(f"{k}={json.dumps(v)}" for k, v in options.items())
        return (f"Chromium {self.c.version} (Debian chromium + chromedriver {self.c.driver_version.split(' ')[0]}), "
                f"CDP WebAuthn.addVirtualAuthenticator {{{opts}}}; {what}; driven by Selenium through "
                f"interop/webauthn/gen_chromium_vectors.py on {self.date}")

    def add(self, name: str, ceremony: str, source: str, inp: dict, expect: dict, py_hint: dict | None = None):
        v = {"name": f"chromium-{name}", "source": source, "ceremony": ceremony, "input": inp, "expect": expect}
        if py_hint:
            v["pyWebauthn"] = py_hint
        self.vectors.append(v)
        return v

    # ------------------------------------------------------------------ one scenario
    def scenario(self, key: str, options: dict, *, attestation: str, uv: str, discoverable: bool, logins: int):
        c = self.c
        aid = c.add_authenticator(options)
        require_uv = uv == "required"
        reg = c.register(attestation=attestation, user_verification=uv,
                         resident_key="required" if discoverable else "discouraged")
        att = C.parse_attestation_object(C.b64u_decode(reg["response"]["response"]["attestationObject"]))
        p = att["parsed"]
        if not att["canonical"]:
            self.notes.append(f"{key}: attestationObject is not canonical CBOR")
        if p["extensionsAndTrailing"]:
            self.notes.append(f"{key}: authData has {len(p['extensionsAndTrailing'])} bytes after the COSE key")
        flags = "".join(n for n, b in (("UP", p["up"]), ("UV", p["uv"]), ("BE", p["be"]), ("BS", p["bs"]),
                                        ("AT", p["at"]), ("ED", p["ed"])) if b)
        self.notes.append(f"{key}: fmt={att['fmt']} flags={flags} (0x{p['flags']:02x}) signCount={p['signCount']} "
                          f"aaguid={p['aaguid']} attStmt keys={sorted(att['attStmt'])} "
                          f"transports={reg['response']['response'].get('transports')} "
                          f"attachment={reg['response'].get('authenticatorAttachment')}")
        x5c = att["attStmt"].get("x5c") or []
        att_type = "none" if att["fmt"] == "none" else ("basic" if x5c else "self")
        reg_expect = {
            "verified": True, "format": att["fmt"], "attestationType": att_type, "attestationTrusted": False,
            "aaguid": p["aaguid"], "signCount": p["signCount"], "backupEligible": p["be"], "backupState": p["bs"],
            "userVerified": p["uv"], "passkeyType": "synced" if p["be"] else "deviceBound",
            "credentialId": C.b64u(p["credentialId"]),
        }
        src = self.source(options, f"create() with attestation={json.dumps(attestation)}, "
                                   f"userVerification={json.dumps(uv)}")
        reg_in = C.registration_input(reg, c.origin, require_uv=require_uv)
        self.add(f"{key}-registration", "registration", src, reg_in, reg_expect)
        if x5c:
            self.notes.append(f"{key}: x5c has {len(x5c)} certificate(s): {cert_subject(x5c[0])}")
            trusted_in = dict(reg_in, trustAnchors=[cert_pem(x5c[-1])])
            self.add(f"{key}-registration-trusted", "registration",
                     src + "; trustAnchors = the x5c certificate itself (Chromium's self-signed batch certificate)",
                     trusted_in, dict(reg_expect, attestationTrusted=True))

        stored = C.stored_credential(reg)
        allow = None if discoverable else [stored["id"]]
        last = None
        for i in range(1, logins + 1):
            auth = c.login(user_verification=uv, allow=allow)
            ad = C.parse_auth_data(C.b64u_decode(auth["response"]["response"]["authenticatorData"]))
            uh = auth["response"]["response"].get("userHandle")
            self.notes.append(f"{key}: login {i}: flags=0x{ad['flags']:02x} signCount={ad['signCount']} "
                              f"userHandle={'present' if uh else repr(uh)}")
            inp = C.authentication_input(auth, stored, c.origin, require_uv=require_uv, user_handle=uh)
            self.add(f"{key}-authentication-{i}", "authentication",
                     self.source(options, f"get() #{i} after the registration in chromium-{key}-registration"
                                          f" (credential.signCount = the registration's)"),
                     inp, {"verified": True, "newSignCount": ad["signCount"], "backupState": ad["bs"],
                           "userVerified": ad["uv"]})
            last = (auth, ad, inp)
        return aid, reg, stored, allow, last

    # ------------------------------------------------------------------ rejections
    def rejections(self, key: str, options: dict, aid: str, stored: dict, allow, last, *, uv: bool):
        c = self.c
        uv_pref = "required" if uv else "discouraged"

        def login_with(**bits):
            c.set_override_bits(aid, **bits)
            try:
                auth = c.login(user_verification=uv_pref, allow=allow)
            finally:
                c.set_override_bits(aid)
            return auth, C.parse_auth_data(C.b64u_decode(auth["response"]["response"]["authenticatorData"]))

        key_bytes = C.b64u_decode(stored["publicKey"])

        def keep(what: str, auth, ad, want_signature: bool) -> bool:
            """Keep an override-bits assertion only if the bits did what they say (U2F ignores some)."""
            good = C.signature_valid(key_bytes, auth["response"])
            self.notes.append(f"{key}: {what}: flags=0x{ad['flags']:02x} signCount={ad['signCount']} "
                              f"signature {'valid' if good else 'INVALID'}")
            return good == want_signature

        auth, ad = login_with(isBogusSignature=True)
        if keep("isBogusSignature", auth, ad, want_signature=False):
            self.add(f"{key}-reject-bogus-signature", "authentication",
                     self.source(options, "get() with WebAuthn.setResponseOverrideBits {isBogusSignature: true}"),
                     C.authentication_input(auth, stored, c.origin, require_uv=uv,
                                            user_handle=auth["response"]["response"].get("userHandle")),
                     {"verified": False, "error": "assertion.signature"})
        else:
            self.notes.append(f"{key}: isBogusSignature had no effect; no vector")

        if uv:
            auth, ad = login_with(isBadUV=True)
            if keep("isBadUV", auth, ad, want_signature=True) and not ad["uv"]:
                self.add(f"{key}-reject-bad-uv", "authentication",
                         self.source(options, "get() with WebAuthn.setResponseOverrideBits {isBadUV: true} (UV=0, "
                                              "signature valid); the RP requires user verification"),
                         C.authentication_input(auth, stored, c.origin, require_uv=True,
                                                user_handle=auth["response"]["response"].get("userHandle")),
                         {"verified": False, "error": "authData.userNotVerified"})
            else:
                self.notes.append(f"{key}: isBadUV did not give UV=0 with a valid signature; no vector")

        auth, ad = login_with(isBadUP=True)
        if keep("isBadUP", auth, ad, want_signature=True) and not ad["up"]:
            self.add(f"{key}-reject-bad-up", "authentication",
                     self.source(options, "get() with WebAuthn.setResponseOverrideBits {isBadUP: true} "
                                          "(UP=0, signature valid)"),
                     C.authentication_input(auth, stored, c.origin, require_uv=False,
                                            user_handle=auth["response"]["response"].get("userHandle")),
                     {"verified": False, "error": "authData.userNotPresent"})
        else:
            self.notes.append(f"{key}: isBadUP did not give UP=0 with a valid signature; no vector")

        auth, ad, inp = last
        replay = json.loads(json.dumps(inp))
        replay["credential"]["signCount"] = ad["signCount"]
        self.add(f"{key}-reject-replayed-counter", "authentication",
                 self.source(options, f"a real get() assertion (counter {ad['signCount']}) checked against a stored "
                                      f"signCount equal to its counter, as if replayed"),
                 replay, {"verified": False, "error": "assertion.possibleClone"})

        wrong = json.loads(json.dumps(inp))
        wrong["challenge"] = C.b64u(secrets.token_bytes(32))
        self.add(f"{key}-reject-wrong-challenge", "authentication",
                 self.source(options, "a real get() assertion checked against a different expected challenge"),
                 wrong, {"verified": False, "error": "clientData.challenge"})

    # ------------------------------------------------------------------ all
    def run(self):
        aid, reg, stored, allow, last = self.scenario(
            "ctap2-none-synced", C.CTAP2_SYNCED, attestation="none", uv="required", discoverable=True, logins=2)
        self.rejections("ctap2-none-synced", C.CTAP2_SYNCED, aid, stored, allow, last, uv=True)

        self.scenario("ctap2-none-devicebound", C.CTAP2_DEVICE_BOUND, attestation="none", uv="required",
                      discoverable=True, logins=1)
        self.scenario("ctap2-packed-synced", C.CTAP2_SYNCED, attestation="direct", uv="required",
                      discoverable=True, logins=1)
        self.scenario("ctap2-packed-devicebound", C.CTAP2_DEVICE_BOUND, attestation="direct", uv="required",
                      discoverable=True, logins=1)

        aid, reg, stored, allow, last = self.scenario(
            "u2f-fido-u2f", C.U2F_USB, attestation="direct", uv="discouraged", discoverable=False, logins=2)
        self.rejections("u2f-fido-u2f", C.U2F_USB, aid, stored, allow, last, uv=False)
        self.scenario("u2f-none", C.U2F_USB, attestation="none", uv="discouraged", discoverable=False, logins=1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="generate and check with py_webauthn, write nothing")
    args = ap.parse_args()

    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    with C.Chromium() as chrome:
        gen = Generator(chrome, date)
        gen.run()
        version = chrome.version

    bad = 0
    for v in gen.vectors:
        judged = pyweb.judge(v)
        problems = pyweb.disagreements(v, judged)
        status = "verified" if judged.get("verified") else f"rejected: {judged.get('message')}"
        print(f"{v['name']:55s} py_webauthn {status}" + (f"  DISAGREES: {problems}" if problems else ""))
        bad += bool(problems)
    for n in gen.notes:
        print("note:", n)
    if bad:
        print(f"{bad} vector(s) disagree with py_webauthn; nothing written", file=sys.stderr)
        return 1
    if args.check:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("chromium-*.json"):
        old.unlink()
    for v in gen.vectors:
        (args.out / f"{v['name']}.json").write_text(json.dumps(v, indent=2) + "\n")
    print(f"wrote {len(gen.vectors)} vectors from Chromium {version} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
