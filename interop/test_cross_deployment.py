"""B2B between two Tessera deployments (issue 18): a user of tenant A on the interop server (deployment 1) signs in to an
application of a tenant of a second `tessera serve` (deployment 2) with A's passkey, in Chromium, through MSAL.

Deployment 2 trusts A by configuration: an `oidcIdentityProvider` (Graph beta `/identity/identityProviders`) naming A's
issuer, discovery document, a client registered in A and the domain of A's users; it reaches A over TLS trusting A's CA
(`serve --identity-provider-ca`). Without it, A's users cannot be invited there."""
from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from browser import Callback, click, register_passkey, remove_authenticator, wait_for_text
from support import Graph, Session, first_start, unique

IDENTITY_PROVIDER_READ_WRITE = "90db2b9a-d928-4d33-a4dd-8442ae3d41e4"  # IdentityProvider.ReadWrite.All (application)


def _binary() -> str:
    import os
    return os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parent.parent / ".build" / "debug" / "tessera")


@pytest.fixture(scope="module")
def deployment_b(tessera):
    """A second deployment with its own data folder and first tenant, trusting the interop server's CA for providers."""
    with first_start(_binary(), "tessera-deployment-b-", "--identity-provider-ca", tessera.ca) as server:
        session = requests.Session()
        session.verify, session.trust_env = server["ca"], False
        token = session.post(f"{server['url']}/{server['tenant']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": server["client"], "client_secret": server["secret"],
            "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
        graph = _graph(server, token)
        # Its automation app may manage identity providers once granted IdentityProvider.ReadWrite.All.
        sp = graph.ok("GET", "servicePrincipals", params={"$filter": f"appId eq '{server['client']}'"})["value"][0]
        graph.grant(sp["id"], "IdentityProvider.ReadWrite.All")
        server["token"] = session.post(f"{server['url']}/{server['tenant']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": server["client"], "client_secret": server["secret"],
            "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
        server["session"] = session
        yield server


class _Deployment:
    """Just what `Graph` needs of a deployment: its URL and a session trusting its CA."""

    def __init__(self, server: dict):
        self.base_url, self.ca = server["url"], server["ca"]

    def session(self) -> Session:
        return Session(self.ca)


def _graph(server: dict, token: str, version: str = "v1.0") -> Graph:
    return Graph(_Deployment(server), token, version)


@pytest.fixture(scope="module")
def browser(tessera, deployment_b):
    """Chromium trusting exactly the two servers' certificates (by their keys' hashes)."""
    from browser import chromium

    hashes = []
    for ca in (tessera.ca, deployment_b["ca"]):
        leaf = x509.load_pem_x509_certificate((Path(ca).parent / "server.pem").read_bytes())
        spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        hashes.append(base64.b64encode(hashlib.sha256(spki).digest()).decode())
    with chromium(f"--ignore-certificate-errors-spki-list={','.join(hashes)}") as driver:
        yield driver


def test_a_user_of_another_deployment_signs_in_with_a_passkey_at_home(graph, tessera, tenant_a, origin, deployment_b, browser):
    b_url, b_tenant = deployment_b["url"], deployment_b["tenant"]
    graph_b = _graph(deployment_b, deployment_b["token"])
    beta_b = _graph(deployment_b, deployment_b["token"], "beta")
    alice = graph.create_user(tenant_a.domain, unique("alice"))
    email = alice["userPrincipalName"]
    issuer = f"{origin}/{tenant_a.tenant_id}/v2.0"

    # Not trusted yet: deployment 2 cannot invite A's users.
    refused = graph_b.post("invitations", json={"invitedUserEmailAddress": email, "inviteRedirectUrl": "https://myapps.example/"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_BadRequest", refused.text

    # Deployment 2 registered at A as a web application (its redirect URI the tenant's B2B callback) with a secret.
    registration, _ = graph.create_app(unique("Deployment 2 B2B"))
    graph.ok("PATCH", f"applications/{registration['id']}", 204,
             json={"web": {"redirectUris": [f"{b_url}/{b_tenant}/b2b/oidc/callback"]}})
    secret = graph.add_password(registration["id"])
    provider = beta_b.ok("POST", "identity/identityProviders", 201, json={
        "@odata.type": "#microsoft.graph.oidcIdentityProvider", "displayName": "Contoso (deployment 1)",
        "clientId": registration["appId"], "issuer": issuer, "wellKnownEndpoint": f"{issuer}/.well-known/openid-configuration",
        "responseType": "code", "scope": "openid profile email",
        "clientAuthentication": {"@odata.type": "#microsoft.graph.oidcClientSecretAuthentication", "clientSecret": secret},
        "domains": [tenant_a.domain]})
    assert provider["clientAuthentication"]["clientSecret"] == "*****" and secret not in str(beta_b.ok("GET", "identity/identityProviders"))

    callback = Callback()
    aid = register_passkey(browser, f"{origin}/{tenant_a.tenant_id}/login", alice["id"], graph.token)
    guest = None
    try:
        invitation = graph_b.ok("POST", "invitations", 201, json={
            "invitedUserEmailAddress": email, "inviteRedirectUrl": callback.url, "sendInvitationMessage": False})
        guest = invitation["invitedUser"]["id"]
        assert graph_b.ok("GET", f"users/{guest}", params={"$select": "identities"})["identities"][0]["issuer"] == issuer
        # Deployment 2 sends the browser to A's authorization endpoint; A's sign-in page signs Alice in with her passkey
        # (autofill); A sends the code back; deployment 2 redeems it and checks A's ID token, then its redirect.
        browser.get(invitation["inviteRedeemUrl"])
        wait_for_text(browser, "Review permissions")  # deployment 2's consent prompt, then its redirect
        click(browser, "accept")
        assert callback.wait(1) == {}
        state = graph_b.ok("GET", f"users/{guest}", params={"$select": "externalUserState,userType,identities"})
        assert state["externalUserState"] == "Accepted" and state["userType"] == "Guest"
        assert state["identities"][0]["issuerAssignedId"] == alice["id"]

        # An application of deployment 2, signed in to with MSAL: home realm discovery by the login hint's domain.
        app = graph_b.ok("POST", "applications", 201, json={"displayName": unique("B2B app"), "publicClient": {"redirectUris": [callback.url]}})
        sp = graph_b.ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
        graph_b.ok("POST", "oauth2PermissionGrants", 201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph_b.graph_service_principal()["id"], "scope": "User.Read"})
        msal_app = msal.PublicClientApplication(app["appId"], authority=f"{b_url}/{b_tenant}", instance_discovery=False,
                                                http_client=deployment_b["session"])
        flow = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(flow["auth_uri"])  # to deployment 2, to A (signed in already), back to deployment 2, to the app
        result = msal_app.acquire_token_by_auth_code_flow(flow, callback.wait(2))
        assert "access_token" in result, result
        claims = result["id_token_claims"]
        assert claims["tid"] == b_tenant and claims["oid"] == guest and claims["idp"] == issuer and claims["acct"] == 1, claims
        assert claims["iss"] == f"{b_url}/{b_tenant}/v2.0", claims
        access = jwt.decode(result["access_token"], options={"verify_signature": False})
        assert access["tid"] == b_tenant and access["idp"] == issuer and "User.Read" in access["scp"].split()
        me = deployment_b["session"].get(f"{b_url}/v1.0/me", headers={"Authorization": f"Bearer {result['access_token']}"})
        assert me.status_code == 200 and me.json()["id"] == guest, me.text

        # The trust withdrawn: a new sign-in (the browser's sessions gone) no longer goes to A, and a new invitation is
        # refused.
        beta_b.ok("DELETE", f"identity/identityProviders/{provider['id']}", 204)
        browser.delete_all_cookies()
        again = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(again["auth_uri"])
        wait_for_text(browser, "passkey")  # deployment 2's own sign-in page
        assert browser.current_url.startswith(b_url), browser.current_url
        assert graph_b.post("invitations", json={"invitedUserEmailAddress": email, "inviteRedirectUrl": callback.url}).status_code == 400
    finally:
        callback.close()
        remove_authenticator(browser, aid)
        graph.ok("DELETE", f"applications/{registration['id']}", 204)
        if guest:
            graph_b.ok("DELETE", f"users/{guest}", 204)
