"""A tenant's device CA rotated and retired through the command line while the server and a proxy run (issue 17): a
computer joined through Kerberos against the Samba DC (test_hybrid_join.py's world) signs in as itself with the
certificate `tessera device join` wrote (RFC 7523's JWT bearer grant), and presents it to `tessera proxy --listen-tls`
with curl (test_proxy.py's fixtures), before `tessera device ca rotate`, after it (its certificate is the previous CA's,
still accepted) and is refused at both once `tessera device ca retire` has run, with the reason; a computer joined after
the rotation gets a certificate from the new CA and keeps working. Both commands are in the tenant's directory audit
(`/auditLogs/directoryAudits`) as the command line's, naming the CAs by thumbprint. Needs the domain controller of
`scripts/ad-up`, as test_hybrid_join does."""
from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid

import jwt as pyjwt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from test_hybrid_join import BINARY, World
from test_proxy import curl_proxy, joined_world, plain_origin, tls_proxy  # noqa: F401 (fixtures: the world, and a proxy over its store)


class JoinedDevice:
    """A computer joined with `tessera device join`: its record, key and certificate, as the command wrote them."""

    def __init__(self, world: World):
        run, out = world.computer().join()
        assert run.returncode == 0, run.stderr
        self.world = world
        self.files = ["--proxy-cert", str(out / "device.pem"), "--proxy-key", str(out / "device-key.pem")]
        self.record = json.loads((out / "device.json").read_text())
        self.key = serialization.load_pem_private_key((out / "device-key.pem").read_bytes(), password=None)
        self.certificate = x509.load_pem_x509_certificate((out / "device.pem").read_bytes())

    @property
    def authority_key_id(self) -> bytes:
        """Which CA key signed the certificate."""
        return self.certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier

    def sign_in(self) -> requests.Response:
        """An access token for Graph, the assertion signed by the device's key with its certificate in x5c."""
        endpoint = f"{self.world.url}/{self.record['tenantId']}/oauth2/v2.0/token"
        now = int(time.time())
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        assertion = pyjwt.encode({"iss": self.record["deviceId"], "sub": self.record["deviceId"], "aud": endpoint, "iat": now,
                                  "exp": now + 300, "jti": str(uuid.uuid4())}, self.key, algorithm="ES256",
                                 headers={"x5c": [base64.b64encode(der).decode()]})
        return requests.post(endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion,
                                             "scope": "https://graph.microsoft.com/.default"}, timeout=60)


def signs_in(device: JoinedDevice) -> bool:
    answer = device.sign_in()
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        claims = pyjwt.decode(answer.json()["access_token"], options={"verify_signature": False})
        assert claims["deviceid"] == device.record["deviceId"] and claims["idtyp"] == "device", claims
    return answer.status_code == 200


def audits(world: World, activity: str) -> list[dict]:
    r = world.graph("GET", "auditLogs/directoryAudits", params={"$filter": f"activityDisplayName eq '{activity}'"})
    assert r.status_code == 200, r.text
    return r.json()["value"]


def proxied(proxy, device: JoinedDevice) -> tuple[int, str]:
    """The proxy's answer to a request presenting the device's certificate: the origin's page, or the refusal's message."""
    status, body = curl_proxy(proxy, *device.files)
    return status, body if status == 200 else json.loads(body)["error"]["message"]


def test_a_device_certificate_issued_before_a_rotation_counts_until_the_previous_ca_is_retired(joined_world, tls_proxy):
    world = joined_world
    tenant = world.tenant["tenantId"]
    before = JoinedDevice(world)
    assert signs_in(before)
    assert proxied(tls_proxy, before)[0] == 200
    [current] = world.tessera("device", "ca", "status", "--tenant", tenant)
    assert current["role"] == "current" and current["rotatedAt"] is None, current

    # Rotated through the command line while the server runs: the device joined before still signs in (its
    # certificate is the previous CA's), and a device joined now gets its certificate from the new CA.
    rotated = world.tessera("device", "ca", "rotate", "--tenant", tenant)
    assert [ca["role"] for ca in rotated] == ["current", "previous"], rotated
    assert rotated[1]["thumbprint"] == current["thumbprint"] and rotated[0]["thumbprint"] != current["thumbprint"], rotated
    assert rotated[1]["acceptedUntil"] is not None and rotated[1]["retiredAt"] is None, rotated
    assert signs_in(before)
    assert proxied(tls_proxy, before)[0] == 200
    after = JoinedDevice(world)
    assert after.authority_key_id != before.authority_key_id, "registered after the rotation: the new CA's certificate"
    assert signs_in(after)
    assert proxied(tls_proxy, after)[0] == 200

    # Retired: the certificate of the previous CA is refused at the next sign-in with the reason; the new CA's still counts.
    retired = world.tessera("device", "ca", "retire", "--tenant", tenant)
    assert [(ca["role"], ca["thumbprint"]) for ca in retired] == [("retired", current["thumbprint"])], retired
    refused = before.sign_in()
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["error"] == "invalid_grant" and error["error_codes"] == [50012], error
    reason = (f"The device certificate was issued by this tenant's previous device certificate authority, retired on {retired[0]['retiredAt']}: "
              "the device must register again for a certificate from the current one.")
    assert reason in error["error_description"], error
    assert proxied(tls_proxy, before) == (407, reason)
    assert signs_in(after)
    assert proxied(tls_proxy, after)[0] == 200
    # Nothing is left to retire: the command says so and fails.
    run = subprocess.run([BINARY, "device", "ca", "retire", "--tenant", tenant, "--data", str(world.data)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and "there is nothing to retire" in run.stderr, run

    # Both are in the tenant's directory audit as the command line's, the CAs named by thumbprint, no key.
    [rotation] = audits(world, "Rotate device certificate authority")
    [retirement] = audits(world, "Retire device certificate authority")
    for entry, command, target in [(rotation, "rotate", rotated[0]["thumbprint"]), (retirement, "retire", current["thumbprint"])]:
        assert entry["initiatedBy"]["app"]["displayName"].startswith(f"Tessera command line (tessera device ca {command}, "), entry
        assert entry["targetResources"][0]["id"].upper() == target and entry["targetResources"][0]["type"] == "DeviceCertificateAuthority", entry
        assert "PRIVATE KEY" not in json.dumps(entry) and "BEGIN" not in json.dumps(entry), entry
    changed = rotation["targetResources"][0]["modifiedProperties"][0]
    assert (changed["displayName"], changed["oldValue"], changed["newValue"]) == \
        ("thumbprint", f'"{current["thumbprint"]}"', f'"{rotated[0]["thumbprint"]}"'), changed
    assert rotation["activityDateTime"] == rotated[1]["rotatedAt"] and retirement["activityDateTime"] == retired[0]["retiredAt"]
