"""MSAL Python against Tessera's sign-in, over HTTPS: the authorization code flow (a public client with PKCE) and
the device code flow, with the user signing in with a passkey in headless Chromium (CDP virtual authenticator).

Chromium is told to accept the server's key (--ignore-certificate-errors-spki-list with the SHA-256 of its public
key), so https://localhost is a secure context for WebAuthn, as a trusted certificate would make it."""
from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from browser import APPROVE_DEVICE, REGISTER, Callback, add_authenticator, chromium, remove_authenticator, wait_for_text
from support import unique

@pytest.fixture(scope="module")
def origin(tessera) -> str:
    """The interop server, addressed as localhost (WebAuthn refuses IP addresses as relying-party ids)."""
    return tessera.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def browser(tessera):
    leaf = x509.load_pem_x509_certificate((Path(tessera.ca).parent / "server.pem").read_bytes())
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with chromium(f"--ignore-certificate-errors-spki-list={base64.b64encode(hashlib.sha256(spki).digest()).decode()}") as driver:
        yield driver


@pytest.fixture
def passkey_user(graph, tessera, tenant_a, origin, browser):
    """A user with a passkey on a fresh virtual authenticator in the browser (signed out)."""
    user = graph.create_user(tenant_a.domain, unique("msal"))
    browser.delete_all_cookies()
    browser.get(f"{origin}/{tenant_a.tenant_id}/login")
    aid = add_authenticator(browser)
    registered = browser.execute_async_script(REGISTER, user["id"], graph.token)
    assert registered.get("status") == 201, registered
    yield user
    remove_authenticator(browser, aid)


def public_client(graph, tessera, origin, tenant_a, redirect_uri: str | None = None) -> msal.PublicClientApplication:
    body = {"displayName": unique("MSAL app"), "isFallbackPublicClient": True}
    if redirect_uri:
        body["publicClient"] = {"redirectUris": [redirect_uri]}
    app = graph.ok("POST", "applications", status=201, json=body)
    graph.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
    session = tessera.session()
    return msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_a.tenant_id}", instance_discovery=False,
                                        http_client=session)


def test_msal_authorization_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    callback = Callback()
    try:
        app = public_client(graph, tessera, origin, tenant_a, redirect_uri=callback.url)
        flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(flow["auth_uri"])  # to the sign-in page, whose autofill signs the user in, then back with a code
        result = app.acquire_token_by_auth_code_flow(flow, callback.wait(1))
        assert "access_token" in result, result
        claims = result["id_token_claims"]
        assert claims["preferred_username"] == passkey_user["userPrincipalName"] and claims["amr"] == ["fido", "mfa"]
        assert claims["oid"] == passkey_user["id"] and claims["tid"] == tenant_a.tenant_id
        account = app.get_accounts()[0]
        assert account["home_account_id"] == f"{passkey_user['id']}.{tenant_a.tenant_id}"
        # MSAL's silent call uses the refresh token (offline_access is always requested).
        silent = app.acquire_token_silent(["User.Read"], account=account, force_refresh=True)
        assert silent and "access_token" in silent and silent["access_token"] != result["access_token"], silent
    finally:
        callback.close()


def test_msal_device_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    app = public_client(graph, tessera, origin, tenant_a)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    assert flow.get("user_code"), flow
    result: dict = {}
    poller = threading.Thread(target=lambda: result.update(app.acquire_token_by_device_flow(flow)), daemon=True)
    poller.start()
    browser.get(f"{flow['verification_uri']}?user_code={flow['user_code']}".replace("127.0.0.1", "localhost"))
    wait_for_text(browser, "Approve")
    assert browser.execute_async_script(APPROVE_DEVICE) == {"approved": True}
    poller.join(timeout=30)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == passkey_user["userPrincipalName"]
