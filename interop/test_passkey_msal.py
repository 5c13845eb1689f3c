"""MSAL Python against Tessera's sign-in, over HTTPS: the authorization code flow (a public client with PKCE) and
the device code flow, with the user signing in with a passkey in headless Chromium (CDP virtual authenticator).

Chromium is told to accept the server's key (--ignore-certificate-errors-spki-list with the SHA-256 of its public
key), so https://localhost is a secure context for WebAuthn, as a trusted certificate would make it."""
from __future__ import annotations

import json
import threading

import jwt
import msal
import pytest

from browser import APPROVE_DEVICE, Callback, register_passkey, remove_authenticator, wait_for_text
from support import unique



@pytest.fixture
def passkey_user(graph, tessera, tenant_a, origin, browser):
    """A user with a passkey on a fresh virtual authenticator in the browser (signed out)."""
    user = graph.create_user(tenant_a.domain, unique("msal"))
    aid = register_passkey(browser, f"{origin}/{tenant_a.tenant_id}/login", user["id"], graph.token)
    yield user
    remove_authenticator(browser, aid)


def public_client(graph, tessera, origin, tenant_a, redirect_uri: str | None = None,
                  admin_consent: str | None = None) -> msal.PublicClientApplication:
    """A public client app; with `admin_consent`, those Graph scopes granted for the whole tenant (as an administrator
    does through Graph for a command-line tool, whose device code flow has no consent page)."""
    body = {"displayName": unique("MSAL app"), "isFallbackPublicClient": True}
    if redirect_uri:
        body["publicClient"] = {"redirectUris": [redirect_uri]}
    app = graph.ok("POST", "applications", status=201, json=body)
    sp = graph.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
    if admin_consent:
        graph.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph.graph_service_principal()["id"],
            "scope": admin_consent})
    session = tessera.session()
    return msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_a.tenant_id}", instance_discovery=False,
                                        http_client=session)


def test_msal_authorization_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    callback = Callback()
    try:
        app = public_client(graph, tessera, origin, tenant_a, redirect_uri=callback.url)
        flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(flow["auth_uri"])  # to the sign-in page, whose autofill signs the user in
        # Nothing is granted to this app yet: the user is asked, and consents for themselves.
        wait_for_text(browser, "Permissions requested")
        assert browser.find_element("id", "scopes").text.split() == ["User.Read"]
        browser.find_element("id", "accept").click()
        result = app.acquire_token_by_auth_code_flow(flow, callback.wait(1))
        assert "access_token" in result, result
        access = jwt.decode(result["access_token"], options={"verify_signature": False})
        assert access["scp"].split() == ["openid", "profile", "User.Read"], access
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


def test_a_code_whose_sign_in_session_ended_before_the_token_request_is_refused(graph, tessera, tenant_a, origin, browser,
                                                                                passkey_user):
    """Revocation stops what was issued before it (RFC 9700 §4.14.2): a code that reached the app before the user's
    sessions were revoked through Graph (revokeSignInSessions), or before the user signed out, is invalid_grant when
    MSAL redeems it, with no token; a code redeemed before the revocation worked, and its refresh token stops at it; a
    code of a sign-in after either is redeemed."""
    callback = Callback()

    def code(visit: int) -> tuple[dict, dict]:
        flow = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(flow["auth_uri"])  # signs in with the passkey (autofill) when signed out; the grant is the tenant's
        return flow, callback.wait(visit)

    def refused(result: dict, *codes: int) -> bool:
        return result.get("error") == "invalid_grant" and bool(set(codes) & set(result.get("error_codes", []))) and not (
            {"access_token", "refresh_token", "id_token"} & set(result))

    try:
        app = public_client(graph, tessera, origin, tenant_a, redirect_uri=callback.url, admin_consent="User.Read")
        flow, response = code(1)
        result = app.acquire_token_by_auth_code_flow(flow, response)
        assert "access_token" in result and "refresh_token" in result, result
        account = app.get_accounts()[0]
        # A code that has reached the app, then the administrator revokes the user's sessions: the code is refused (its
        # session is gone: 50133; and when the revocation is a later second than the sign-in, the sign-in is older than
        # the user's signInSessionsValidFromDateTime: 50173, which is asked first).
        flow, response = code(2)
        revoked = graph.post(f"users/{passkey_user['id']}/revokeSignInSessions")
        assert revoked.status_code == 200 and revoked.json()["value"] is True, revoked.text
        assert refused(app.acquire_token_by_auth_code_flow(flow, response), 50133, 50173)
        # The refresh token of the code redeemed before the revocation is refused too.
        silent = app.acquire_token_silent_with_error(["User.Read"], account=account, force_refresh=True)
        assert silent and silent.get("error") == "invalid_grant", silent
        # A code that has reached the app, then the user signs out in that browser: the code is refused.
        flow, response = code(3)
        browser.get(f"{origin}/{tenant_a.tenant_id}/oauth2/v2.0/logout")
        wait_for_text(browser, "Sign out?")
        browser.find_element("id", "signout").click()
        wait_for_text(browser, "You have signed out")
        assert refused(app.acquire_token_by_auth_code_flow(flow, response), 50133)
        # A new sign-in's code is redeemed, and its refresh token works.
        flow, response = code(4)
        result = app.acquire_token_by_auth_code_flow(flow, response)
        assert "access_token" in result and "refresh_token" in result, result
        account = next(a for a in app.get_accounts() if a["local_account_id"] == passkey_user["id"])
        assert "access_token" in app.acquire_token_silent_with_error(["User.Read"], account=account, force_refresh=True)
    finally:
        callback.close()


def device_code_sign_in(app: msal.PublicClientApplication, browser) -> dict:
    """MSAL's device code flow, approved on the device login page by the browser's signed-in (or autofilled) user."""
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
    return result


def test_msal_device_code_flow_with_a_passkey(graph, tessera, tenant_a, origin, browser, passkey_user):
    app = public_client(graph, tessera, origin, tenant_a, admin_consent="User.Read")
    result = device_code_sign_in(app, browser)
    assert result["id_token_claims"]["preferred_username"] == passkey_user["userPrincipalName"]


def test_consent_is_asked_once_declined_or_refused_silently(graph, tessera, tenant_a, origin, browser, passkey_user):
    """No grant: Cancel sends access_denied to the client; prompt=none gets consent_required; once the user accepted,
    the next sign-in goes straight through; an admin-only scope shows a plain user "ask your administrator"."""
    callback = Callback()
    try:
        app = public_client(graph, tessera, origin, tenant_a, redirect_uri=callback.url)
        declined = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(declined["auth_uri"])  # signs in (autofill), then the consent page
        wait_for_text(browser, "Permissions requested")
        browser.find_element("id", "cancel").click()
        assert callback.wait(1)["error"] == "access_denied"
        silent = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, prompt="none")
        browser.get(silent["auth_uri"])  # signed in, but nothing granted: no page may be shown
        assert callback.wait(2)["error"] == "consent_required"
        accepted = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(accepted["auth_uri"])
        wait_for_text(browser, "Permissions requested")
        browser.find_element("id", "accept").click()
        assert "code" in callback.wait(3)
        again = app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url)
        browser.get(again["auth_uri"])  # granted now: no page, a code at once
        assert "code" in callback.wait(4)
        admin_only = app.initiate_auth_code_flow(scopes=["Directory.ReadWrite.All"], redirect_uri=callback.url)
        browser.get(admin_only["auth_uri"])
        wait_for_text(browser, "only an administrator can grant")
        assert not browser.find_elements("id", "accept")
    finally:
        callback.close()


def test_msal_surfaces_interaction_required_with_claims_when_a_policy_changes(graph, tessera, tenant_a, origin, browser,
                                                                              passkey_user):
    """A refresh after a policy change: the session's passkey is not one the new policy's authentication strength
    allows (its AAGUID is not on the strength's list), so the refresh is `interaction_required` with a claims challenge
    naming the policy, and MSAL hands both to the app (issue 14)."""
    app = public_client(graph, tessera, origin, tenant_a, admin_consent="User.Read")
    device_code_sign_in(app, browser)
    account = app.get_accounts()[0]
    assert "access_token" in app.acquire_token_silent_with_error(["User.Read"], account=account, force_refresh=True)

    strength = graph.ok("POST", "identity/conditionalAccess/authenticationStrength/policies", status=201, json={
        "displayName": unique("Only our security keys"), "allowedCombinations": ["fido2"]})
    graph.ok("POST", f"identity/conditionalAccess/authenticationStrength/policies/{strength['id']}/combinationConfigurations",
             status=201, json={"@odata.type": "#microsoft.graph.fido2CombinationConfiguration",
                               "allowedAAGUIDs": ["90a3ccdf-635c-4729-a248-9b709135078f"], "appliesToCombinations": ["fido2"]})
    policy = graph.ok("POST", "identity/conditionalAccess/policies", status=201, json={
        "displayName": unique("This app: our security keys only"), "state": "enabled",
        "conditions": {"users": {"includeUsers": [passkey_user["id"]]}, "applications": {"includeApplications": [app.client_id]}},
        "grantControls": {"operator": "OR", "authenticationStrength": {"id": strength["id"]}}})
    try:
        refused = app.acquire_token_silent_with_error(["User.Read"], account=account, force_refresh=True)
        assert refused and refused.get("error") == "interaction_required", refused
        assert 50076 in refused.get("error_codes", []), refused
        claims = json.loads(refused["claims"])
        assert claims["access_token"]["capolids"]["values"] == [policy["id"]], claims
    finally:
        graph.ok("DELETE", f"identity/conditionalAccess/policies/{policy['id']}", status=204)
        # A deleted policy still names the strength until it is gone for good.
        graph.ok("DELETE", f"identity/conditionalAccess/deletedItems/policies/{policy['id']}", status=204)
        graph.ok("DELETE", f"identity/conditionalAccess/authenticationStrength/policies/{strength['id']}", status=204)
