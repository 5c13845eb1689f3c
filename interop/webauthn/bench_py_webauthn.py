#!/usr/bin/env python3
"""How many WebAuthn assertions per second py_webauthn 3.x verifies, per algorithm: the yardstick for Tessera's.

    taskset -c 0 interop/.venv/bin/python interop/webauthn/bench_py_webauthn.py [VECTOR.json ...]
        [--seconds 2] [--rounds 5]

Default vectors: every authentication vector under Tests/WebAuthnTests/Vectors/fido2/ whose file name mentions es256,
eddsa or rs256; when there is none, the Chromium ES256 ones (chromium/). Only vectors that must verify are used.
Each call is the whole verify_authentication_response() from the credential as JSON (a dict, as an RP receives
it), with the vector's challenge, rpId, origins, COSE public key, stored signCount and requireUserVerification.
Vectors of one algorithm are used in turn. Per algorithm it prints one JSON line:
    {"alg": "ES256", "perSecond": <median of the rounds>, "rounds": [<calls per second of each round>, ...],
     "rawSignatureChecksPerSecond": <the same signatures through py_webauthn's verify_signature (cryptography)>}
Run it pinned to one core (taskset -c 0) so the figure compares with a single-threaded Swift loop.
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

VECTORS = Path(__file__).resolve().parents[2] / "Tests" / "WebAuthnTests" / "Vectors"
COSE_NAMES = {-7: "ES256", -35: "ES384", -36: "ES512", -8: "EdDSA", -257: "RS256", -258: "RS384", -259: "RS512",
              -37: "PS256", -38: "PS384", -39: "PS512"}


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def default_files() -> list[Path]:
    wanted = ("es256", "eddsa", "rs256")
    files = [p for p in sorted((VECTORS / "fido2").glob("*.json"))
             if any(w in p.name.lower() for w in wanted) and _is_usable(p)]
    if not files:
        files = [p for p in sorted((VECTORS / "chromium").glob("*.json")) if _is_usable(p)]
    return files


def _is_usable(path: Path) -> bool:
    v = json.loads(path.read_text())
    return (v.get("ceremony") == "authentication" and v.get("expect", {}).get("verified") is True
            and not (v.get("pyWebauthn") or {}).get("skip"))


def cose_alg(public_key: bytes) -> int:
    import cbor2

    return int(cbor2.loads(public_key)[3])


def prepare(path: Path) -> tuple[str, dict]:
    v = json.loads(path.read_text())
    inp = v["input"]
    key = b64u_decode(inp["credential"]["publicKey"])
    kwargs = dict(credential=inp["response"], expected_challenge=b64u_decode(inp["challenge"]),
                  expected_rp_id=inp["rpId"], expected_origin=list(inp["origins"]), credential_public_key=key,
                  credential_current_sign_count=int(inp["credential"].get("signCount", 0)),
                  require_user_verification=bool(inp.get("requireUserVerification", False)))
    alg = cose_alg(key)
    return COSE_NAMES.get(alg, str(alg)), kwargs


def raw_check(kwargs: dict):
    """The same signature checked by py_webauthn's own signature helper (the `cryptography` package, OpenSSL), with
    the key decoded once: the yardstick for how much of a verification is the signature itself."""
    import hashlib
    from webauthn.helpers import decode_credential_public_key
    from webauthn.helpers.decoded_public_key_to_cryptography import decoded_public_key_to_cryptography
    from webauthn.helpers.verify_signature import verify_signature
    from webauthn.helpers.cose import COSEAlgorithmIdentifier

    key = kwargs["credential_public_key"]
    response = kwargs["credential"]["response"]
    data = b64u_decode(response["authenticatorData"]) + hashlib.sha256(b64u_decode(response["clientDataJSON"])).digest()
    signature = b64u_decode(response["signature"])
    decoded = decoded_public_key_to_cryptography(decode_credential_public_key(key))
    alg = COSEAlgorithmIdentifier(cose_alg(key))
    return lambda: verify_signature(public_key=decoded, signature_alg=alg, signature=signature, data=data)


def interleaved(groups: list[list], seconds: float) -> list[float]:
    """Calls each group's functions in turn, 16 at a time, for `seconds` per group in all; calls per second each."""
    spent, counts = [0.0] * len(groups), [0] * len(groups)
    deadline = time.perf_counter() + seconds * len(groups)
    while time.perf_counter() < deadline:
        for k, group in enumerate(groups):
            start = time.perf_counter()
            for j in range(16):
                group[(counts[k] + j) % len(group)]()
            counts[k] += 16
            spent[k] += time.perf_counter() - start
    return [c / t for c, t in zip(counts, spent)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of one round (default 2)")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per algorithm (default 5)")
    args = ap.parse_args()

    from webauthn import verify_authentication_response

    files = args.files or default_files()
    if not files:
        print("no authentication vectors found", file=sys.stderr)
        return 1
    by_alg: dict[str, list[dict]] = {}
    for path in files:
        alg, kwargs = prepare(path)
        verify_authentication_response(**kwargs)  # must verify; also warms up imports and caches
        by_alg.setdefault(alg, []).append(kwargs)
    for alg in sorted(by_alg):
        checks = [raw_check(kwargs) for kwargs in by_alg[alg]]
        calls = [(lambda kw=kw: verify_authentication_response(**kw)) for kw in by_alg[alg]]
        rounds, raw = [], []
        for _ in range(args.rounds):
            # Raw checks and whole verifications interleaved in small batches, so the machine's changes of speed
            # fall on both alike (as the Swift benchmark does).
            r, v = interleaved([checks, calls], args.seconds)
            raw.append(round(r, 1))
            rounds.append(round(v, 1))
        print(json.dumps({"alg": alg, "perSecond": round(statistics.median(rounds), 1), "rounds": rounds,
                          "rawSignatureChecksPerSecond": round(statistics.median(raw), 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
