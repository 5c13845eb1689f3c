"""Passkeys in a real browser: headless Chromium with a CDP virtual authenticator against a Tessera of its own,
served over plain http on localhost (a secure context, so WebAuthn works without a trusted certificate).

A passkey is registered through Graph from the Tessera origin, then used on Tessera's sign-in page (the
"Sign in with a passkey" button: a discoverable credential, no username), and the tenant's passkey profiles
decide: switching synced passkeys off refuses a synced one at sign-in. A page from another origin cannot use the
passkey. Screenshots of the sign-in page go to the test's work folder."""
from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from support import serve_on_a_free_port, stop_serve
from browser import APPROVE_DEVICE, REGISTER, SIGN_IN, USE_ACCESS_PASS, Callback, add_authenticator, chromium, register_passkey, remove_authenticator, wait_for_text

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
FIDO2 = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"
DEFAULT_PROFILE = "00000000-0000-0000-0000-000000000001"
@pytest.fixture(scope="module")
def server():
    """`tessera serve --http` on a fresh data folder; yields its URL and what its first start printed."""
    data = Path(tempfile.mkdtemp(prefix="tessera-browser-"))
    # Chromium's virtual authenticators attest with its batch certificate: trusting it makes their keys "attested".
    roots = Path(__file__).resolve().parent / "webauthn" / "testpki" / "chromium-batch-certificate.pem"
    proc, printed, port = serve_on_a_free_port(
        lambda port: [BINARY, "serve", "--http", "--data", str(data), "--port", str(port), "--attestation-roots", str(roots),
                      # The Conditional Access test says where the browser is through X-Forwarded-For, as a proxy would.
                      "--trusted-proxy", "127.0.0.1",
                      # ...and moves the server's clock forward (a debug build's test hook) for sign-in frequency.
                      "--test-clock-offset-file", str(data / "clock-offset")])
    # Its output goes on to browser-server.log in the work folder (where a failed test's page is kept too), and the
    # pipe never fills.
    log = artifacts().parent / "browser-server.log"
    log.write_text(printed)

    def drain(out=proc.stdout):
        with open(log, "a") as f:
            for line in out:
                f.write(line)
                f.flush()
    threading.Thread(target=drain, daemon=True).start()
    field = lambda name: re.search(rf"{name}:\s+(\S+)", printed).group(1)  # noqa: E731
    url = f"http://localhost:{port}"
    token = requests.post(f"{url}/{field('tenant id')}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": field("client id"), "client_secret": field("client secret"),
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    try:
        yield {"url": url, "tenant": field("tenant id"), "token": token, "admin": field("administrator"),
               "tap": field("access pass"), "data": data, "clock": data / "clock-offset"}
    finally:
        stop_serve(proc, data)


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def artifacts() -> Path:
    folder = Path(os.environ.get("TESSERA_INTEROP_WORKDIR") or tempfile.gettempdir()) / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def graph(server, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{server['url']}/v1.0/{path}", headers={"Authorization": f"Bearer {server['token']}"}, **kw)


def new_user(server, nick: str) -> dict:
    domain = server["admin"].split("@")[1]
    r = graph(server, "POST", "users", json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                                             "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_passkey_registered_in_chromium_signs_in_on_the_sign_in_page(server, browser):
    user = new_user(server, "chromium1")
    browser.get(f"{server['url']}/{server['tenant']}/login")
    assert "Sign in with a passkey" in browser.page_source
    browser.save_screenshot(str(artifacts() / "sign-in-page.png"))
    aid = add_authenticator(browser, synced=False)
    try:
        registered = browser.execute_async_script(REGISTER, user["id"], server["token"])
        assert registered.get("status") == 201, registered
        assert registered["body"]["passkeyType"] == "deviceBound"
        signed_in = browser.execute_async_script(SIGN_IN)
        assert signed_in.get("userPrincipalName") == user["userPrincipalName"], signed_in
        assert signed_in["amr"] == ["fido", "mfa"]
        assert "Signed in as " + user["userPrincipalName"] in browser.find_element("id", "status").text
        browser.save_screenshot(str(artifacts() / "signed-in.png"))
        # Another origin (the same server as 127.0.0.1) cannot use the passkey scoped to localhost.
        port = server["url"].rsplit(":", 1)[1]
        browser.get(f"http://127.0.0.1:{port}/{server['tenant']}/login")
        elsewhere = browser.execute_async_script(SIGN_IN)
        assert "error" in elsewhere or "userPrincipalName" not in elsewhere, elsewhere
    finally:
        remove_authenticator(browser, aid)


def test_a_synced_passkey_is_refused_at_sign_in_once_synced_is_switched_off(server, browser):
    user = new_user(server, "chromium2")
    browser.get(f"{server['url']}/{server['tenant']}/login")
    aid = add_authenticator(browser, synced=True)
    try:
        registered = browser.execute_async_script(REGISTER, user["id"], server["token"])
        assert registered.get("status") == 201 and registered["body"]["passkeyType"] == "synced", registered
        assert browser.execute_async_script(SIGN_IN).get("userPrincipalName") == user["userPrincipalName"]
        r = graph(server, "PATCH", FIDO2, json={"passkeyProfiles": [
            {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound", "attestationEnforcement": "disabled"}]})
        assert r.status_code == 204, r.text
        try:
            refused = browser.execute_async_script(SIGN_IN)
            assert refused.get("error_codes") == ["passkeyTypeNotAllowed"], refused
            assert "synced" in browser.find_element("id", "status").text
            browser.save_screenshot(str(artifacts() / "synced-refused.png"))
            # and at registration (for another user: the authenticator already holds this user's credential, and the
            # creation options exclude it)
            other = new_user(server, "chromium3")
            again = browser.execute_async_script(REGISTER, other["id"], server["token"])
            assert again.get("status") == 400 and "passkeyTypeNotAllowed" in again["body"]["error"]["message"], again
        finally:
            assert graph(server, "DELETE", FIDO2).status_code == 204
    finally:
        remove_authenticator(browser, aid)


def test_the_first_administrator_onboards_with_the_printed_access_pass(server, browser):
    browser.get(f"{server['url']}/{server['tenant']}/login")
    aid = add_authenticator(browser, synced=False)
    try:
        browser.find_element("id", "username").send_keys(server["admin"])
        browser.find_element("id", "onboarding").click()
        browser.find_element("id", "tap").send_keys("not-the-pass")
        refused = browser.execute_async_script(USE_ACCESS_PASS)
        assert refused.get("error_codes") == ["tap.invalid"], refused
        tap = browser.find_element("id", "tap")
        tap.clear()
        tap.send_keys(server["tap"])
        browser.save_screenshot(str(artifacts() / "access-pass.png"))
        created = browser.execute_async_script(USE_ACCESS_PASS)
        assert created.get("passkeyType") == "deviceBound", created
        assert "Passkey created" in browser.find_element("id", "status").text
        # The pass was one-time: it cannot be used again.
        again = browser.execute_async_script(USE_ACCESS_PASS)
        assert again.get("error_codes") == ["tap.invalid"], again
        signed_in = browser.execute_async_script(SIGN_IN)
        assert signed_in.get("userPrincipalName") == server["admin"], signed_in
        # Sign out; the admin center sends the browser to sign in, where the passkey answers through autofill
        # (conditional mediation), and back.
        browser.get(f"{server['url']}/{server['tenant']}/oauth2/v2.0/logout")
        wait_for_text(browser, "Sign out?")  # no app asked: the user confirms (no logout CSRF)
        browser.find_element("id", "signout").click()
        wait_for_text(browser, "You have signed out")
        browser.get(f"{server['url']}/admin")
        wait_for_text(browser, "New user")
        assert server["admin"] in browser.page_source and browser.current_url.endswith("/users")
    finally:
        remove_authenticator(browser, aid)
    logs = graph(server, "GET", "auditLogs/signIns").json()["value"]
    methods = [entry["authenticationDetails"][0]["authenticationMethod"] for entry in logs if entry.get("userPrincipalName") == server["admin"]]
    assert methods[:5] == ["Passkey (device-bound)"] * 2 + ["Temporary Access Pass"] * 3, methods  # newest first: autofill, the button


def admin_consent(server, app_id: str, scope: str) -> None:
    """The app's service principal, and `scope` of Microsoft Graph granted to it for every user (admin consent through
    Graph, as an administrator does for a line-of-business app): its users then see no consent prompt."""
    sp = graph(server, "POST", "servicePrincipals", json={"appId": app_id})
    assert sp.status_code == 201, sp.text
    resource = graph(server, "GET", "servicePrincipals?$filter=appId eq '00000003-0000-0000-c000-000000000000'").json()["value"][0]
    grant = graph(server, "POST", "oauth2PermissionGrants", json={
        "clientId": sp.json()["id"], "consentType": "AllPrincipals", "resourceId": resource["id"], "scope": scope})
    assert grant.status_code == 201, grant.text


def test_an_application_signs_a_user_in_with_the_authorization_code_flow(server, browser):
    import base64
    import hashlib
    import secrets
    from urllib.parse import urlencode

    import jwt

    callback = Callback()
    user = new_user(server, "oidc1")
    app = graph(server, "POST", "applications", json={"displayName": "Web app", "web": {"redirectUris": [callback.url]}}).json()
    secret = graph(server, "POST", f"applications/{app['id']}/addPassword", json={}).json()["secretText"]
    admin_consent(server, app["appId"], "User.Read UserAuthenticationMethod.ReadWrite")
    browser.get(f"{server['url']}/{server['tenant']}/login")
    aid = add_authenticator(browser, synced=False)

    def authorize(**extra) -> tuple[str, str, str, str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        params = {"client_id": app["appId"], "response_type": "code", "redirect_uri": callback.url, "scope": "openid profile User.Read",
                  "state": state, "nonce": nonce, "code_challenge": challenge, "code_challenge_method": "S256", **extra}
        return f"{server['url']}/{server['tenant']}/oauth2/v2.0/authorize?{urlencode(params)}", verifier, state, nonce

    try:
        assert browser.execute_async_script(REGISTER, user["id"], server["token"]).get("status") == 201
        browser.delete_all_cookies()  # earlier tests signed other users in on this browser
        url, verifier, state, nonce = authorize()
        # No session yet: the browser is sent to the sign-in page, whose passkey autofill (conditional mediation)
        # the virtual authenticator answers with the one passkey it holds for this site; the page then sends the
        # browser back to /authorize, which redirects to the client with a code.
        browser.get(url)
        query = callback.wait(1)
        assert query["state"] == state and "code" in query
        token_url = f"{server['url']}/{server['tenant']}/oauth2/v2.0/token"
        form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": callback.url, "client_id": app["appId"],
                "client_secret": secret, "code_verifier": verifier, "scope": "openid profile User.Read"}
        tokens = requests.post(token_url, data=form).json()
        keys = jwt.PyJWKClient(f"{server['url']}/{server['tenant']}/discovery/v2.0/keys")
        id_token = tokens["id_token"]
        claims = jwt.decode(id_token, keys.get_signing_key_from_jwt(id_token).key, algorithms=["RS256"], audience=app["appId"],
                            issuer=f"{server['url']}/{server['tenant']}/v2.0")
        assert claims["nonce"] == nonce and claims["amr"] == ["fido", "mfa"] and claims["oid"] == user["id"]
        assert claims["preferred_username"] == user["userPrincipalName"] and claims["tid"] == server["tenant"]
        assert claims["sid"] and abs(claims["auth_time"] - time.time()) < 120
        access = jwt.decode(tokens["access_token"], keys.get_signing_key_from_jwt(tokens["access_token"]).key, algorithms=["RS256"],
                            audience="https://graph.microsoft.com")
        assert access["scp"].split() == ["openid", "profile", "User.Read"] and access["oid"] == user["id"] and access["idtyp"] == "user"
        # The access token works for the user's own /me, and for nothing an administrator's token is for.
        me = requests.get(f"{server['url']}/v1.0/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200 and me.json()["userPrincipalName"] == user["userPrincipalName"], me.text
        for path in ("me/authentication/methods", "users"):
            denied = requests.get(f"{server['url']}/v1.0/{path}", headers={"Authorization": f"Bearer {tokens['access_token']}"})
            assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied", (path, denied.text)
        # A code works once; a wrong verifier fails.
        replay = requests.post(token_url, data=form)
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        # With the session, a second request comes straight back with a code; its verifier must match.
        url, verifier, state, _ = authorize()
        browser.get(url)
        second = callback.wait(2)
        wrong = dict(form, code=second["code"], code_verifier=secrets.token_urlsafe(48))
        assert requests.post(token_url, data=wrong).json()["error"] == "invalid_grant"
        # Refresh tokens rotate: the new one works, the spent one fails and takes its family with it.
        scope = "openid profile offline_access User.Read UserAuthenticationMethod.ReadWrite"
        url, verifier, state, _ = authorize(scope=scope)
        browser.get(url)
        third = callback.wait(3)
        first = requests.post(token_url, data=dict(form, code=third["code"], code_verifier=verifier, scope=scope)).json()
        # Self-service: the user sees their own passkeys, and cannot give themselves a Temporary Access Pass.
        bearer = {"Authorization": f"Bearer {first['access_token']}"}
        own = requests.get(f"{server['url']}/v1.0/me/authentication/fido2Methods", headers=bearer)
        assert own.status_code == 200 and [m["passkeyType"] for m in own.json()["value"]] == ["deviceBound"], own.text
        tap = requests.post(f"{server['url']}/v1.0/me/authentication/temporaryAccessPassMethods", headers=bearer, json={})
        assert tap.status_code == 403, tap.text
        refresh = {"grant_type": "refresh_token", "client_id": app["appId"], "client_secret": secret, "refresh_token": first["refresh_token"]}
        second_tokens = requests.post(token_url, data=refresh).json()
        assert second_tokens["refresh_token"] != first["refresh_token"] and "id_token" in second_tokens
        reused = requests.post(token_url, data=refresh)
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
        family_gone = requests.post(token_url, data=dict(refresh, refresh_token=second_tokens["refresh_token"]))
        assert family_gone.status_code == 400 and family_gone.json()["error"] == "invalid_grant"
        # Sign out everywhere: the session and every refresh token of the user stop working.
        url, verifier, state, _ = authorize(scope="openid offline_access")
        browser.get(url)
        fourth = callback.wait(4)
        last = requests.post(token_url, data=dict(form, code=fourth["code"], code_verifier=verifier, scope="openid offline_access")).json()
        revoked = graph(server, "POST", f"users/{user['id']}/revokeSignInSessions")
        assert revoked.status_code == 200 and revoked.json()["value"] is True
        assert requests.post(token_url, data=dict(refresh, refresh_token=last["refresh_token"])).json()["error"] == "invalid_grant"
        url, *_ = authorize(prompt="none")
        browser.get(url)
        assert callback.wait(5)["error"] == "login_required"
        # prompt=login asks again (and autofill answers, starting a new session).
        url, *_ = authorize(prompt="login")
        browser.get(url)
        assert "code" in callback.wait(6)
        # response_mode=form_post: the code arrives in a POST from an auto-submitting page, not in the URL.
        url, verifier, state, _ = authorize(response_mode="form_post")
        browser.get(url)
        posted = callback.wait(7)
        assert posted["state"] == state and "code" in posted
        assert requests.post(token_url, data=dict(form, code=posted["code"], code_verifier=verifier)).status_code == 200
        # Signing out ends the session and returns to the app's registered URI.
        from urllib.parse import quote
        browser.get(f"{server['url']}/{server['tenant']}/oauth2/v2.0/logout?client_id={app['appId']}"
                    f"&post_logout_redirect_uri={quote(callback.url, safe='')}&state=bye")
        wait_for_text(browser, "Sign out?")  # client_id is no proof the app asked: the user confirms
        browser.find_element("id", "signout").click()
        assert callback.wait(8)["state"] == "bye"
        url, *_ = authorize(prompt="none")
        browser.get(url)
        assert callback.wait(9)["error"] == "login_required"
    finally:
        remove_authenticator(browser, aid)
        callback.close()


def test_a_device_signs_in_with_the_device_code_flow(server, browser):
    import jwt

    user = new_user(server, "device1")
    app = graph(server, "POST", "applications", json={"displayName": "Command-line tool", "isFallbackPublicClient": True}).json()
    assert graph(server, "POST", "servicePrincipals", json={"appId": app["appId"]}).status_code == 201
    base = f"{server['url']}/{server['tenant']}"
    start = requests.post(f"{base}/oauth2/v2.0/devicecode", data={"client_id": app["appId"], "scope": "openid offline_access User.Read"}).json()
    assert start["verification_uri"] == f"{base}/devicelogin" and start["interval"] == 5 and start["user_code"] in start["message"]
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": app["appId"], "device_code": start["device_code"]}
    pending = requests.post(f"{base}/oauth2/v2.0/token", data=poll)
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    aid = register_passkey(browser, f"{base}/login", user["id"], server["token"])
    try:
        # The code page sends the browser to sign in (autofill answers) and back, with the code filled in.
        browser.get(f"{start['verification_uri']}?user_code={start['user_code']}")
        wait_for_text(browser, "Approve")
        assert user["userPrincipalName"] in browser.page_source
        approved = browser.execute_async_script(APPROVE_DEVICE)
        assert approved == {"approved": True}
        browser.save_screenshot(str(artifacts() / "device-approved.png"))
    finally:
        remove_authenticator(browser, aid)
    tokens = requests.post(f"{base}/oauth2/v2.0/token", data=poll).json()
    keys = jwt.PyJWKClient(f"{base}/discovery/v2.0/keys")
    claims = jwt.decode(tokens["id_token"], keys.get_signing_key_from_jwt(tokens["id_token"]).key, algorithms=["RS256"],
                        audience=app["appId"], issuer=f"{base}/v2.0")
    assert claims["preferred_username"] == user["userPrincipalName"] and claims["amr"] == ["fido", "mfa"] and "refresh_token" in tokens
    again = requests.post(f"{base}/oauth2/v2.0/token", data=poll)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"  # once


def test_registration_only_attestation_refuses_an_unattested_key_and_accepts_a_trusted_one(server, browser):
    user = new_user(server, "attested1")
    r = graph(server, "PATCH", FIDO2, json={"passkeyProfiles": [
        {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound", "attestationEnforcement": "registrationOnly"}]})
    assert r.status_code == 204, r.text
    browser.get(f"{server['url']}/{server['tenant']}/login")
    aid = add_authenticator(browser, synced=False)
    try:
        # The browser is told not to convey attestation: the key arrives as "none", which the profile refuses.
        unattested = browser.execute_async_script(REGISTER, user["id"], server["token"], "none")
        assert unattested.get("status") == 400 and "attestationRequired" in unattested["body"]["error"]["message"], unattested
        # Chromium's packed attestation chains to the batch certificate the server trusts.
        attested = browser.execute_async_script(REGISTER, user["id"], server["token"])
        assert attested.get("status") == 201, attested
        assert attested["body"]["attestationLevel"] == "attested" and attested["body"]["aaGuid"] == "01020304-0506-0708-0102-030405060708"
        assert browser.execute_async_script(SIGN_IN).get("userPrincipalName") == user["userPrincipalName"]
        # An AAGUID block list naming the virtual authenticator's model refuses its keys, at sign-in and at
        # registration.
        chromium_aaguid = attested["body"]["aaGuid"]
        r = graph(server, "PATCH", FIDO2, json={"passkeyProfiles": [
            {"id": DEFAULT_PROFILE, "name": "Default passkey profile", "passkeyTypes": "deviceBound,synced", "attestationEnforcement": "disabled",
             "keyRestrictions": {"isEnforced": True, "enforcementType": "block", "aaGuids": [chromium_aaguid]}}]})
        assert r.status_code == 204, r.text
        blocked = browser.execute_async_script(SIGN_IN)
        assert blocked.get("error_codes") == ["aaguidBlocked"], blocked
        other = new_user(server, "attested2")
        refused = browser.execute_async_script(REGISTER, other["id"], server["token"])
        assert refused.get("status") == 400 and "aaguidBlocked" in refused["body"]["error"]["message"], refused
    finally:
        remove_authenticator(browser, aid)
        assert graph(server, "DELETE", FIDO2).status_code == 204


def test_a_confidential_client_signs_in_with_authlib_and_pkce(server, browser):
    """Authlib's OAuth2Session as a web app's back end: authorization URL with PKCE (S256) and a nonce, the
    browser signs in with a passkey, the code is redeemed with the client secret, the ID token verifies against the
    JWKS with PyJWT, refresh works, and after the user's sessions are revoked the refresh token does not."""
    import jwt
    from authlib.common.security import generate_token
    from authlib.integrations.base_client.errors import OAuthError
    from authlib.integrations.requests_client import OAuth2Session

    callback = Callback()
    user = new_user(server, "authlib1")
    app = graph(server, "POST", "applications", json={"displayName": "Authlib web app", "web": {"redirectUris": [callback.url]}}).json()
    secret = graph(server, "POST", f"applications/{app['id']}/addPassword", json={}).json()["secretText"]
    admin_consent(server, app["appId"], "User.Read")
    base = f"{server['url']}/{server['tenant']}"
    aid = register_passkey(browser, f"{base}/login", user["id"], server["token"])
    try:
        client = OAuth2Session(app["appId"], secret, scope="openid profile offline_access User.Read", redirect_uri=callback.url,
                               code_challenge_method="S256", token_endpoint_auth_method="client_secret_post")
        verifier, nonce = generate_token(48), generate_token(20)
        url, state = client.create_authorization_url(f"{base}/oauth2/v2.0/authorize", code_verifier=verifier, nonce=nonce)
        browser.get(url)
        query = callback.wait(1)
        assert query["state"] == state
        response_url = callback.url + "?" + callback.received[-1].split("?", 1)[1]
        token = client.fetch_token(f"{base}/oauth2/v2.0/token", authorization_response=response_url, code_verifier=verifier)
        keys = jwt.PyJWKClient(f"{base}/discovery/v2.0/keys")
        claims = jwt.decode(token["id_token"], keys.get_signing_key_from_jwt(token["id_token"]).key, algorithms=["RS256"],
                            audience=app["appId"], issuer=f"{base}/v2.0")
        assert claims["nonce"] == nonce and claims["oid"] == user["id"] and claims["amr"] == ["fido", "mfa"]
        me = client.get(f"{server['url']}/v1.0/me")
        assert me.status_code == 200 and me.json()["id"] == user["id"], me.text
        # UserInfo where discovery says it is, as a generic relying party calls it after the code exchange: the ID
        # token's pairwise sub, and the profile claims the scopes allow.
        userinfo_endpoint = requests.get(f"{base}/v2.0/.well-known/openid-configuration").json()["userinfo_endpoint"]
        info = client.get(userinfo_endpoint)
        assert info.status_code == 200 and info.json()["sub"] == claims["sub"], info.text
        assert info.json()["preferred_username"] == user["userPrincipalName"]
        refreshed = client.refresh_token(f"{base}/oauth2/v2.0/token")
        assert refreshed["refresh_token"] != token["refresh_token"] and refreshed["access_token"]
        assert graph(server, "POST", f"users/{user['id']}/revokeSignInSessions").status_code == 200
        with pytest.raises(OAuthError) as refused:
            client.refresh_token(f"{base}/oauth2/v2.0/token")
        assert refused.value.error == "invalid_grant"
    finally:
        remove_authenticator(browser, aid)
        callback.close()


def _submit(browser, action: str, fields: dict[str, str] | None = None, checks: tuple[str, ...] = (), unchecks: tuple[str, ...] = ()) -> None:
    """Fills and submits the admin center form that posts to `action`, the way a person would, and returns once the
    form's response has loaded: the page the form was on is gone and the new document is complete. Only that proves
    the post happened: text such as "Saved." may be on the page already, from the form before."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    form = browser.find_element(By.CSS_SELECTOR, f"form[method=post][action='{action}']")
    for name, value in (fields or {}).items():
        field = form.find_element(By.NAME, name)
        if field.tag_name == "select":
            from selenium.webdriver.support.ui import Select
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)
    for value in checks:
        box = form.find_element(By.CSS_SELECTOR, f"input[type=checkbox][value='{value}']")
        if not box.is_selected():
            box.click()
    for value in unchecks:
        box = form.find_element(By.CSS_SELECTOR, f"input[type=checkbox][value='{value}']")
        if box.is_selected():
            box.click()
    # A mark on the page the form is on: a new document does not have it. (Waiting for the old <html> to go stale is
    # not enough: chromedriver can answer a lookup in a document being replaced with an inspector error instead.)
    browser.execute_script("window.tesseraFormPage = true")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 20, ignored_exceptions=(WebDriverException,)).until(
        lambda b: b.execute_script("return !window.tesseraFormPage && document.readyState === 'complete'"),
        f"the answer to the form posting to {action} never loaded")


def test_an_administrator_runs_the_tenant_from_the_admin_center(server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    domain = server["admin"].split("@")[1]
    admin = new_user(server, "operator1")
    assigned = graph(server, "POST", "roleManagement/directory/roleAssignments", json={
        "principalId": admin["id"], "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10", "directoryScopeId": "/"})
    assert assigned.status_code == 201, assigned.text
    aid = register_passkey(browser, f"{server['url']}/{server['tenant']}/login", admin["id"], server["token"])
    shots = artifacts()
    try:
        # /admin sends the browser to sign in; the passkey (autofill) signs the administrator in and back.
        browser.get(f"{server['url']}/admin")
        wait_for_text(browser, "New user")
        assert admin["userPrincipalName"] in browser.page_source
        base = f"/admin/{server['tenant']}"
        assert browser.current_url.endswith(f"{base}/users")

        _submit(browser, f"{base}/users", {"displayName": "Grace Hopper", "userPrincipalName": f"grace@{domain}", "jobTitle": "Rear admiral"})
        wait_for_text(browser, "Issue a Temporary Access Pass")
        grace_id = browser.current_url.split("/users/")[1].split("?")[0]
        _submit(browser, f"{base}/users/{grace_id}/tap")
        wait_for_text(browser, "It is shown only now")
        tap = browser.find_element(By.ID, "temporary-access-pass").text
        browser.save_screenshot(str(shots / "admin-temporary-access-pass.png"))
        onboard = requests.post(f"{server['url']}/{server['tenant']}/login/tap", json={"username": f"grace@{domain}", "temporaryAccessPass": tap})
        assert onboard.status_code == 200 and onboard.json()["userId"] == grace_id, onboard.text

        browser.get(f"{server['url']}{base}/groups")
        _submit(browser, f"{base}/groups", {"displayName": "Hardware key pilots"})
        wait_for_text(browser, "Add member")
        group_id = browser.current_url.split("/groups/")[1].split("?")[0]
        _submit(browser, f"{base}/groups/{group_id}/members/add", {"member": f"grace@{domain}"})
        wait_for_text(browser, f"grace@{domain}")

        browser.get(f"{server['url']}{base}/passkeys")
        _submit(browser, f"{base}/passkeys/profiles/new", {"name": "Security keys", "attestationEnforcement": "disabled",
                                                            "enforcementType": "block", "aaGuids": ""}, checks=("deviceBound",), unchecks=("synced",))
        wait_for_text(browser, "Saved.")
        profiles = graph(server, "GET", FIDO2).json()["passkeyProfiles"]
        keys = next(p for p in profiles if p["name"] == "Security keys")
        assert keys["passkeyTypes"] == "deviceBound"
        _submit(browser, f"{base}/passkeys/include", {"target": "Hardware key pilots"}, checks=(keys["id"],))
        wait_for_text(browser, "Saved.")
        browser.get(f"{server['url']}{base}/passkeys?check=grace%40{domain}")
        result = browser.find_element(By.ID, "check-result").text
        assert "Security keys" in result and "Default passkey profile" in result, result
        browser.set_window_size(1200, 1900)
        browser.save_screenshot(str(shots / "admin-passkey-profiles.png"))
        targets = graph(server, "GET", FIDO2).json()["includeTargets"]
        assert {"id": group_id, "targetType": "group", "isRegistrationRequired": False, "allowedPasskeyProfiles": [keys["id"]]} in targets

        # Backup and Recovery: the start-up snapshot against now shows what this test changed.
        snapshots = graph(server, "GET", "directory/recovery/snapshots").json()["value"]
        assert snapshots, "serve took no snapshot at start"
        report = f"{server['url']}{base}/backup?from={snapshots[-1]['id']}"
        browser.get(report)
        wait_for_text(browser, "What changed since")
        assert "Grace Hopper" in browser.page_source and "Hardware key pilots" in browser.page_source
        # Objects added since say so once, not a row of "—" per property.
        added = browser.find_element(By.XPATH, "//tr[.//td[contains(., 'Grace Hopper')]]").text
        assert "added" in added and "—" not in added, added
        # The report fits a 1,200 px window and a phone's width: nothing runs off the right edge.
        for name, width, height in (("1200", 1200, 1000), ("phone", 390, 844)):
            browser.set_window_size(width, height)
            browser.get(report)
            wait_for_text(browser, "What changed since")
            overflow = browser.execute_script(
                "const m = document.querySelector('main');"
                "return {tables: Math.max(...[...m.querySelectorAll('table')].map(t => t.getBoundingClientRect().right)),"
                " main: m.getBoundingClientRect().right, page: document.documentElement.scrollWidth,"
                " window: document.documentElement.clientWidth};")
            assert overflow["tables"] <= overflow["main"] + 1 and overflow["page"] <= overflow["window"] + 1, (name, overflow)
            browser.save_screenshot(str(shots / f"admin-backup-report-{name}.png"))
        browser.set_window_size(900, 700)

        browser.get(f"{server['url']}{base}/signins?user={admin['userPrincipalName']}")
        wait_for_text(browser, "Sign-in logs")
        assert "Passkey (device-bound)" in browser.page_source
        browser.save_screenshot(str(shots / "admin-sign-in-logs.png"))

        # Every page fits a 1,200 px window and a phone's width: nothing makes the page scroll sideways.
        pages = {"users": "users", "user": f"users/{admin['id']}", "groups": "groups", "group": f"groups/{group_id}",
                 "roles": "roles", "passkeys": "passkeys", "signins": f"signins?user={admin['userPrincipalName']}",
                 "backup": "backup", "sync": "sync"}
        for width, height, size in ((1200, 1000, "1200"), (390, 844, "phone")):
            browser.set_window_size(width, height)
            for name, path in pages.items():
                browser.get(f"{server['url']}{base}/{path}")
                WebDriverWait(browser, 15).until(lambda b: b.execute_script("return document.readyState") == "complete"
                                                 and b.find_elements(By.TAG_NAME, "main"))
                fit = browser.execute_script("return {page: document.documentElement.scrollWidth, window: document.documentElement.clientWidth};")
                browser.save_screenshot(str(shots / f"admin-{name}-{size}.png"))
                assert fit["page"] <= fit["window"] + 1, (name, size, fit)
    finally:
        browser.set_window_size(900, 700)
        remove_authenticator(browser, aid)
        graph(server, "DELETE", FIDO2)


def test_conditional_access_blocks_a_sign_in_from_outside_the_named_location(server, browser):
    """A policy blocks one user's sign-ins to one app from outside a named location: from elsewhere the browser gets
    Entra's error page (AADSTS53003 and a correlation id) after the passkey step, and no code; from inside
    the location the same sign-in returns to the app with a code. The browser's address comes through
    X-Forwarded-For, which the server trusts from 127.0.0.1 only."""
    from urllib.parse import urlencode

    callback = Callback()
    user = new_user(server, "traveller1")
    app = graph(server, "POST", "applications", json={"displayName": "Ledger", "web": {"redirectUris": [callback.url]}}).json()
    location = graph(server, "POST", "identity/conditionalAccess/namedLocations", json={
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Head office",
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]}).json()
    policy = graph(server, "POST", "identity/conditionalAccess/policies", json={
        "displayName": "Ledger only from the head office", "state": "enabled",
        "conditions": {"users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": [app["appId"]]},
                       "locations": {"includeLocations": ["All"], "excludeLocations": [location["id"]]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}})
    assert policy.status_code == 201, policy.text
    aid = register_passkey(browser, f"{server['url']}/{server['tenant']}/login", user["id"], server["token"])
    authorize = f"{server['url']}/{server['tenant']}/oauth2/v2.0/authorize?" + urlencode({
        "client_id": app["appId"], "response_type": "code", "redirect_uri": callback.url, "scope": "openid", "state": "ca1"})
    try:
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "198.51.100.9"}})
        browser.get(authorize)  # the sign-in page's autofill signs in, then /authorize decides
        wait_for_text(browser, "AADSTS53003")
        assert browser.find_element("id", "correlation-id").text
        assert "head office" not in browser.page_source  # which policy refused is in the log, for the administrator
        assert callback.received == []
        browser.save_screenshot(str(artifacts() / "conditional-access-blocked.png"))
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "203.0.113.40"}})
        browser.get(authorize)
        query = callback.wait(1)
        assert query["state"] == "ca1" and "code" in query
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        graph(server, "DELETE", f"identity/conditionalAccess/policies/{policy.json()['id']}")
        remove_authenticator(browser, aid)
        callback.close()


def test_conditional_access_phishing_resistance_with_an_access_pass_report_only_and_sign_in_frequency(server, browser):
    """Issue 14 in a real browser. A policy requires phishing-resistant MFA for one app and a new sign-in every hour; a
    report-only policy would block the app; registering security information needs MFA. The user has only a Temporary
    Access Pass: with it they can register a passkey and nothing else (no session, so the app gets no code); the
    passkey then satisfies phishing resistance and the app gets a code, with the report-only policy's
    reportOnlyFailure in the sign-in log and the sign-in let through. Within the hour the session is reused without a
    passkey prompt; once the (injected) clock has moved two hours, the same request needs a new passkey sign-in."""
    from urllib.parse import urlencode

    callback = Callback()
    user = new_user(server, "onboarder1")
    tap = graph(server, "POST", f"users/{user['id']}/authentication/temporaryAccessPassMethods",
                json={"isUsableOnce": False, "lifetimeInMinutes": 60})
    assert tap.status_code == 201, tap.text
    app = graph(server, "POST", "applications", json={"displayName": "Vault", "web": {"redirectUris": [callback.url]}}).json()
    policies = []
    for body in (
        {"displayName": "Vault: phishing-resistant MFA, every hour", "state": "enabled",
         "conditions": {"users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": [app["appId"]]}},
         "grantControls": {"operator": "OR", "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"}},
         "sessionControls": {"signInFrequency": {"isEnabled": True, "value": 1, "type": "hours", "frequencyInterval": "timeBased",
                                                 "authenticationType": "primaryAndSecondaryAuthentication"}}},
        {"displayName": "Vault: block (report-only)", "state": "enabledForReportingButNotEnforced",
         "conditions": {"users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": [app["appId"]]}},
         "grantControls": {"operator": "OR", "builtInControls": ["block"]}},
        {"displayName": "Registering security info needs MFA", "state": "enabled",
         "conditions": {"users": {"includeUsers": [user["id"]]},
                        "applications": {"includeUserActions": ["urn:user:registersecurityinfo"]}},
         "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}},
    ):
        created = graph(server, "POST", "identity/conditionalAccess/policies", json=body)
        assert created.status_code == 201, created.text
        policies.append(created.json())
    strong, report_only, _ = policies

    def passkey_sign_ins() -> int:
        logs = graph(server, "GET", "auditLogs/signIns", params={"$filter": f"userId eq '{user['id']}'"}).json()["value"]
        return sum(1 for e in logs if (e.get("authenticationDetails") or [{}])[0].get("authenticationMethod", "").startswith("Passkey ("))

    authorize = f"{server['url']}/{server['tenant']}/oauth2/v2.0/authorize?" + urlencode({
        "client_id": app["appId"], "response_type": "code", "redirect_uri": callback.url, "scope": "openid", "state": "tap1"})
    browser.delete_all_cookies()
    browser.get(f"{server['url']}/{server['tenant']}/login")
    aid = add_authenticator(browser, synced=False)
    try:
        # The pass registers a passkey (MFA is enough for that) and signs in to nothing.
        browser.execute_script("window.cancelAutofill()")
        browser.find_element("id", "username").send_keys(user["userPrincipalName"])
        browser.find_element("id", "onboarding").click()
        browser.find_element("id", "tap").send_keys(tap.json()["temporaryAccessPass"])
        created = browser.execute_async_script(USE_ACCESS_PASS)
        assert created.get("passkeyType") == "deviceBound", created
        browser.get(authorize + "&prompt=none")
        assert callback.wait(1).get("error") == "login_required"
        # The passkey (autofill on the sign-in page) meets phishing resistance: a code, the report-only block only logged.
        browser.get(authorize)
        query = callback.wait(2)
        assert query["state"] == "tap1" and "code" in query, query
        assert passkey_sign_ins() == 1
        records = graph(server, "GET", "auditLogs/signIns", params={"$filter": f"appId eq '{app['appId']}'"}).json()["value"]
        assert len(records) == 1 and records[0]["conditionalAccessStatus"] == "success", records
        results = {p["id"]: p["result"] for p in records[0]["appliedConditionalAccessPolicies"]}
        assert results[strong["id"]] == "success" and results[report_only["id"]] == "reportOnlyFailure", results
        assert records[0]["authenticationRequirement"] == "multiFactorAuthentication"
        # Within the hour: the session is enough, no new passkey prompt.
        browser.get(authorize)
        assert "code" in callback.wait(3)
        assert passkey_sign_ins() == 1
        # Two hours later (the server's clock moved): sign in again with the passkey, then back to the app.
        server["clock"].write_text("7200")
        time.sleep(0.2)
        browser.get(authorize)
        assert "code" in callback.wait(4, timeout=30)
        server["clock"].write_text("0")  # the test's own Graph token lives an hour of the server's time
        time.sleep(0.2)
        assert passkey_sign_ins() == 2
    finally:
        server["clock"].write_text("0")
        for policy in policies:
            graph(server, "DELETE", f"identity/conditionalAccess/policies/{policy['id']}")
        remove_authenticator(browser, aid)
        callback.close()
