#!/usr/bin/env python3
"""Writes Tests/WebAuthnTests/Vectors/fido2/*.json with the soft authenticator (softauthn.py), plus the test PKI and
FIDO MDS3 BLOB fixtures under interop/webauthn/testpki/, then checks every vector with py_webauthn.

    interop/.venv/bin/python interop/webauthn/gen_fido2_vectors.py          # (re)generate + check
    interop/.venv/bin/python interop/webauthn/gen_fido2_vectors.py --check  # only check the committed files

Needs fido2==2.2.1 and cryptography; the check needs webauthn==3.0.1 (py_webauthn).
Credential keys and credential ids are random, so every run produces different (equally valid) files: the outputs
are committed as data and the tests never regenerate them. The PKI in testpki/ is reused if present, so trust
anchors stay stable across runs (delete testpki/ for a new one). Challenges are fixed (SHA-256 of the vector name).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding  # noqa: E402

import testpki  # noqa: E402
from softauthn import Attestation, Flags, SoftAuthenticator, b64u  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
OUT = os.path.join(REPO, "Tests", "WebAuthnTests", "Vectors", "fido2")
RP_ID = "example.org"
ORIGIN = "https://example.org"
USER_ID = hashlib.sha256(b"tessera-test-user").digest()[:16]
SOURCE = (
    "interop/webauthn/softauthn.py (software authenticator on python-fido2 2.2.1 data classes), "
    "written by interop/webauthn/gen_fido2_vectors.py"
)

UP, UV, BE, BS, AT = Flags.UP, Flags.UV, Flags.BE, Flags.BS, Flags.AT


def challenge_for(name: str) -> bytes:
    return hashlib.sha256(b"tessera-fido2-vector:" + name.encode()).digest()


def aaguid_str(b: bytes) -> str:
    h = b.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


VECTORS: dict = {}


def add(name: str, ceremony: str, input_: dict, expect: dict, py: dict | None = None, note: str | None = None):
    v = {"name": f"fido2-{name}", "source": SOURCE}
    if note:
        v["description"] = note
    v["ceremony"] = ceremony
    v["input"] = input_
    v["expect"] = expect
    if py:
        v["pyWebauthn"] = py
    VECTORS[name] = v


def reg_input(name, response, require_uv=True, trust_anchors=None, allowed=None, metadata=None, origins=None):
    i = {
        "rpId": RP_ID,
        "origins": origins or [ORIGIN],
        "challenge": b64u(challenge_for(name)),
        "requireUserVerification": require_uv,
        "response": response,
    }
    if trust_anchors is not None:
        i["trustAnchors"] = trust_anchors
    if allowed is not None:
        i["allowedAlgorithms"] = allowed
    if metadata is not None:
        i["metadata"] = metadata
    return i


def reg_expect(auth: SoftAuthenticator, flags, fmt, att_type, trusted, counter=0, **extra):
    e = {
        "verified": True,
        "format": fmt,
        "attestationType": att_type,
        "attestationTrusted": trusted,
        "aaguid": aaguid_str(auth.aaguid),
        "signCount": counter,
        "backupEligible": bool(flags & BE),
        "backupState": bool(flags & BS),
        "userVerified": bool(flags & UV),
        "passkeyType": "synced" if flags & BE else "deviceBound",
        "credentialId": b64u(auth.credential_id),
    }
    e.update(extra)
    return e


def stored_credential(auth: SoftAuthenticator, sign_count: int, backup_eligible: bool):
    return {
        "id": b64u(auth.credential_id),
        "publicKey": b64u(auth.cose_public_key),
        "signCount": sign_count,
        "backupEligible": backup_eligible,
        "userHandle": b64u(USER_ID),
    }


def registration(name, auth, flags=UP | UV | AT, require_uv=True, fmt="none", att_type="none", trusted=False,
                 trust_anchors=None, py=None, expect_extra=None, **kw):
    resp = auth.make_credential(challenge_for(name), RP_ID, ORIGIN, flags=flags, counter=0)
    inp = reg_input(name, resp, require_uv=require_uv, trust_anchors=trust_anchors, **kw)
    add(name, "registration", inp, reg_expect(auth, flags, fmt, att_type, trusted, **(expect_extra or {})), py)


def authentication(name, auth, counter, stored_count, flags=UP | UV, backup_eligible=False, require_uv=True,
                   py=None):
    resp = auth.get_assertion(challenge_for(name), RP_ID, ORIGIN, flags=flags, counter=counter, user_handle=USER_ID)
    inp = {
        "rpId": RP_ID,
        "origins": [ORIGIN],
        "challenge": b64u(challenge_for(name)),
        "requireUserVerification": require_uv,
        "credential": stored_credential(auth, stored_count, backup_eligible),
        "response": resp,
    }
    exp = {"verified": True, "newSignCount": counter, "backupState": bool(flags & BS), "userVerified": bool(flags & UV)}
    add(name, "authentication", inp, exp, py)


def pem_roots(*pems):
    return {"pemRootCertsByFmt": {"packed": list(pems)}}


# ---------------------------------------------------------------------------------------------------------------
# MDS3 BLOB


def tiny_png() -> str:
    """A valid 1x1 RGBA PNG, as the data: URI MDS uses for icons."""

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x2a\x6e\xc8\xff"))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


def mds_entry(aaguid, description, status_reports, attestation_root_der):
    a = str(aaguid)
    return {
        "aaguid": a,
        "metadataStatement": {
            "legalHeader": "Test-only metadata statement for Tessera's WebAuthn tests.",
            "aaguid": a,
            "description": description,
            "authenticatorVersion": 1,
            "protocolFamily": "fido2",
            "schema": 3,
            "upv": [{"major": 1, "minor": 1}, {"major": 1, "minor": 0}],
            "authenticationAlgorithms": ["secp256r1_ecdsa_sha256_raw"],
            "publicKeyAlgAndEncodings": ["cose"],
            "attestationTypes": ["basic_full"],
            "userVerificationDetails": [[{"userVerificationMethod": "presence_internal"}],
                                        [{"userVerificationMethod": "passcode_external"}]],
            "keyProtection": ["hardware", "secure_element"],
            "matcherProtection": ["on_chip"],
            "attachmentHint": ["external", "wired"],
            "tcDisplay": [],
            "attestationRootCertificates": [base64.b64encode(attestation_root_der).decode()],
            "icon": tiny_png(),
        },
        "statusReports": status_reports,
        "timeOfLastStatusChange": status_reports[-1]["effectiveDate"],
    }


def mds_payload(att_root_der, compromised_leaf_der) -> dict:
    certified = [{"status": "FIDO_CERTIFIED", "effectiveDate": "2025-01-01"}]
    return {
        "legalHeader": "Tessera test fixture: NOT the FIDO Alliance Metadata Service. Test-only data, no warranty.",
        "no": 1,
        "nextUpdate": "2045-01-01",
        "entries": [
            mds_entry(testpki.AAGUID_CERTIFIED, "Tessera Soft Authenticator Certified", certified, att_root_der),
            mds_entry(testpki.AAGUID_REVOKED, "Tessera Soft Authenticator Revoked",
                      certified + [{"status": "REVOKED", "effectiveDate": "2025-06-01"}], att_root_der),
            mds_entry(testpki.AAGUID_UV_BYPASS, "Tessera Soft Authenticator UV Bypass",
                      certified + [{"status": "USER_VERIFICATION_BYPASS", "effectiveDate": "2025-06-01"}],
                      att_root_der),
            mds_entry(testpki.AAGUID_COMPROMISED, "Tessera Soft Authenticator Compromised",
                      certified + [{"status": "ATTESTATION_KEY_COMPROMISE", "effectiveDate": "2025-06-01",
                                    # the compromised attestation certificate (standard base64 DER), as MDS3 does
                                    "certificate": base64.b64encode(compromised_leaf_der).decode()}],
                      att_root_der),
        ],
    }


def sign_jwt(payload: dict, pki: testpki.MdsPKI) -> str:
    header = {
        "alg": "RS256",  # as the real FIDO MDS3 BLOB
        "typ": "JWT",
        # JWS x5c: standard base64 (with padding) of DER, leaf first; the root is not included.
        "x5c": [base64.b64encode(pki.signer.der).decode(), base64.b64encode(pki.intermediate.der).decode()],
    }
    enc = lambda obj: b64u(json.dumps(obj, separators=(",", ":")).encode())  # noqa: E731
    signing_input = enc(header) + "." + enc(payload)
    sig = pki.signer.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64u(sig)


# ---------------------------------------------------------------------------------------------------------------


def generate():
    att = testpki.attestation_pki()
    mds = testpki.mds_pki("mds")
    mds_wrong = testpki.mds_pki("mds-wrong")
    root_pem = att.root.pem

    payload = mds_payload(att.root.der, att.leaves["compromised"].der)
    blob = sign_jwt(payload, mds)
    with open(os.path.join(testpki.PKI_DIR, "mds-blob.jwt"), "w") as f:
        f.write(blob + "\n")
    with open(os.path.join(testpki.PKI_DIR, "mds-blob-wrong-root.jwt"), "w") as f:
        f.write(sign_jwt(payload, mds_wrong) + "\n")
    with open(os.path.join(testpki.PKI_DIR, "mds-blob-payload.json"), "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    metadata = {"blob": blob, "rootCertificate": mds.root.pem}

    # 1. fmt none registration + authentication for every algorithm
    for alg in ("ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256"):
        a = alg.lower()
        auth = SoftAuthenticator(alg)
        py_skip = None
        if alg == "ES384":
            py_skip = {"skip": "py_webauthn 3.0.1 has no ES384 (-35) in COSEAlgorithmIdentifier"}
        registration(f"{a}-none-registration", auth, py=py_skip)
        authentication(f"{a}-authentication", auth, counter=1, stored_count=0, py=py_skip)
        if alg in ("ES256", "EdDSA", "RS256"):
            authentication(f"{a}-authentication-2", auth, counter=2, stored_count=1)
            authentication(f"{a}-authentication-3", auth, counter=3, stored_count=2)

    # synced (BE+BS) passkey, fmt none: registration + authentication
    synced = SoftAuthenticator("ES256")
    registration("es256-synced-none-registration", synced, flags=UP | UV | BE | BS | AT)
    authentication("es256-synced-authentication", synced, counter=0, stored_count=0, flags=UP | UV | BE | BS,
                   backup_eligible=True)

    # 2. packed self attestation
    for alg in ("ES256", "EdDSA", "RS256"):
        auth = SoftAuthenticator(alg, aaguid=bytes.fromhex("7e55e2a05e1f45e18000000000000001"),
                                 attestation=Attestation.packed_self())
        registration(f"{alg.lower()}-packed-self-registration", auth, fmt="packed", att_type="self", trusted=False)

    # 3. packed x5c ("basic")
    def x5c_auth(leaf, aaguid):
        return SoftAuthenticator("ES256", aaguid=aaguid.bytes,
                                 attestation=Attestation.packed_x5c(att.leaves[leaf].key, att.chain(leaf)))

    certified = x5c_auth("certified", testpki.AAGUID_CERTIFIED)
    registration("es256-packed-x5c-trusted-registration", certified, fmt="packed", att_type="basic", trusted=True,
                 trust_anchors=[root_pem], py=pem_roots(root_pem))
    registration("es256-packed-x5c-untrusted-registration", x5c_auth("certified", testpki.AAGUID_CERTIFIED),
                 fmt="packed", att_type="basic", trusted=False)
    registration("es256-packed-x5c-synced-registration", x5c_auth("certified", testpki.AAGUID_CERTIFIED),
                 flags=UP | UV | BE | BS | AT, fmt="packed", att_type="basic", trusted=True,
                 trust_anchors=[root_pem], py=pem_roots(root_pem))

    # 4. metadata (MDS3 BLOB) — no trustAnchors: the anchor comes from the metadata statement
    mds_skip = {"skip": "py_webauthn 3.0.1 does not read FIDO MDS3 BLOBs (status reports); it would accept this"}
    registration("mds-certified-registration", x5c_auth("certified", testpki.AAGUID_CERTIFIED), fmt="packed",
                 att_type="basic", trusted=True, metadata=metadata,
                 expect_extra={"metadataDescription": "Tessera Soft Authenticator Certified"},
                 py=dict(pem_roots(root_pem), note="the root py_webauthn is given is the metadata statement's "
                                                   "attestationRootCertificates[0]; it does not read the BLOB"))
    for name, leaf, aaguid, code in (
        ("mds-revoked-registration", "revoked", testpki.AAGUID_REVOKED, "metadata.authenticatorRevoked"),
        ("mds-uv-bypass-registration", "uv-bypass", testpki.AAGUID_UV_BYPASS, "metadata.userVerificationBypass"),
        ("mds-key-compromise-registration", "compromised", testpki.AAGUID_COMPROMISED,
         "metadata.authenticatorRevoked"),
    ):
        a = x5c_auth(leaf, aaguid)
        resp = a.make_credential(challenge_for(name), RP_ID, ORIGIN, flags=UP | UV | AT)
        add(name, "registration", reg_input(name, resp, metadata=metadata), {"verified": False, "error": code},
            mds_skip)

    wrong_blob = open(os.path.join(testpki.PKI_DIR, "mds-blob-wrong-root.jwt")).read().strip()
    n = "mds-wrong-root-registration"
    add(n, "registration", reg_input(n, x5c_auth("certified", testpki.AAGUID_CERTIFIED).make_credential(
        challenge_for(n), RP_ID, ORIGIN), metadata={"blob": wrong_blob, "rootCertificate": mds.root.pem}),
        {"verified": False, "error": "metadata.blobInvalid"},
        {"skip": "py_webauthn 3.0.1 does not read FIDO MDS3 BLOBs; it would accept this"},
        "metadata.blob is mds-blob-wrong-root.jwt: same payload, signed by an impostor chain whose subject names "
        "equal the real MDS PKI's; rootCertificate is the real mds-root.pem")

    # 5. rejections: each valid except one thing
    def reject(name, ceremony, inp, code, py=None, note=None):
        add(name, ceremony, inp, {"verified": False, "error": code}, py, note)

    a = SoftAuthenticator("ES256")
    n = "reject-rpidhash-registration"
    reject(n, "registration", reg_input(n, a.make_credential(
        challenge_for(n), RP_ID, ORIGIN, rp_id_hash=hashlib.sha256(b"example.com").digest())), "authData.rpIdHash",
        note="authData.rpIdHash = SHA-256(\"example.com\")")

    def auth_input(n, a, resp, stored_count=0, be=False, require_uv=True):
        return {"rpId": RP_ID, "origins": [ORIGIN], "challenge": b64u(challenge_for(n)),
                "requireUserVerification": require_uv, "credential": stored_credential(a, stored_count, be),
                "response": resp}

    n = "reject-rpidhash-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, counter=1, user_handle=USER_ID,
        rp_id_hash=hashlib.sha256(b"example.com").digest())), "authData.rpIdHash",
        note="authData.rpIdHash = SHA-256(\"example.com\")")

    n = "reject-user-not-present-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, flags=Flags(0), counter=1, user_handle=USER_ID), require_uv=False),
        "authData.userNotPresent", note="flags UP=0 UV=0; requireUserVerification false")

    n = "reject-user-not-present-registration"
    reject(n, "registration", reg_input(n, a.make_credential(challenge_for(n), RP_ID, ORIGIN, flags=AT),
                                        require_uv=False),
           "authData.userNotPresent", note="flags AT only (UP=0 UV=0); requireUserVerification false")

    n = "reject-backup-state-without-eligibility-registration"
    reject(n, "registration", reg_input(n, a.make_credential(challenge_for(n), RP_ID, ORIGIN,
                                                             flags=UP | UV | BS | AT)),
           "authData.backupStateWithoutEligibility", note="flags BS=1, BE=0")

    be = SoftAuthenticator("ES256")
    n = "reject-backup-eligibility-changed-authentication"
    reject(n, "authentication", auth_input(n, be, be.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, flags=UP | UV, counter=0, user_handle=USER_ID), be=True),
        "authData.backupEligibilityChanged",
        py={"skip": "py_webauthn 3.0.1 is not told the stored backupEligible and does not compare it"},
        note="stored credential backupEligible true; assertion BE=0 BS=0 (counter 0 = no counter)")

    n = "reject-clientdata-type-registration"
    reject(n, "registration", reg_input(n, a.make_credential(challenge_for(n), RP_ID, ORIGIN,
                                                             client_data_type="webauthn.get")),
           "clientData.type", note="clientDataJSON.type \"webauthn.get\" in a registration")

    n = "reject-origin-registration"
    reject(n, "registration", reg_input(n, a.make_credential(challenge_for(n), RP_ID,
                                                             "https://example.org.evil.com")),
           "clientData.origin", note="clientDataJSON.origin \"https://example.org.evil.com\"")

    n = "reject-origin-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, "https://example.org.evil.com", counter=1, user_handle=USER_ID)),
        "clientData.origin", note="clientDataJSON.origin \"https://example.org.evil.com\"")

    ed = SoftAuthenticator("EdDSA")
    n = "reject-algorithm-not-allowed-registration"
    reject(n, "registration", reg_input(n, ed.make_credential(challenge_for(n), RP_ID, ORIGIN), allowed=[-7]),
           "credential.algorithmNotAllowed", note="EdDSA (-8) credential, allowedAlgorithms [-7]")

    n = "reject-attestation-cert-ou-registration"
    bad = x5c_auth("bad-ou", testpki.AAGUID_CERTIFIED)
    reject(n, "registration", reg_input(n, bad.make_credential(challenge_for(n), RP_ID, ORIGIN),
                                        trust_anchors=[root_pem]),
           "attestation.certificateRequirements",
           py={"skip": "py_webauthn 3.0.1 does not check the packed attestation certificate requirements "
                       "(WebAuthn §8.2.1); it accepts this", **pem_roots(root_pem)},
           note="leaf OU \"Security Key Attestation\" (must be \"Authenticator Attestation\"); chains to the anchor")

    n = "reject-attestation-aaguid-mismatch-registration"
    mm = x5c_auth("aaguid-mismatch", testpki.AAGUID_CERTIFIED)
    reject(n, "registration", reg_input(n, mm.make_credential(challenge_for(n), RP_ID, ORIGIN),
                                        trust_anchors=[root_pem]),
           "attestation.aaguidMismatch",
           py={"skip": "py_webauthn 3.0.1 does not compare id-fido-gen-ce-aaguid with authData's AAGUID; "
                       "it accepts this", **pem_roots(root_pem)},
           note=f"leaf id-fido-gen-ce-aaguid {testpki.AAGUID_OTHER}, authData AAGUID {testpki.AAGUID_CERTIFIED}")

    # a few more codes from the README, cheap to make
    n = "reject-bad-signature-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, counter=1, user_handle=USER_ID, corrupt_signature=True)),
        "assertion.signature", note="well-formed ECDSA signature over different bytes")

    n = "reject-user-not-verified-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, flags=UP, counter=1, user_handle=USER_ID)),
        "authData.userNotVerified", note="requireUserVerification true, flags UP only")

    n = "reject-challenge-authentication"
    resp = a.get_assertion(challenge_for(n + "-other"), RP_ID, ORIGIN, counter=1, user_handle=USER_ID)
    reject(n, "authentication", auth_input(n, a, resp), "clientData.challenge",
           note="clientDataJSON.challenge is not input.challenge")

    n = "reject-possible-clone-authentication"
    reject(n, "authentication", auth_input(n, a, a.get_assertion(
        challenge_for(n), RP_ID, ORIGIN, counter=5, user_handle=USER_ID), stored_count=5),
        "assertion.possibleClone", note="stored signCount 5, assertion counter 5")

    os.makedirs(OUT, exist_ok=True)
    for old in glob.glob(os.path.join(OUT, "*.json")):
        os.remove(old)
    for name, v in VECTORS.items():
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(v, f, indent=2)
            f.write("\n")
    print(f"wrote {len(VECTORS)} vectors to {OUT}")


# ---------------------------------------------------------------------------------------------------------------
# py_webauthn check


def b64u_dec(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def py_webauthn_verdict(v: dict):
    """Returns (accepted: bool, detail: str)."""
    import webauthn
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    i = v["input"]
    py = v.get("pyWebauthn", {})
    roots = py.get("pemRootCertsByFmt")
    if roots is None and i.get("trustAnchors"):
        roots = {"packed": i["trustAnchors"]}
    try:
        if v["ceremony"] == "registration":
            # like interop/webauthn/check_vectors_py.py: every algorithm py_webauthn knows (its default is only
            # -8, -7, -257) unless the input restricts them
            algs = list(COSEAlgorithmIdentifier)
            if "allowedAlgorithms" in i:
                algs = [COSEAlgorithmIdentifier(a) for a in i["allowedAlgorithms"]]
            r = webauthn.verify_registration_response(
                credential=i["response"],
                expected_challenge=b64u_dec(i["challenge"]),
                expected_rp_id=i["rpId"],
                expected_origin=i["origins"],
                require_user_verification=i["requireUserVerification"],
                supported_pub_key_algs=algs,
                pem_root_certs_bytes_by_fmt={k: [p.encode() for p in l] for k, l in roots.items()} if roots else None,
            )
            got = {
                "format": str(getattr(r.fmt, "value", r.fmt)),
                "aaguid": r.aaguid,
                "signCount": r.sign_count,
                "userVerified": r.user_verified,
                "backupState": r.credential_backed_up,
                "passkeyType": "synced"
                if str(getattr(r.credential_device_type, "value", r.credential_device_type)) == "multi_device"
                else "deviceBound",
                "credentialId": b64u(r.credential_id),
            }
        else:
            c = i["credential"]
            r = webauthn.verify_authentication_response(
                credential=i["response"],
                expected_challenge=b64u_dec(i["challenge"]),
                expected_rp_id=i["rpId"],
                expected_origin=i["origins"],
                credential_public_key=b64u_dec(c["publicKey"]),
                credential_current_sign_count=c["signCount"],
                require_user_verification=i["requireUserVerification"],
            )
            got = {"newSignCount": r.new_sign_count, "backupState": r.credential_backed_up,
                   "userVerified": r.user_verified}
    except Exception as e:  # noqa: BLE001
        return False, f"{type(e).__name__}: {e}"
    mismatches = {k: (got[k], v["expect"][k]) for k in got if k in v["expect"] and v["expect"][k] != got[k]}
    return True, ("mismatch " + json.dumps(mismatches)) if mismatches else "ok"


def fido2_second_opinion():
    """python-fido2's own packed attestation verifier (checks §8.2.1 certificate requirements and the AAGUID
    extension) and its MDS3 implementation (parse_blob + MdsAttestationVerifier), on the x5c/MDS vectors."""
    from fido2.attestation import AttestationVerifier, UntrustedAttestation
    from fido2.mds3 import MdsAttestationVerifier, parse_blob
    from fido2.webauthn import AttestationObject
    from cryptography import x509 as _x509
    from cryptography.hazmat.primitives.serialization import Encoding

    def der(pem):
        return _x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)

    class Anchors(AttestationVerifier):
        def __init__(self, roots):
            super().__init__()
            self.roots = roots

        def ca_lookup(self, result, auth_data):
            return self.roots[0] if self.roots else None

    mds_root = der(open(os.path.join(testpki.PKI_DIR, "mds-root.pem")).read())
    blob = open(os.path.join(testpki.PKI_DIR, "mds-blob.jwt"), "rb").read().strip()
    payload = parse_blob(blob, mds_root)
    print(f"fido2 parse_blob(mds-blob.jwt, mds-root): ok, {len(payload.entries)} entries")
    try:
        parse_blob(open(os.path.join(testpki.PKI_DIR, "mds-blob-wrong-root.jwt"), "rb").read().strip(), mds_root)
        print("fido2 parse_blob(mds-blob-wrong-root.jwt, mds-root): ACCEPTED (wrong!)")
    except Exception as e:  # noqa: BLE001
        print(f"fido2 parse_blob(mds-blob-wrong-root.jwt, mds-root): rejected ({type(e).__name__})")
    for path in sorted(glob.glob(os.path.join(OUT, "*.json"))):
        v = json.load(open(path))
        i = v["input"]
        if v["ceremony"] != "registration":
            continue
        ao = AttestationObject(b64u_dec(i["response"]["response"]["attestationObject"]))
        if "x5c" not in ao.att_stmt:
            continue
        cdh = hashlib.sha256(b64u_dec(i["response"]["response"]["clientDataJSON"])).digest()
        try:
            if "metadata" in i:
                m = i["metadata"]
                verifier = MdsAttestationVerifier(parse_blob(m["blob"].encode(), der(m["rootCertificate"])))
            else:
                verifier = Anchors([der(p) for p in i.get("trustAnchors", [])])
            verifier.verify_attestation(ao, cdh)
            verdict = "trusted"
        except UntrustedAttestation as e:
            verdict = f"untrusted ({e})"[:80]
        except Exception as e:  # noqa: BLE001
            verdict = f"invalid ({type(e).__name__}: {e})"[:110]
        print(f"fido2 {os.path.basename(path):56s} expect={v['expect'].get('error', 'accept'):36s} {verdict}")


def check() -> int:
    failures = 0
    for path in sorted(glob.glob(os.path.join(OUT, "*.json"))):
        v = json.load(open(path))
        accepted, detail = py_webauthn_verdict(v)
        should = v["expect"]["verified"]
        skip = v.get("pyWebauthn", {}).get("skip")
        agree = accepted == should and not detail.startswith("mismatch")
        status = "agree" if agree else ("SKIP " if skip else "FAIL ")
        if not agree and not skip:
            failures += 1
        print(f"{status} {os.path.basename(path):58s} expect={'accept' if should else v['expect']['error']:40s} "
              f"py_webauthn={'accept' if accepted else 'reject'} ({detail[:110]})")
    print(f"{failures} disagreement(s) outside pyWebauthn.skip")
    return 1 if failures else 0


if __name__ == "__main__":
    if "--check" not in sys.argv:
        generate()
    rc = check()
    fido2_second_opinion()
    sys.exit(rc)
