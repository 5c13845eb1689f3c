"""The passkey sign-in ceremony the sign-in page drives (`/{tenant}/login/passkey/options`, `/{tenant}/login/passkey`),
with a python-fido2 software authenticator: verification, single-use challenges, the clone check, the passkey
profiles enforced again at sign-in, and every attempt in `/auditLogs/signIns`."""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from support import unique
from test_passkeys_graph import DEFAULT_PROFILE, FIDO2, F, YUBIKEY, b64u_decode, register

sys.path.insert(0, str(Path(__file__).resolve().parent / "webauthn"))
import softauthn  # noqa: E402


class SignIn:
    def __init__(self, tessera, tenant):
        self.tessera, self.tenant = tessera, tenant
        self.s = tessera.session()
        parts = urlsplit(tessera.base_url)
        self.origin = f"{parts.scheme}://{parts.netloc}"

    def options(self, login_hint: str | None = None) -> dict:
        body = {"loginHint": login_hint} if login_hint else {}
        r = self.s.post(f"{self.tessera.base_url}/{self.tenant.tenant_id}/login/passkey/options", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    def finish(self, assertion: dict):
        return self.s.post(f"{self.tessera.base_url}/{self.tenant.tenant_id}/login/passkey", json=assertion)

    def assertion(self, key, user_id: str, counter: int, flags=F.UP | F.UV, options: dict | None = None, origin: str | None = None):
        options = options or self.options()
        return key.get_assertion(b64u_decode(options["challenge"]), options["rpId"], origin or self.origin, flags=flags,
                                 counter=counter, user_handle=user_id.encode())


@pytest.fixture
def signin(tessera, tenant_a):
    return SignIn(tessera, tenant_a)


@pytest.fixture
def enrolled(graph, tessera, tenant_a):
    user = graph.create_user(tenant_a.domain, unique("si"))
    key = softauthn.SoftAuthenticator("ES256", aaguid=YUBIKEY)
    r = register(graph, tessera, user["id"], key)
    assert r.status_code == 201, r.text
    return user, key


def test_a_registered_passkey_signs_in_without_a_username(signin, enrolled):
    user, key = enrolled
    options = signin.options()
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    r = signin.finish(signin.assertion(key, user["id"], counter=1, options=options))
    assert r.status_code == 200, r.text
    assert r.json()["userId"] == user["id"] and r.json()["amr"] == ["fido", "mfa"]
    # With a login hint the options name the user's credential.
    hinted = signin.options(user["userPrincipalName"])
    assert [c["id"] for c in hinted["allowCredentials"]] == [softauthn.b64u(key.credential_id)]


def test_an_assertion_works_once_and_a_repeated_counter_is_refused(signin, enrolled):
    user, key = enrolled
    assertion = signin.assertion(key, user["id"], counter=5)
    assert signin.finish(assertion).status_code == 200
    replay = signin.finish(assertion)
    assert replay.status_code == 400 and replay.json()["error_codes"] == ["challenge.invalid"]
    cloned = signin.finish(signin.assertion(key, user["id"], counter=5))
    assert cloned.status_code == 400 and cloned.json()["error_codes"] == ["assertion.possibleClone"]
    assert signin.finish(signin.assertion(key, user["id"], counter=6)).status_code == 200


def test_the_wrong_origin_user_or_signature_is_refused(signin, enrolled, graph, tenant_a):
    user, key = enrolled
    wrong_origin = signin.finish(signin.assertion(key, user["id"], counter=1, origin="https://evil.example"))
    assert wrong_origin.json()["error_codes"] == ["clientData.origin"]
    other = graph.create_user(tenant_a.domain, unique("si"))
    wrong_user = signin.finish(signin.assertion(key, other["id"], counter=2))
    assert wrong_user.json()["error_codes"] == ["assertion.userHandleMismatch"]
    stranger = softauthn.SoftAuthenticator("ES256")
    unknown = signin.finish(signin.assertion(stranger, user["id"], counter=1))
    assert unknown.json()["error_codes"] == ["credential.unknown"]
    no_uv = signin.finish(signin.assertion(key, user["id"], counter=3, flags=F.UP))
    assert no_uv.json()["error_codes"] == ["authData.userNotVerified"]


def test_a_disabled_account_cannot_sign_in(signin, enrolled, graph):
    user, key = enrolled
    graph.ok("PATCH", f"users/{user['id']}", status=204, json={"accountEnabled": False})
    r = signin.finish(signin.assertion(key, user["id"], counter=1))
    assert r.status_code == 400 and r.json()["error_codes"] == ["user.disabled"]


def test_switching_synced_off_blocks_synced_passkeys_already_registered(signin, graph, tessera, tenant_a):
    user = graph.create_user(tenant_a.domain, unique("si"))
    synced = softauthn.SoftAuthenticator("EdDSA")
    assert register(graph, tessera, user["id"], synced, flags=F.UP | F.UV | F.AT | F.BE | F.BS).status_code == 201
    flags = F.UP | F.UV | F.BE | F.BS
    assert signin.finish(signin.assertion(synced, user["id"], counter=1, flags=flags)).status_code == 200
    graph.ok("PATCH", FIDO2, status=204, json={"passkeyProfiles": [
        {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound", "attestationEnforcement": "disabled"}]})
    try:
        refused = signin.finish(signin.assertion(synced, user["id"], counter=2, flags=flags))
        assert refused.status_code == 400 and refused.json()["error_codes"] == ["passkeyTypeNotAllowed"]
        assert "synced" in refused.json()["error_description"]
    finally:
        graph.ok("DELETE", FIDO2, status=204)
    assert signin.finish(signin.assertion(synced, user["id"], counter=3, flags=flags)).status_code == 200


def test_every_attempt_is_in_the_sign_in_log(signin, enrolled, graph):
    user, key = enrolled
    assert signin.finish(signin.assertion(key, user["id"], counter=1)).status_code == 200
    assert signin.finish(signin.assertion(key, user["id"], counter=1)).status_code == 400  # repeated counter
    logs = graph.ok("GET", "auditLogs/signIns", params={"$filter": f"userId eq '{user['id']}'"})["value"]
    assert [entry["status"]["errorCode"] == 0 for entry in logs] == [False, True]  # newest first
    failure, success = logs
    assert failure["status"]["failureReason"] == "assertion.possibleClone"
    assert success["aaGuid"] == "cb69481e-8ff7-4039-93ec-0a2729a154a8" and success["passkeyType"] == "deviceBound"
    assert success["authenticationDetails"][0]["authenticationMethod"] == "Passkey (device-bound)"
    assert success["userPrincipalName"] == user["userPrincipalName"]


def test_sign_in_calls_from_another_site_are_refused(signin, enrolled):
    user, key = enrolled
    url = f"{signin.tessera.base_url}/{signin.tenant.tenant_id}/login/passkey"
    import json as _json
    body = _json.dumps(signin.assertion(key, user["id"], counter=1))
    as_form = signin.s.post(url, data=body, headers={"content-type": "text/plain"})  # what a cross-site form or no-cors fetch sends
    assert as_form.status_code == 400 and "application/json" in as_form.json()["error"]["message"]
    foreign = signin.s.post(url, data=body, headers={"content-type": "application/json", "origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert "set-cookie" not in {k.lower() for k in foreign.headers}
