"""Test-only PKIs for the fido2 vectors: WebAuthn attestation certificates and a FIDO MDS3 BLOB signer.

Everything lives in interop/webauthn/testpki/ as PEM (private keys included: they are test-only and committed so
that the vectors can be extended later with the same trust anchors). `load_or_create` reuses existing files, so
re-running the generator keeps the roots (and therefore the trust anchors embedded in committed vectors) stable.
Delete the directory to start a fresh PKI.

Attestation PKI (P-256 / ECDSA-SHA256):
    "Tessera Test Attestation Root" -> "Tessera Test Attestation CA" -> leaves, one per authenticator model
Leaves meet WebAuthn §8.2.1 (packed attestation certificate requirements): X.509 v3; subject C=US,
O=Tessera Test Vendor, OU=Authenticator Attestation, CN=<model>; basicConstraints CA=false (critical);
id-fido-gen-ce-aaguid (1.3.6.1.4.1.45724.1.1.4, not critical) = OCTET STRING(16-byte AAGUID);
validity 2025-01-01T00:00:00Z .. 2045-01-01T00:00:00Z. Two leaves break the rules on purpose (see LEAVES).

MDS PKI (RSA-2048, sha256WithRSAEncryption, like the real FIDO MDS): "Tessera Test MDS Root" ->
"Tessera Test MDS CA" -> "Tessera Test MDS Signer", which signs the BLOB as a JWS with alg RS256.
Wrong MDS PKI: the SAME subject names with different keys (an impostor chain), for mds-blob-wrong-root.jwt: a
verifier that matches names instead of checking signatures up to mds-root.pem will wrongly accept it.
"""

from __future__ import annotations

import datetime
import os
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
PKI_DIR = os.path.join(HERE, "testpki")

NOT_BEFORE = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2045, 1, 1, tzinfo=datetime.timezone.utc)
VENDOR = "Tessera Test Vendor"
ID_FIDO_GEN_CE_AAGUID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")

# AAGUIDs of the packed-x5c soft authenticators (one attestation leaf each).
AAGUID_CERTIFIED = uuid.UUID("7e55e2a0-0a0a-4a0a-8a0a-00000000000a")  # MDS: FIDO_CERTIFIED
AAGUID_REVOKED = uuid.UUID("7e55e2a0-0b0b-4b0b-8b0b-00000000000b")  # MDS: latest status REVOKED
AAGUID_UV_BYPASS = uuid.UUID("7e55e2a0-0c0c-4c0c-8c0c-00000000000c")  # MDS: latest USER_VERIFICATION_BYPASS
AAGUID_COMPROMISED = uuid.UUID("7e55e2a0-0d0d-4d0d-8d0d-00000000000d")  # MDS: ATTESTATION_KEY_COMPROMISE
AAGUID_OTHER = uuid.UUID("7e55e2a0-0e0e-4e0e-8e0e-00000000000e")  # only in the aaguid-mismatch leaf's extension

# name -> (CN, OU, AAGUID in the certificate extension)
LEAVES = {
    "certified": ("Tessera Soft Authenticator Certified", "Authenticator Attestation", AAGUID_CERTIFIED),
    "revoked": ("Tessera Soft Authenticator Revoked", "Authenticator Attestation", AAGUID_REVOKED),
    "uv-bypass": ("Tessera Soft Authenticator UV Bypass", "Authenticator Attestation", AAGUID_UV_BYPASS),
    "compromised": ("Tessera Soft Authenticator Compromised", "Authenticator Attestation", AAGUID_COMPROMISED),
    # Broken on purpose: OU is not "Authenticator Attestation" (certificate requirements, §8.2.1).
    "bad-ou": ("Tessera Soft Authenticator Bad OU", "Security Key Attestation", AAGUID_CERTIFIED),
    # Broken on purpose: the extension names AAGUID_OTHER; the authenticator puts AAGUID_CERTIFIED in authData.
    "aaguid-mismatch": ("Tessera Soft Authenticator AAGUID Mismatch", "Authenticator Attestation", AAGUID_OTHER),
}


@dataclass
class CertKey:
    cert: x509.Certificate
    key: object  # EC P-256 (attestation PKI) or RSA-2048 (MDS PKI) private key

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def _name(cn: str, ou: str | None = None, o: str = VENDOR, c: str = "US") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, c), x509.NameAttribute(NameOID.ORGANIZATION_NAME, o)]
    if ou is not None:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def _build(subject: x509.Name, key, issuer: CertKey | None, ca: bool, path_length=None, extra=()) -> x509.Certificate:
    issuer_name = issuer.cert.subject if issuer else subject
    signer = issuer.key if issuer else key
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # keyCertSign, cRLSign
    else:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )  # digitalSignature
    if issuer:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
        )
    for ext, critical in extra:
        b = b.add_extension(ext, critical=critical)
    return b.sign(signer, hashes.SHA256())  # v3 is cryptography's only output version


def _load_or_create(name: str, make, keygen=lambda: ec.generate_private_key(ec.SECP256R1())) -> CertKey:
    cert_path = os.path.join(PKI_DIR, f"{name}.pem")
    key_path = os.path.join(PKI_DIR, f"{name}-key.pem")
    if os.path.exists(cert_path) and os.path.exists(key_path):
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        return CertKey(cert, key)
    key = keygen()
    cert = make(key)
    os.makedirs(PKI_DIR, exist_ok=True)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return CertKey(cert, key)


def aaguid_extension(aaguid: uuid.UUID) -> x509.UnrecognizedExtension:
    # extnValue = DER OCTET STRING wrapping the 16 AAGUID bytes (04 10 <16 bytes>)
    return x509.UnrecognizedExtension(ID_FIDO_GEN_CE_AAGUID, b"\x04\x10" + aaguid.bytes)


@dataclass
class AttestationPKI:
    root: CertKey
    intermediate: CertKey
    leaves: dict  # name -> CertKey

    def chain(self, leaf: str) -> list:
        """x5c order: [leaf, intermediate] (the root is the trust anchor, not sent)."""
        return [self.leaves[leaf].cert, self.intermediate.cert]


def attestation_pki() -> AttestationPKI:
    root = _load_or_create(
        "attestation-root",
        lambda k: _build(_name("Tessera Test Attestation Root"), k, None, ca=True, path_length=1),
    )
    inter = _load_or_create(
        "attestation-intermediate",
        lambda k: _build(_name("Tessera Test Attestation CA"), k, root, ca=True, path_length=0),
    )
    leaves = {}
    for name, (cn, ou, aaguid) in LEAVES.items():
        leaves[name] = _load_or_create(
            f"attestation-leaf-{name}",
            lambda k, cn=cn, ou=ou, aaguid=aaguid: _build(
                _name(cn, ou), k, inter, ca=False, extra=[(aaguid_extension(aaguid), False)]
            ),
        )
    return AttestationPKI(root, inter, leaves)


@dataclass
class MdsPKI:
    root: CertKey
    intermediate: CertKey
    signer: CertKey


def mds_pki(prefix: str = "mds") -> MdsPKI:
    """prefix "mds" is the real test MDS PKI; "mds-wrong" an impostor with identical names and other keys."""
    o = "Tessera Test MDS"
    rsa2048 = lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)  # noqa: E731
    root = _load_or_create(
        f"{prefix}-root",
        lambda k: _build(_name("Tessera Test MDS Root", o=o), k, None, ca=True, path_length=1),
        rsa2048,
    )
    inter = _load_or_create(
        f"{prefix}-intermediate",
        lambda k: _build(_name("Tessera Test MDS CA", o=o), k, root, ca=True, path_length=0),
        rsa2048,
    )
    signer = _load_or_create(
        f"{prefix}-signer",
        lambda k: _build(_name("Tessera Test MDS Signer", o=o), k, inter, ca=False),
        rsa2048,
    )
    return MdsPKI(root, inter, signer)
