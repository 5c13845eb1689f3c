"""`tessera webauthn` on what other verifiers' ceremonies exposed: allowedAlgorithms Tessera cannot verify is unusable
input (exit 2), an untrusted attestation says why, and a Windows Hello AAGUID is reported as a claim unless the
attestation is trusted (verify-registration's aaguidVerified, windowsHello and caveats; inspect's wording)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
VECTORS = REPO_ROOT / "Tests" / "WebAuthnTests" / "Vectors"
LENOVO = "published/tpm-rs256-lenovo-carbon-x1-py-webauthn.json"  # Windows Hello VBS, chains to Microsoft's TPM root
NEGATIVE_SERIAL = "published/tpm-rs256-negative-serial-intermediate-fido2-net-lib.json"


@pytest.fixture(scope="session")
def tessera_bin() -> str:
    binary = os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")
    assert os.access(binary, os.X_OK), f"no Tessera binary at {binary} (run swift build, or set TESSERA_BIN)"
    return binary


def vector_input(rel: str) -> dict:
    return json.loads((VECTORS / rel).read_text())["input"]


def run(binary: str, args: list[str], stdin: str | None = None) -> tuple[int, dict | str]:
    proc = subprocess.run([binary, "webauthn", *args], input=stdin.encode() if stdin else None, capture_output=True,
                          timeout=60)
    out = proc.stdout.decode()
    try:
        return proc.returncode, json.loads(out)
    except ValueError:
        return proc.returncode, out


@pytest.mark.parametrize("allowed", [[-7, -47], [-7, -42], [-7, "RS1"], []], ids=["ES256K", "RSAES-OAEP", "a name", "empty"])
def test_allowed_algorithms_tessera_cannot_verify_are_unusable_input(tessera_bin, allowed):
    inp = vector_input("fido2/es256-none-registration.json")
    inp["allowedAlgorithms"] = allowed
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 2 and out["error"] == "input.invalid", out
    assert "allowedAlgorithms" in out["message"], out


def test_rs1_is_verified_when_allowed_and_refused_as_not_allowed_otherwise(tessera_bin):
    inp = vector_input("published/tpm-rs1-negative-serial-intermediate-fido2-net-lib.json")
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 0 and out["publicKeyAlgorithm"] == -65535, out
    del inp["allowedAlgorithms"]
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 1 and out["error"] == "credential.algorithmNotAllowed", out


def test_an_unreadable_intermediate_leaves_the_registration_verified_and_says_why_it_is_untrusted(tessera_bin):
    inp = vector_input(NEGATIVE_SERIAL)
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 0 and out["attestationTrusted"] is False, out
    assert len(out["attestationCertificates"]) == 1  # the intermediate could not be read
    assert out["attestationUntrustedReason"], out
    inp["requireTrustedAttestation"] = True
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 1 and out["error"] == "attestation.untrusted", out


def test_a_trusted_windows_hello_attestation_is_windows_hello(tessera_bin):
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(vector_input(LENOVO)))
    assert rc == 0 and out["attestationTrusted"] is True, out
    assert out["aaguidVerified"] is True and out["windowsHello"] == "verified", out
    assert "caveats" not in out and "attestationUntrustedReason" not in out, out


def test_without_trust_a_windows_hello_aaguid_is_a_claim(tessera_bin):
    inp = vector_input(LENOVO)
    del inp["trustAnchors"]
    rc, out = run(tessera_bin, ["verify-registration"], json.dumps(inp))
    assert rc == 0 and out["attestationTrusted"] is False, out
    assert out["authenticatorName"].startswith("Windows Hello"), out  # still named from the AAGUID
    assert out["aaguidVerified"] is False and out["windowsHello"] == "claimed", out
    assert any("claims Windows Hello" in c for c in out["caveats"]), out
    assert out["attestationUntrustedReason"] == "no trust anchor is configured for this authenticator", out


def test_inspect_calls_a_name_from_the_aaguid_a_claim(tessera_bin, tmp_path):
    path = tmp_path / "credential.json"
    path.write_text(json.dumps(vector_input(LENOVO)["response"]))
    rc, out = run(tessera_bin, ["inspect", str(path)])
    assert rc == 0, out
    assert "Windows Hello VBS Hardware Authenticator, as the authenticator claims" in out, out
