"""A software WebAuthn authenticator built on python-fido2 2.2.1's data classes.

It produces what a browser would hand a relying party: the PublicKeyCredential.toJSON() of create() and get(),
with any flags, counter, attestation format and (for negative vectors) a deliberately wrong rpIdHash, clientData
type or origin. Signatures are always computed correctly over whatever was produced, so a vector built with one
"wrong" input fails exactly one check of a verifier.

Only needs `fido2` (2.2.1) and `cryptography` (which fido2 pulls in).

    from softauthn import SoftAuthenticator, Flags
    auth = SoftAuthenticator("ES256")
    reg = auth.make_credential(challenge, "example.org", "https://example.org", user_id=b"u1")
    asr = auth.get_assertion(challenge2, "example.org", "https://example.org", counter=1)

Credential key algorithms: ES256 (P-256), ES384 (P-384), ES512 (P-521), EdDSA (Ed25519), RS256 and PS256
(RSA-2048, e = 65537; PS256 signs with MGF1-SHA-256 and a 32-byte salt, i.e. salt length = digest length).
Attestation: fmt "none" (empty attStmt), "packed" self attestation (no x5c, signed by the credential key), and
"packed" with an x5c chain (signed by the attestation leaf's key; attStmt alg follows that key).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from fido2 import cbor
from fido2.cose import ES256, ES256K, ES384, ES512, PS256, RS1, RS256, CoseKey, EdDSA
from fido2.utils import sha256, websafe_encode
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    AuthenticatorAttestationResponse,
    AuthenticatorData,
    CollectedClientData,
    RegistrationResponse,
)

Flags = AuthenticatorData.FLAG  # UP UV BE BS AT ED

ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "RS256", "PS256")


# RSA algorithms python-fido2 has no class for: the same COSE key (kty 3, n, e) under another algorithm number.
class RS384(RS256):
    ALGORITHM = -258


class RS512(RS256):
    ALGORITHM = -259


class PS384(PS256):
    ALGORITHM = -38


class PS512(PS256):
    ALGORITHM = -39


_COSE_CLASS = {"ES256": ES256, "ES384": ES384, "ES512": ES512, "EdDSA": EdDSA, "RS256": RS256, "PS256": PS256,
               "RS384": RS384, "RS512": RS512, "PS384": PS384, "PS512": PS512, "RS1": RS1, "ES256K": ES256K}
_RSA_HASH = {"RS1": hashes.SHA1, "RS256": hashes.SHA256, "RS384": hashes.SHA384, "RS512": hashes.SHA512,
             "PS256": hashes.SHA256, "PS384": hashes.SHA384, "PS512": hashes.SHA512}
COSE_ALG = {name: cls.ALGORITHM for name, cls in _COSE_CLASS.items()}  # ES256 -7, ES384 -35, ES512 -36, EdDSA -8,
#                                                                       RS256 -257, PS256 -37


def b64u(data: bytes) -> str:
    """base64url without padding (what toJSON() emits)."""
    return websafe_encode(bytes(data))


def generate_key(alg: str):
    """A fresh private key (cryptography object) for a COSE algorithm name."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "ES384":
        return ec.generate_private_key(ec.SECP384R1())
    if alg == "ES512":
        return ec.generate_private_key(ec.SECP521R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "ES256K":
        return ec.generate_private_key(ec.SECP256K1())
    if alg in _RSA_HASH:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {alg}")


def sign(alg: str, key, data: bytes) -> bytes:
    """Sign as a WebAuthn authenticator does: ECDSA signatures are ASN.1 DER, EdDSA raw 64 bytes, RSA raw."""
    if alg == "ES256":
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if alg == "ES384":
        return key.sign(data, ec.ECDSA(hashes.SHA384()))
    if alg == "ES512":
        return key.sign(data, ec.ECDSA(hashes.SHA512()))
    if alg == "EdDSA":
        return key.sign(data)
    if alg == "ES256K":
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    if alg in _RSA_HASH:
        digest = _RSA_HASH[alg]()
        if alg.startswith("PS"):  # MGF1 with the same hash, salt as long as the digest (RFC 8230 §2)
            return key.sign(data, padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size), digest)
        return key.sign(data, padding.PKCS1v15(), digest)
    raise ValueError(f"unsupported algorithm {alg}")


def alg_of_key(key) -> str:
    """The COSE algorithm name an attestation key signs with (packed x5c: EC keys by curve, RSA as RS256)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}[key.curve.key_size]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise ValueError("unsupported attestation key")


@dataclass
class Attestation:
    """How make_credential attests. fmt "none"; "packed" + self_attestation; "packed" + key/chain (x5c)."""

    fmt: str = "none"
    key: object = None  # attestation leaf private key (packed x5c)
    chain: Sequence[x509.Certificate] = field(default_factory=list)  # [leaf, intermediate, ...]

    @classmethod
    def none(cls) -> "Attestation":
        return cls("none")

    @classmethod
    def packed_self(cls) -> "Attestation":
        return cls("packed")

    @classmethod
    def packed_x5c(cls, key, chain: Sequence[x509.Certificate]) -> "Attestation":
        return cls("packed", key, list(chain))


class SoftAuthenticator:
    """One credential on one software authenticator."""

    def __init__(
        self,
        alg: str = "ES256",
        aaguid: bytes = bytes(16),
        attestation: Optional[Attestation] = None,
        credential_id: Optional[bytes] = None,
        private_key=None,
        transports: Sequence[str] = ("usb",),
        attachment: str = "cross-platform",
    ):
        if alg not in _COSE_CLASS:
            raise ValueError(f"unsupported algorithm {alg}")
        if len(aaguid) != 16:
            raise ValueError("AAGUID must be 16 bytes")
        self.alg = alg
        self.aaguid = bytes(aaguid)
        self.attestation = attestation or Attestation.none()
        self.credential_id = credential_id or os.urandom(32)
        self.private_key = private_key or generate_key(alg)
        self.cose_key: CoseKey = _COSE_CLASS[alg].from_cryptography_key(self.private_key.public_key())
        self.transports = list(transports)
        self.attachment = attachment

    # -- what an RP stores after registration ------------------------------------------------------------------
    @property
    def cose_public_key(self) -> bytes:
        """The credential public key exactly as it appears in attestedCredentialData (fido2's canonical CBOR)."""
        return cbor.encode(self.cose_key)

    # -- create() ---------------------------------------------------------------------------------------------
    def make_credential(
        self,
        challenge: bytes,
        rp_id: str,
        origin: str,
        flags: Flags = Flags.UP | Flags.UV | Flags.AT,
        counter: int = 0,
        client_data_type: str = "webauthn.create",
        rp_id_hash: Optional[bytes] = None,
    ) -> dict:
        """Returns PublicKeyCredential.toJSON() of navigator.credentials.create().

        `flags` should contain AT (it is added if missing); `rp_id_hash` overrides SHA-256(rp_id) for negative tests.
        """
        flags = Flags(flags | Flags.AT)
        client_data = CollectedClientData.create(client_data_type, challenge, origin)
        acd = AttestedCredentialData.create(self.aaguid, self.credential_id, self.cose_key)
        auth_data = AuthenticatorData.create(
            rp_id_hash if rp_id_hash is not None else sha256(rp_id.encode()), flags, counter, acd
        )
        signed = bytes(auth_data) + client_data.hash
        att = self.attestation
        if att.fmt == "none":
            att_stmt: dict = {}
        elif att.fmt == "packed" and att.key is None:
            att_stmt = {"alg": COSE_ALG[self.alg], "sig": sign(self.alg, self.private_key, signed)}
        elif att.fmt == "packed":
            att_alg = alg_of_key(att.key)
            att_stmt = {
                "alg": COSE_ALG[att_alg],
                "sig": sign(att_alg, att.key, signed),
                "x5c": [c.public_bytes(serialization.Encoding.DER) for c in att.chain],
            }
        else:
            raise ValueError(f"unsupported attestation format {att.fmt}")
        attestation_object = AttestationObject.create(att.fmt, auth_data, att_stmt)
        fido2_json = dict(
            RegistrationResponse(
                raw_id=self.credential_id,
                response=AuthenticatorAttestationResponse(
                    client_data=client_data, attestation_object=attestation_object
                ),
            )
        )
        return {
            "id": fido2_json["id"],
            "rawId": fido2_json["rawId"],
            "type": "public-key",
            "response": {
                "clientDataJSON": fido2_json["response"]["clientDataJSON"],
                "attestationObject": fido2_json["response"]["attestationObject"],
                "transports": list(self.transports),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }

    # -- get() ------------------------------------------------------------------------------------------------
    def get_assertion(
        self,
        challenge: bytes,
        rp_id: str,
        origin: str,
        flags: Flags = Flags.UP | Flags.UV,
        counter: int = 1,
        user_handle: Optional[bytes] = None,
        client_data_type: str = "webauthn.get",
        rp_id_hash: Optional[bytes] = None,
        corrupt_signature: bool = False,
    ) -> dict:
        """Returns PublicKeyCredential.toJSON() of navigator.credentials.get()."""
        client_data = CollectedClientData.create(client_data_type, challenge, origin)
        auth_data = AuthenticatorData.create(
            rp_id_hash if rp_id_hash is not None else sha256(rp_id.encode()), Flags(flags), counter
        )
        signature = sign(self.alg, self.private_key, bytes(auth_data) + client_data.hash)
        if corrupt_signature:  # sign something else: a well-formed signature that does not verify
            signature = sign(self.alg, self.private_key, bytes(auth_data) + client_data.hash + b"\0")
        fido2_json = dict(
            AuthenticationResponse(
                raw_id=self.credential_id,
                response=AuthenticatorAssertionResponse(
                    client_data=client_data,
                    authenticator_data=auth_data,
                    signature=signature,
                    user_handle=user_handle,
                ),
            )
        )
        r = fido2_json["response"]
        response = {
            "clientDataJSON": r["clientDataJSON"],
            "authenticatorData": r["authenticatorData"],
            "signature": r["signature"],
        }
        if r.get("userHandle") is not None:
            response["userHandle"] = r["userHandle"]
        return {
            "id": fido2_json["id"],
            "rawId": fido2_json["rawId"],
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": self.attachment,
        }
