"""Tenant governance between the two tenants of the interop deployment: A (Contoso) governs B (Fabrikam) under a
policy template that gives A's role-assignable "tenant admins" group User Administrator in B.

Everyone signs in with MSAL and a passkey in headless Chromium: B's Global Administrator accepts A's request; A's
administrator (a Global Administrator at home and a member of the group) is invited to B, redeems at home and signs
in to B's application, then drives B with the Microsoft Graph Python SDK: creating a user works (User Administrator),
assigning a directory role does not, and once A terminates the relationship the same token is refused.

The governance resources (beta tenantGovernance) go over plain HTTP: msgraph-sdk's v1.0 package has none of them."""
from __future__ import annotations

import asyncio
import ssl

import jwt
import msal
import pytest
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User

from browser import REGISTER, Callback, add_authenticator, click, remove_authenticator
from support import PASSWORD, unique

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HELPDESK_ADMINISTRATOR = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
GOVERNANCE = "beta/directory/tenantGovernance"




class DelegatedSdk:
    """msgraph-sdk's GraphServiceClient with a user's access token (MSAL's), on one event loop."""

    def __init__(self, tessera, origin: str, token: str):
        import httpx
        from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
        from msgraph import GraphRequestAdapter, GraphServiceClient

        class Static(AccessTokenProvider):
            async def get_authorization_token(self, uri, additional_authentication_context=None):
                return token

            def get_allowed_hosts_validator(self):
                return AllowedHostsValidator(["localhost"])

        self.runner = asyncio.Runner()
        self.http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=tessera.ca), trust_env=False, timeout=60)
        adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(Static()), client=self.http)
        adapter.base_url = f"{origin}/v1.0"
        self.client = GraphServiceClient(request_adapter=adapter)

    def run(self, coro):
        return self.runner.run(coro)

    def close(self):
        self.run(self.http.aclose())
        self.runner.close()


def test_governing_administrator_acts_in_the_governed_tenant_until_terminated(
        graph, graph_b, tessera, tenant_a, tenant_b, origin, browser):
    http = tessera.session()
    callback = Callback()
    visits = 0

    def sign_in(tenant_id: str, client_id: str, scopes: list[str], hint: str) -> str:
        """MSAL's authorization code flow in Chromium (the passkey autofills), the access token."""
        nonlocal visits
        app = msal.PublicClientApplication(client_id, authority=f"{origin}/{tenant_id}", instance_discovery=False, http_client=http)
        flow = app.initiate_auth_code_flow(scopes=scopes, redirect_uri=callback.url, login_hint=hint)
        browser.get(flow["auth_uri"])
        visits += 1
        result = app.acquire_token_by_auth_code_flow(flow, callback.wait(visits))
        assert "access_token" in result, result
        return result["access_token"]

    def call(method: str, path: str, token: str, status: int, **kw) -> dict:
        response = http.request(method, f"{origin}/{path}", headers={"Authorization": f"Bearer {token}"}, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def public_app(g, scope: str) -> dict:
        app = g.ok("POST", "applications", status=201, json={"displayName": unique("Governance app"),
                                                             "publicClient": {"redirectUris": [callback.url]}})
        sp = g.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        g.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": g.graph_service_principal()["id"], "scope": scope})
        return app

    def register(tenant_id: str, user_id: str, admin_token: str) -> str:
        browser.get(f"{origin}/{tenant_id}/login")
        aid = add_authenticator(browser)
        registered = browser.execute_async_script(REGISTER, user_id, admin_token)
        assert registered.get("status") == 201, registered
        return aid

    alice = graph.create_user(tenant_a.domain, unique("alice"))
    bea = graph_b.create_user(tenant_b.domain, unique("bea"))
    for g, user in ((graph, alice), (graph_b, bea)):
        g.ok("POST", "roleManagement/directory/roleAssignments", status=201, json={
            "principalId": user["id"], "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"})
    group = graph.create_group(unique("tenant-admins"), isAssignableToRole=True)
    graph.ok("POST", f"groups/{group['id']}/members/$ref", status=204,
             json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{alice['id']}"})
    app_a = public_app(graph, "TenantGovernance-PolicyTemplate.ReadWrite.All TenantGovernance-Request.ReadWrite.All "
                              "TenantGovernance-Relationship.ReadWrite.All")
    app_b = public_app(graph_b, "TenantGovernance-Request.ReadWrite.All User.ReadWrite.All RoleManagement.ReadWrite.Directory")
    sdk = template = guest = created = alice_a = None
    aids = []
    try:
        # B's Global Administrator signs in to B (its own passkey), then A's administrator to A (hers).
        browser.delete_all_cookies()
        aids.append(register(tenant_b.tenant_id, bea["id"], graph_b.token))
        bea_token = sign_in(tenant_b.tenant_id, app_b["appId"], ["TenantGovernance-Request.ReadWrite.All"], bea["userPrincipalName"])
        remove_authenticator(browser, aids.pop())
        browser.delete_all_cookies()
        aids.append(register(tenant_a.tenant_id, alice["id"], graph.token))
        alice_a = sign_in(tenant_a.tenant_id, app_a["appId"], ["TenantGovernance-PolicyTemplate.ReadWrite.All",
                                                                 "TenantGovernance-Request.ReadWrite.All",
                                                                 "TenantGovernance-Relationship.ReadWrite.All"], alice["userPrincipalName"])

        # A's template and request; B's Global Administrator accepts.
        template = call("POST", f"{GOVERNANCE}/governancePolicyTemplates", alice_a, 201, json={
            "displayName": unique("Manage users"), "description": "User Administrator in governed tenants",
            "governedTenantCanTerminate": False, "multiTenantApplicationsToProvision": [],
            "delegatedAdministrationRoleAssignments": [
                {"group": {"id": group["id"]}, "roleTemplates": [{"id": USER_ADMINISTRATOR, "name": "User Administrator"}]}]})
        bind = f"https://graph.microsoft.com/{GOVERNANCE}/governancePolicyTemplates/{template['id']}"
        request = call("POST", f"{GOVERNANCE}/governanceRequests", alice_a, 201, json={
            "governedTenantId": tenant_b.tenant_id, "governancePolicyTemplate@odata.bind": bind})
        call("PATCH", f"{GOVERNANCE}/governanceRequests/{request['id']}", bea_token, 204, json={"status": "accepted"})
        relationship = next(r for r in call("GET", f"{GOVERNANCE}/governanceRelationships", alice_a, 200)["value"]
                            if r["governedTenantId"] == tenant_b.tenant_id and r["status"] == "active")

        # B invites A's administrator, who redeems at home (signed in already) and signs in to B's application.
        invitation = graph_b.ok("POST", "invitations", status=201, json={
            "invitedUserEmailAddress": alice["userPrincipalName"], "inviteRedirectUrl": callback.url, "sendInvitationMessage": False})
        guest = invitation["invitedUser"]["id"]
        browser.get(invitation["inviteRedeemUrl"].replace("127.0.0.1", "localhost"))
        click(browser, "accept")  # B's consent prompt (no automatic redemption between A and B)
        visits += 1
        callback.wait(visits)
        alice_b = sign_in(tenant_b.tenant_id, app_b["appId"], ["User.ReadWrite.All", "RoleManagement.ReadWrite.Directory"],
                          alice["userPrincipalName"])
        claims = jwt.decode(alice_b, options={"verify_signature": False})
        assert claims["tid"] == tenant_b.tenant_id and claims["idp"] == f"{origin}/{tenant_a.tenant_id}/v2.0", claims
        assert claims["wids"] == [USER_ADMINISTRATOR], claims  # not A's Global Administrator: the template's role only

        # The Graph SDK with that token: User Administrator creates a user in B, and assigns no role.
        sdk = DelegatedSdk(tessera, origin, alice_b)
        nick = unique("delegated")
        made = sdk.run(sdk.client.users.post(User(
            account_enabled=True, display_name=nick, mail_nickname=nick, user_principal_name=f"{nick}@{tenant_b.domain}",
            password_profile=PasswordProfile(password=PASSWORD, force_change_password_next_sign_in=False))))
        created = made.id
        audits = graph_b.ok("GET", "auditLogs/directoryAudits")["value"]
        added = next(a for a in audits if a["activityDisplayName"] == "Add user" and a["targetResources"][0]["id"] == created)
        by = added["initiatedBy"]["user"]
        assert by["id"] == alice["id"] and by["homeTenantId"] == tenant_a.tenant_id and by["homeTenantName"] == "Contoso", added
        with pytest.raises(APIError) as refused:
            sdk.run(sdk.client.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
                principal_id=created, role_definition_id=HELPDESK_ADMINISTRATOR, directory_scope_id="/")))
        assert refused.value.response_status_code == 403 and refused.value.error.code == "Authorization_RequestDenied"

        # A ends the relationship: the token B issued is refused at its next request.
        call("PATCH", f"{GOVERNANCE}/governanceRelationships/{relationship['id']}", alice_a, 204, json={"status": "terminated"})
        with pytest.raises(APIError) as ended:
            nick = unique("after")
            sdk.run(sdk.client.users.post(User(
                account_enabled=True, display_name=nick, mail_nickname=nick, user_principal_name=f"{nick}@{tenant_b.domain}",
                password_profile=PasswordProfile(password=PASSWORD, force_change_password_next_sign_in=False))))
        assert ended.value.response_status_code == 403 and ended.value.error.code == "Authorization_RequestDenied"
    finally:
        callback.close()
        for aid in aids:
            remove_authenticator(browser, aid)
        if sdk:
            sdk.close()
        if template and alice_a:
            call("DELETE", f"{GOVERNANCE}/governancePolicyTemplates/{template['id']}", alice_a, 204)
        for g, user_id in ((graph_b, created), (graph_b, guest), (graph_b, bea["id"]), (graph, alice["id"])):
            if user_id:
                g.ok("DELETE", f"users/{user_id}", status=204)
                g.ok("DELETE", f"directory/deletedItems/{user_id}", status=204)
        graph.ok("DELETE", f"groups/{group['id']}", status=204)
