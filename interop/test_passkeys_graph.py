"""Passkeys through Microsoft Graph: the authentication methods policy with passkey profiles, and registering a
passkey on behalf of a user (`fido2Methods/creationOptions`, `POST fido2Methods`) with a python-fido2 software
authenticator (interop/webauthn/softauthn.py), against a running Tessera over HTTPS."""
from __future__ import annotations

import base64
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import assert_graph_error, unique

sys.path.insert(0, str(Path(__file__).resolve().parent / "webauthn"))
from fido2.webauthn import AuthenticatorData  # noqa: E402

import softauthn  # noqa: E402

FIDO2 = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
DEFAULT_PROFILE = "00000000-0000-0000-0000-000000000001"
F = AuthenticatorData.FLAG
YUBIKEY = bytes.fromhex("cb69481e8ff7403993ec0a2729a154a8")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def fido2_policy(graph):
    """Restores the tenant's FIDO2 configuration to its defaults after a test that changes it."""
    yield
    graph.ok("DELETE", FIDO2, status=204)


@pytest.fixture
def user(graph, tenant_a):
    return graph.create_user(tenant_a.domain, unique("pk"))


def register(graph, tessera, user_id: str, authenticator, flags=F.UP | F.UV | F.AT, origin: str | None = None,
             options: dict | None = None):
    options = options or graph.ok("GET", f"users/{user_id}/authentication/fido2Methods/creationOptions")
    public_key = options["publicKey"]
    parts = urlsplit(tessera.base_url)
    credential = authenticator.make_credential(
        b64u_decode(public_key["challenge"]), public_key["rp"]["id"], origin or f"{parts.scheme}://{parts.netloc}", flags=flags)
    return graph.post(f"users/{user_id}/authentication/fido2Methods",
                      json={"displayName": "Test key", "publicKeyCredential": credential})


def test_the_default_policy_has_one_profile_for_all_users(graph):
    policy = graph.ok("GET", "policies/authenticationMethodsPolicy")
    fido2 = policy["authenticationMethodConfigurations"][0]
    assert fido2["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethodConfiguration"
    assert fido2["defaultPasskeyProfile"] == DEFAULT_PROFILE
    assert [p["passkeyTypes"] for p in fido2["passkeyProfiles"]] == ["deviceBound,synced"]
    assert fido2["includeTargets"][0]["id"] == "all_users"


def test_creation_options_are_webauthn_options_with_a_five_minute_challenge(graph, tessera, user):
    options = graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods/creationOptions")
    public_key = options["publicKey"]
    assert public_key["rp"]["id"] == urlsplit(tessera.base_url).hostname
    assert len(b64u_decode(public_key["challenge"])) >= 16
    assert {"type": "public-key", "alg": -7} in public_key["pubKeyCredParams"]
    assert public_key["user"]["name"] == user["userPrincipalName"]
    expires = datetime.fromisoformat(options["challengeTimeoutDateTime"].replace("Z", "+00:00"))
    left = (expires - datetime.now(timezone.utc)).total_seconds()
    assert 240 < left <= 300, left


def test_a_passkey_registers_once_and_is_listed_and_deleted(graph, tessera, user):
    key = softauthn.SoftAuthenticator("ES256", aaguid=YUBIKEY)
    options = graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods/creationOptions")
    r = register(graph, tessera, user["id"], key, options=options)
    assert r.status_code == 201, r.text
    method = r.json()
    assert method["@odata.type"] == "#microsoft.graph.fido2AuthenticationMethod"
    assert method["aaGuid"] == "cb69481e-8ff7-4039-93ec-0a2729a154a8"
    assert method["passkeyType"] == "deviceBound" and method["attestationLevel"] == "notAttested"
    assert not any(k.startswith("_") for k in method), method
    # The challenge was single-use; the credential can be registered only once.
    assert_graph_error(register(graph, tessera, user["id"], key, options=options), 400, "Request_BadRequest")
    again = register(graph, tessera, user["id"], key)
    assert "already registered" in assert_graph_error(again, 400, "Request_BadRequest")["message"]
    listed = graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods")["value"]
    assert [m["id"] for m in listed] == [method["id"]]
    assert [m["id"] for m in graph.ok("GET", f"users/{user['id']}/authentication/methods")["value"]] == [method["id"]]
    assert graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods/{method['id']}")["displayName"] == "Test key"
    # The next creation options exclude it.
    excluded = graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods/creationOptions")["publicKey"]["excludeCredentials"]
    assert [c["id"] for c in excluded] == [softauthn.b64u(key.credential_id)]
    graph.ok("DELETE", f"users/{user['id']}/authentication/fido2Methods/{method['id']}", status=204)
    assert graph.ok("GET", f"users/{user['id']}/authentication/fido2Methods")["value"] == []


def test_a_ceremony_from_another_origin_is_refused(graph, tessera, user):
    r = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("ES256"), origin="https://evil.example")
    assert "clientData.origin" in assert_graph_error(r, 400, "Request_BadRequest")["message"]


def test_switching_synced_off_refuses_synced_passkeys(graph, tessera, user, fido2_policy):
    synced = F.UP | F.UV | F.AT | F.BE | F.BS
    ok = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("EdDSA"), flags=synced)
    assert ok.status_code == 201 and ok.json()["passkeyType"] == "synced", ok.text
    graph.ok("PATCH", FIDO2, status=204, json={"passkeyProfiles": [
        {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound", "attestationEnforcement": "disabled"}]})
    refused = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("EdDSA"), flags=synced)
    assert "passkeyTypeNotAllowed" in assert_graph_error(refused, 400, "Request_BadRequest")["message"]
    device_bound = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("RS256"))
    assert device_bound.status_code == 201, device_bound.text


def test_a_blocked_aaguid_is_refused(graph, tessera, user, fido2_policy):
    graph.ok("PATCH", FIDO2, status=204, json={"passkeyProfiles": [
        {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced",
         "attestationEnforcement": "disabled",
         "keyRestrictions": {"isEnforced": True, "enforcementType": "block", "aaGuids": ["cb69481e-8ff7-4039-93ec-0a2729a154a8"]}}]})
    r = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("ES256", aaguid=YUBIKEY))
    assert "aaguidBlocked" in assert_graph_error(r, 400, "Request_BadRequest")["message"]
    other = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("ES256"))
    assert other.status_code == 201, other.text


def test_policy_rules_are_enforced_over_graph(graph, fido2_policy):
    too_many = [{"id": f"00000000-0000-0000-0000-00000000000{i}", "name": f"P{i}", "passkeyTypes": "deviceBound"} for i in range(1, 5)]
    assert "at most 3" in assert_graph_error(graph.patch(FIDO2, json={"passkeyProfiles": too_many}), 400, "Request_BadRequest")["message"]
    synced_attested = [{"id": DEFAULT_PROFILE, "name": "D", "passkeyTypes": "deviceBound,synced", "attestationEnforcement": "registrationOnly"}]
    assert_graph_error(graph.patch(FIDO2, json={"passkeyProfiles": synced_attested}), 400, "Request_BadRequest")
    assert graph.ok("GET", FIDO2)["passkeyProfiles"][0]["attestationEnforcement"] == "disabled"


def test_disabling_passkeys_stops_registration(graph, tessera, user, fido2_policy):
    graph.ok("PATCH", FIDO2, status=204, json={"state": "disabled"})
    r = graph.get(f"users/{user['id']}/authentication/fido2Methods/creationOptions")
    assert_graph_error(r, 403, "Authorization_RequestDenied")


def test_a_purged_user_frees_their_passkey(graph, tessera, tenant_a):
    first = graph.create_user(tenant_a.domain, unique("pk"))
    key = softauthn.SoftAuthenticator("ES256")
    assert register(graph, tessera, first["id"], key).status_code == 201
    graph.ok("DELETE", f"users/{first['id']}", status=204)
    second = graph.create_user(tenant_a.domain, unique("pk"))
    # Soft-deleted, the user still holds the credential; purged, it is free again.
    assert "already registered" in assert_graph_error(register(graph, tessera, second["id"], key), 400)["message"]
    graph.ok("DELETE", f"directory/deletedItems/{first['id']}", status=204)
    assert register(graph, tessera, second["id"], key).status_code == 201


def test_a_temporary_access_pass_is_shown_once(graph, user):
    path = f"users/{user['id']}/authentication/temporaryAccessPassMethods"
    created = graph.ok("POST", path, status=201, json={"lifetimeInMinutes": 60, "isUsableOnce": True})
    assert len(created["temporaryAccessPass"]) == 12 and created["isUsable"] is True
    listed = graph.ok("GET", path)["value"]
    assert [m["id"] for m in listed] == [created["id"]] and listed[0]["temporaryAccessPass"] is None
    assert created["temporaryAccessPass"] not in graph.get(path).text
    # One per user: a new pass replaces the old one, as Microsoft documents.
    replacement = graph.ok("POST", path, status=201, json={})
    assert [m["id"] for m in graph.ok("GET", path)["value"]] == [replacement["id"]]
    assert_graph_error(graph.post(f"users/{user['id']}/authentication/temporaryAccessPassMethods", json={"lifetimeInMinutes": 1}), 400)
    graph.ok("DELETE", f"{path}/{replacement['id']}", status=204)
    assert graph.ok("GET", path)["value"] == []


def test_enforced_attestation_needs_a_chain_to_a_trusted_root(graph, tessera, user, fido2_policy):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    graph.ok("PATCH", FIDO2, status=204, json={"passkeyProfiles": [
        {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound", "attestationEnforcement": "registrationOnly"}]})
    unattested = register(graph, tessera, user["id"], softauthn.SoftAuthenticator("ES256"))
    assert "attestationRequired" in assert_graph_error(unattested, 400, "Request_BadRequest")["message"]
    pki = Path(__file__).resolve().parent / "webauthn" / "testpki"
    leaf = x509.load_pem_x509_certificate((pki / "attestation-leaf-certified.pem").read_bytes())
    intermediate = x509.load_pem_x509_certificate((pki / "attestation-intermediate.pem").read_bytes())
    key = serialization.load_pem_private_key((pki / "attestation-leaf-certified-key.pem").read_bytes(), password=None)
    attested = softauthn.SoftAuthenticator("ES256", aaguid=bytes.fromhex("7e55e2a00a0a4a0a8a0a00000000000a"),
                                           attestation=softauthn.Attestation.packed_x5c(key, [leaf, intermediate]))
    r = register(graph, tessera, user["id"], attested)
    assert r.status_code == 201, r.text
    assert r.json()["attestationLevel"] == "attested" and len(r.json()["attestationCertificates"]) == 2
