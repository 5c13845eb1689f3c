"""MSAL Python against Tessera's sign-in, over HTTPS: the authorization code flow (a public client with PKCE) and
the device code flow, with the user signing in with a passkey in headless Chromium (CDP virtual authenticator).

Chromium is told to accept the server's key (--ignore-certificate-errors-spki-list with the SHA-256 of its public
key), so https://localhost is a secure context for WebAuthn, as a trusted certificate would make it."""
from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading
import time
import urllib.parse
from pathlib import Path

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support import unique

CTAP2 = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
         "isUserVerified": True, "automaticPresenceSimulation": True}
REGISTER = """
const [userId, token, done] = arguments;
(async () => {
  window.cancelAutofill();
  const headers = { "authorization": "Bearer " + token, "content-type": "application/json" };
  const options = await (await fetch(`/v1.0/users/${userId}/authentication/fido2Methods/creationOptions`, { headers })).json();
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey) });
  const r = await fetch(`/v1.0/users/${userId}/authentication/fido2Methods`, { method: "POST", headers,
      body: JSON.stringify({ displayName: "MSAL test passkey", publicKeyCredential: credential.toJSON() }) });
  return { status: r.status };
})().then(done, e => done({ error: String(e) }));
"""


@pytest.fixture(scope="module")
def origin(tessera) -> str:
    """The interop server, addressed as localhost (WebAuthn refuses IP addresses as relying-party ids)."""
    return tessera.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def browser(tessera):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    leaf = x509.load_pem_x509_certificate((Path(tessera.ca).parent / "server.pem").read_bytes())
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                f"--ignore-certificate-errors-spki-list={base64.b64encode(hashlib.sha256(spki).digest()).decode()}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")), options=opts)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def passkey_user(graph, tessera, tenant_a, origin, browser):
    """A user with a passkey on a fresh virtual authenticator in the browser (signed out)."""
    user = graph.create_user(tenant_a.domain, unique("msal"))
    browser.delete_all_cookies()
    browser.get(f"{origin}/{tenant_a.tenant_id}/login")
    browser.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
    aid = browser.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": CTAP2})["authenticatorId"]
    registered = browser.execute_async_script(REGISTER, user["id"], graph.token)
    assert registered.get("status") == 201, registered
    yield user
    browser.execute_cdp_cmd("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": aid})


def public_client(graph, tessera, origin, tenant_a, redirect_uri: str | None = None) -> msal.PublicClientApplication:
    body = {"displayName": unique("MSAL app"), "isFallbackPublicClient": True}
    if redirect_uri:
        body["publicClient"] = {"redirectUris": [redirect_uri]}
    app = graph.ok("POST", "applications", status=201, json=body)
    graph.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
    session = tessera.session()
    return msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_a.tenant_id}", instance_discovery=False,
                                        http_client=session)


class Callback:
    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/callback"):
                    received.append(self.path)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}/callback"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self) -> dict:
        deadline = time.monotonic() + 20
        while not self.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert self.received, "the browser never came back to the redirect URI"
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.received[-1]).query))


def test_msal_authorization_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    callback = Callback()
    try:
        app = public_client(graph, tessera, origin, tenant_a, redirect_uri=callback.url)
        flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(flow["auth_uri"])  # to the sign-in page, whose autofill signs the user in, then back with a code
        result = app.acquire_token_by_auth_code_flow(flow, callback.wait())
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
        callback.httpd.shutdown()


def test_msal_device_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    app = public_client(graph, tessera, origin, tenant_a)
    flow = app.initiate_device_flow(scopes=["User.Read"])
    assert flow.get("user_code"), flow
    result: dict = {}
    poller = threading.Thread(target=lambda: result.update(app.acquire_token_by_device_flow(flow)), daemon=True)
    poller.start()
    browser.get(f"{flow['verification_uri']}?user_code={flow['user_code']}".replace("127.0.0.1", "localhost"))
    deadline = time.monotonic() + 15
    while "Approve" not in browser.page_source and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.execute_async_script("const done = arguments[0]; window.approveDevice().then(done);") == {"approved": True}
    poller.join(timeout=30)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == passkey_user["userPrincipalName"]
