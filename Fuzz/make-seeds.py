#!/usr/bin/env python3
"""Writes the fuzzer's seed corpus (Fuzz/corpus/seeds) from the WebAuthn vectors: attestation objects, authenticator
data, client data, COSE keys, response JSON, and the parts of attestation statements (TPM pubArea and certInfo,
certificates). Run from the repository root; stdlib only."""
import base64, glob, hashlib, json, os

def b64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

def cbor_items(data):
    """Yields byte strings found in a CBOR map's text-keyed members (enough for attStmt parts)."""
    # A tiny reader: only what the attestation objects in the vectors use.
    def read(i):
        head = data[i]; major, info = head >> 5, head & 31; i += 1
        if info < 24: arg = info
        else:
            n = 1 << (info - 24); arg = int.from_bytes(data[i:i + n], "big"); i += n
        if major in (0, 1, 7): return None, i
        if major in (2, 3):
            return data[i:i + arg], i + arg
        if major == 4:
            out = []
            for _ in range(arg):
                v, i = read(i); out.append(v)
            return out, i
        if major == 5:
            out = {}
            for _ in range(arg):
                k, i = read(i); v, i = read(i)
                out[bytes(k) if isinstance(k, (bytes, bytearray)) else k] = v
            return out, i
        raise ValueError(major)
    return read(0)[0]

out = "Fuzz/corpus/seeds"
os.makedirs(out, exist_ok=True)
seen = set()
def keep(blob):
    if not blob or len(blob) > 16384: return
    digest = hashlib.sha1(blob).hexdigest()
    if digest in seen: return
    seen.add(digest)
    open(os.path.join(out, digest), "wb").write(blob)

for path in sorted(glob.glob("Tests/WebAuthnTests/Vectors/**/*.json", recursive=True)):
    vector = json.load(open(path))
    response = vector["input"]["response"]
    keep(json.dumps(response).encode())
    inner = response["response"]
    for key in ("clientDataJSON", "attestationObject", "authenticatorData"):
        if key in inner: keep(b64u(inner[key]))
    if "credential" in vector["input"]: keep(b64u(vector["input"]["credential"]["publicKey"]))
    if "attestationObject" in inner:
        obj = cbor_items(b64u(inner["attestationObject"]))
        stmt = obj.get(b"attStmt") or {}
        for key, value in stmt.items():
            if isinstance(value, (bytes, bytearray)): keep(bytes(value))
            if isinstance(value, list):
                for cert in value:
                    if isinstance(cert, (bytes, bytearray)): keep(bytes(cert))
print(f"{len(seen)} seeds in {out}")
