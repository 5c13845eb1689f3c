#!/usr/bin/env python3
"""Writes the Tests/WebAuthnTests/Vectors/fido2/ vectors for the credential algorithms added after the first set:
RS384, RS512, PS384 and PS512 (allowed by default), RS1 (older Windows Hello TPMs: verified only when a relying
party allows it) and ES256K (a real COSE algorithm Tessera does not verify), then checks them with py_webauthn.

    interop/.venv/bin/python interop/webauthn/gen_algorithm_vectors.py

Keys come from the `cryptography` package and the COSE keys from python-fido2 (softauthn.py), so the signatures
and encodings are another implementation's. Only these files are (re)written; gen_fido2_vectors.py owns the rest.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gen_fido2_vectors as g  # noqa: E402
from softauthn import SoftAuthenticator  # noqa: E402

RS1, ES256K = -65535, -47


def generate() -> list[str]:
    for alg in ("RS384", "RS512", "PS384", "PS512"):
        auth = SoftAuthenticator(alg)
        g.registration(f"{alg.lower()}-none-registration", auth)
        g.authentication(f"{alg.lower()}-authentication", auth, counter=1, stored_count=0)

    # RS1: refused unless allowed (it is not in the default list), verified when it is.
    auth = SoftAuthenticator("RS1")
    g.registration("rs1-none-registration", auth, allowed=[-7, -257, RS1])
    g.authentication("rs1-authentication", auth, counter=1, stored_count=0)
    name = "reject-rs1-not-allowed-registration"
    resp = auth.make_credential(g.challenge_for(name), g.RP_ID, g.ORIGIN)
    g.add(name, "registration", g.reg_input(name, resp, allowed=[-7, -257]),
          {"verified": False, "error": "credential.algorithmNotAllowed"},
          note="an RS1 (-65535) credential key where only ES256 and RS256 are allowed (RS1 is not allowed by default "
               "either: WebAuthnTests' AlgorithmTests prove that)")

    # ES256K: a registered COSE algorithm (secp256k1) this verifier does not support.
    auth = SoftAuthenticator("ES256K")
    name = "reject-es256k-unsupported-registration"
    resp = auth.make_credential(g.challenge_for(name), g.RP_ID, g.ORIGIN)
    g.add(name, "registration", g.reg_input(name, resp),
          {"verified": False, "error": "credential.publicKeyUnsupported"},
          note="an ES256K (-47, secp256k1) credential key")

    written = []
    for name, vector in g.VECTORS.items():
        path = os.path.join(g.OUT, f"{name}.json")
        with open(path, "w") as f:
            json.dump(vector, f, indent=2)
            f.write("\n")
        written.append(path)
    return written


def check(paths: list[str]) -> int:
    failures = 0
    for path in paths:
        vector = json.load(open(path))
        accepted, detail = g.py_webauthn_verdict(vector)
        agree = accepted == vector["expect"].get("verified", True) and not detail.startswith("mismatch")
        skipped = "skip" in vector.get("pyWebauthn", {})
        failures += 0 if agree or skipped else 1
        print(f"{'agree' if agree else ('SKIP ' if skipped else 'FAIL ')} {os.path.basename(path):48s} "
              f"py_webauthn={'accept' if accepted else 'reject'} ({detail[:100]})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(check(generate()))
