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

from browser import Callback, click, register_passkey, remove_authenticator
from support import PASSWORD, Sdk, Tenant, unique

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
HELPDESK_ADMINISTRATOR = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
SECURITY_ADMINISTRATOR = "194ae4cb-b126-40b2-bd5b-6091b380977d"
GOVERNANCE = "beta/directory/tenantGovernance"
GOVERNED_MONITORS = "beta/admin/configurationManagement/governedConfigurationMonitors"




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


class Governance:
    """What a governance test does in Chromium and over plain HTTP: passkeys registered, MSAL sign-ins (the passkey
    autofills), public client apps with admin consent, Graph calls with a user's token."""

    def __init__(self, tessera, origin: str, browser):
        self.http = tessera.session()
        self.origin = origin
        self.browser = browser
        self.callback = Callback()
        self.visits = 0
        self.aids: list[str] = []

    def sign_in(self, tenant_id: str, client_id: str, scopes: list[str], hint: str) -> str:
        """MSAL's authorization code flow in Chromium, the access token."""
        app = msal.PublicClientApplication(client_id, authority=f"{self.origin}/{tenant_id}", instance_discovery=False, http_client=self.http)
        flow = app.initiate_auth_code_flow(scopes=scopes, redirect_uri=self.callback.url, login_hint=hint)
        self.browser.get(flow["auth_uri"])
        self.visits += 1
        result = app.acquire_token_by_auth_code_flow(flow, self.callback.wait(self.visits))
        assert "access_token" in result, result
        return result["access_token"]

    def call(self, method: str, path: str, token: str, status: int, **kw) -> dict:
        response = self.http.request(method, f"{self.origin}/{path}", headers={"Authorization": f"Bearer {token}"}, **kw)
        assert response.status_code == status, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    def public_app(self, g, scope: str) -> dict:
        app = g.ok("POST", "applications", status=201, json={"displayName": unique("Governance app"),
                                                             "publicClient": {"redirectUris": [self.callback.url]}})
        sp = g.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        g.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": g.graph_service_principal()["id"], "scope": scope})
        return app

    def register(self, tenant_id: str, user_id: str, admin_token: str) -> None:
        """A passkey for the user, in a fresh browser session of its tenant (the last one registered is the one in use)."""
        for aid in self.aids:
            remove_authenticator(self.browser, aid)
        self.aids.clear()
        self.aids.append(register_passkey(self.browser, f"{self.origin}/{tenant_id}/login", user_id, admin_token))

    def administrators(self, graph, graph_b, tenant_a, tenant_b) -> tuple[dict, dict, dict]:
        """Alice, A's Global Administrator in A's role-assignable tenant admins group; Bea, B's Global Administrator; the group."""
        alice = graph.create_user(tenant_a.domain, unique("alice"))
        bea = graph_b.create_user(tenant_b.domain, unique("bea"))
        for g, user in ((graph, alice), (graph_b, bea)):
            g.ok("POST", "roleManagement/directory/roleAssignments", status=201, json={
                "principalId": user["id"], "roleDefinitionId": GLOBAL_ADMINISTRATOR, "directoryScopeId": "/"})
        group = graph.create_group(unique("tenant-admins"), isAssignableToRole=True)
        graph.ok("POST", f"groups/{group['id']}/members/$ref", status=204,
                 json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{alice['id']}"})
        return alice, bea, group

    def govern(self, governing_token: str, governed_token: str, governed_tenant: str, group: str, role: tuple[str, str]) -> tuple[dict, dict]:
        """A's template giving `group` `role` (id, name), A's request and B's acceptance: the template and the relationship."""
        template = self.call("POST", f"{GOVERNANCE}/governancePolicyTemplates", governing_token, 201, json={
            "displayName": unique("Governance"), "description": f"{role[1]} in governed tenants",
            "governedTenantCanTerminate": False, "multiTenantApplicationsToProvision": [],
            "delegatedAdministrationRoleAssignments": [{"group": {"id": group}, "roleTemplates": [{"id": role[0], "name": role[1]}]}]})
        bind = f"https://graph.microsoft.com/{GOVERNANCE}/governancePolicyTemplates/{template['id']}"
        request = self.call("POST", f"{GOVERNANCE}/governanceRequests", governing_token, 201, json={
            "governedTenantId": governed_tenant, "governancePolicyTemplate@odata.bind": bind})
        self.call("PATCH", f"{GOVERNANCE}/governanceRequests/{request['id']}", governed_token, 204, json={"status": "accepted"})
        relationship = next(r for r in self.call("GET", f"{GOVERNANCE}/governanceRelationships", governing_token, 200)["value"]
                            if r["governedTenantId"] == governed_tenant and r["status"] == "active")
        return template, relationship

    def close(self):
        self.callback.close()
        for aid in self.aids:
            remove_authenticator(self.browser, aid)


def cleanup(graph, graph_b, users_b: list, users_a: list, group: dict | None) -> None:
    for g, user_id in [(graph_b, u) for u in users_b] + [(graph, u) for u in users_a]:
        if user_id:
            g.ok("DELETE", f"users/{user_id}", status=204)
            g.ok("DELETE", f"directory/deletedItems/{user_id}", status=204)
    if group:
        graph.ok("DELETE", f"groups/{group['id']}", status=204)


def test_governing_administrator_acts_in_the_governed_tenant_until_terminated(
        graph, graph_b, tessera, tenant_a, tenant_b, origin, browser):
    gov = Governance(tessera, origin, browser)
    alice, bea, group = gov.administrators(graph, graph_b, tenant_a, tenant_b)
    app_a = gov.public_app(graph, "TenantGovernance-PolicyTemplate.ReadWrite.All TenantGovernance-Request.ReadWrite.All "
                                  "TenantGovernance-Relationship.ReadWrite.All")
    app_b = gov.public_app(graph_b, "TenantGovernance-Request.ReadWrite.All User.ReadWrite.All RoleManagement.ReadWrite.Directory")
    sdk = template = guest = created = alice_a = None
    try:
        # B's Global Administrator signs in to B (its own passkey), then A's administrator to A (hers).
        gov.register(tenant_b.tenant_id, bea["id"], graph_b.token)
        bea_token = gov.sign_in(tenant_b.tenant_id, app_b["appId"], ["TenantGovernance-Request.ReadWrite.All"], bea["userPrincipalName"])
        gov.register(tenant_a.tenant_id, alice["id"], graph.token)
        alice_a = gov.sign_in(tenant_a.tenant_id, app_a["appId"], ["TenantGovernance-PolicyTemplate.ReadWrite.All",
                                                                 "TenantGovernance-Request.ReadWrite.All",
                                                                 "TenantGovernance-Relationship.ReadWrite.All"], alice["userPrincipalName"])

        # A's template and request; B's Global Administrator accepts.
        template, relationship = gov.govern(alice_a, bea_token, tenant_b.tenant_id, group["id"], (USER_ADMINISTRATOR, "User Administrator"))

        # B invites A's administrator, who redeems at home (signed in already) and signs in to B's application.
        invitation = graph_b.ok("POST", "invitations", status=201, json={
            "invitedUserEmailAddress": alice["userPrincipalName"], "inviteRedirectUrl": gov.callback.url, "sendInvitationMessage": False})
        guest = invitation["invitedUser"]["id"]
        browser.get(invitation["inviteRedeemUrl"].replace("127.0.0.1", "localhost"))
        click(browser, "accept")  # B's consent prompt (no automatic redemption between A and B)
        gov.visits += 1
        gov.callback.wait(gov.visits)
        alice_b = gov.sign_in(tenant_b.tenant_id, app_b["appId"], ["User.ReadWrite.All", "RoleManagement.ReadWrite.Directory"],
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
        gov.call("PATCH", f"{GOVERNANCE}/governanceRelationships/{relationship['id']}", alice_a, 204, json={"status": "terminated"})
        with pytest.raises(APIError) as ended:
            nick = unique("after")
            sdk.run(sdk.client.users.post(User(
                account_enabled=True, display_name=nick, mail_nickname=nick, user_principal_name=f"{nick}@{tenant_b.domain}",
                password_profile=PasswordProfile(password=PASSWORD, force_change_password_next_sign_in=False))))
        assert ended.value.response_status_code == 403 and ended.value.error.code == "Authorization_RequestDenied"
    finally:
        gov.close()
        if sdk:
            sdk.close()
        if template and alice_a:
            gov.call("DELETE", f"{GOVERNANCE}/governancePolicyTemplates/{template['id']}", alice_a, 204)
        cleanup(graph, graph_b, [created, guest, bea["id"]], [alice["id"]], group)


def test_governing_administrator_applies_one_baseline_to_the_governed_tenant(
        graph, graph_b, tessera, tenant_a, tenant_b, origin, browser):
    """A governs B under a template giving A's tenant admins group Security Administrator in B. A's administrator applies
    one baseline to B (Tessera's governedConfigurationMonitors, plain HTTP: Microsoft publishes no such API); B's own
    Graph SDK client lists it among B's configuration monitors, marked as A's, and may not delete it; A reads B's side
    by side; a tenant A does not govern is refused; once A terminates the relationship B's monitor is stopped and B
    may delete it. The monitor's runs and drifts are proved with a moved clock by ConfigurationManagementGovernedTests."""
    from msgraph.generated.models.monitor_status import MonitorStatus

    gov = Governance(tessera, origin, browser)
    alice, bea, group = gov.administrators(graph, graph_b, tenant_a, tenant_b)
    app_a = gov.public_app(graph, "TenantGovernance-PolicyTemplate.ReadWrite.All TenantGovernance-Request.ReadWrite.All "
                                  "TenantGovernance-Relationship.ReadWrite.All ConfigurationMonitoring.ReadWrite.All")
    app_b = gov.public_app(graph_b, "TenantGovernance-Request.ReadWrite.All")
    # B's own automation with ConfigurationMonitoring.ReadWrite.All, as an administrator grants it.
    monitoring, monitoring_sp = graph_b.create_app(unique("tcm-"))
    graph_b.grant(monitoring_sp["id"], "ConfigurationMonitoring.ReadWrite.All")
    sdk_b = Sdk(tessera, Tenant(tenant_b.tenant_id, tenant_b.domain, "", monitoring["appId"], graph_b.add_password(monitoring["id"])))
    template = alice_a = None
    try:
        gov.register(tenant_b.tenant_id, bea["id"], graph_b.token)
        bea_token = gov.sign_in(tenant_b.tenant_id, app_b["appId"], ["TenantGovernance-Request.ReadWrite.All"], bea["userPrincipalName"])
        gov.register(tenant_a.tenant_id, alice["id"], graph.token)
        alice_a = gov.sign_in(tenant_a.tenant_id, app_a["appId"], ["TenantGovernance-PolicyTemplate.ReadWrite.All",
                                                                 "TenantGovernance-Request.ReadWrite.All",
                                                                 "TenantGovernance-Relationship.ReadWrite.All",
                                                                 "ConfigurationMonitoring.ReadWrite.All"], alice["userPrincipalName"])
        template, relationship = gov.govern(alice_a, bea_token, tenant_b.tenant_id, group["id"], (SECURITY_ADMINISTRATOR, "Security Administrator"))

        baseline = {"displayName": "Contoso baseline", "resources": [
            {"displayName": "Passkeys", "resourceType": "microsoft.entra.authenticationMethodPolicyFido2",
             "properties": {"Id": "Fido2", "IsSelfServiceRegistrationAllowed": True}}]}
        elsewhere = gov.call("POST", GOVERNED_MONITORS, alice_a, 403, json={
            "displayName": "Not governed", "baseline": baseline, "governedTenantIds": ["00000000-0000-4000-8000-00000000abcd"]})
        assert elsewhere["error"]["code"] == "Authorization_RequestDenied", elsewhere
        applied = gov.call("POST", GOVERNED_MONITORS, alice_a, 201, json={
            "displayName": unique("Contoso baseline"), "baseline": baseline, "governedTenantIds": [tenant_b.tenant_id]})
        [entry] = applied["governedTenants"]
        assert entry["tenantId"] == tenant_b.tenant_id and entry["governanceRelationshipId"] == relationship["id"], applied
        assert entry["relationshipStatus"] == "active" and entry["monitorStatus"] == "active" and entry["activeDriftsCount"] == 0, applied

        # B's Graph SDK: an ordinary configurationMonitor of B, marked as managed by A, which B may not delete.
        cm = sdk_b.client.admin.configuration_management
        mine = [m for m in sdk_b.run(cm.configuration_monitors.get()).value if m.id == entry["configurationMonitorId"]]
        assert len(mine) == 1 and mine[0].status == MonitorStatus.Active and mine[0].tenant_id == tenant_b.tenant_id, mine
        assert str(mine[0].additional_data["managedBy"]["tenantId"]) == tenant_a.tenant_id, mine[0].additional_data
        with pytest.raises(APIError) as refused:
            sdk_b.run(cm.configuration_monitors.by_configuration_monitor_id(mine[0].id).delete())
        assert refused.value.response_status_code == 403 and "managed by the governing tenant" in refused.value.error.message
        assert gov.call("GET", f"{GOVERNED_MONITORS}/{applied['id']}/configurationDrifts", alice_a, 200)["value"] == []

        # A ends the relationship: B's monitor stops and is B's to delete; A reads nothing more of B.
        gov.call("PATCH", f"{GOVERNANCE}/governanceRelationships/{relationship['id']}", alice_a, 204, json={"status": "terminated"})
        stopped = sdk_b.run(cm.configuration_monitors.by_configuration_monitor_id(mine[0].id).get())
        assert stopped.status == MonitorStatus.Inactive and "ended" in (stopped.inactivation_reason or ""), stopped
        [after] = gov.call("GET", f"{GOVERNED_MONITORS}/{applied['id']}", alice_a, 200)["governedTenants"]
        assert after["relationshipStatus"] == "terminated" and after["monitorStatus"] is None, after
        sdk_b.run(cm.configuration_monitors.by_configuration_monitor_id(mine[0].id).delete())
        gov.call("DELETE", f"{GOVERNED_MONITORS}/{applied['id']}", alice_a, 204)
    finally:
        gov.close()
        sdk_b.close()
        if template and alice_a:
            gov.call("DELETE", f"{GOVERNANCE}/governancePolicyTemplates/{template['id']}", alice_a, 204)
        graph_b.ok("DELETE", f"applications/{monitoring['id']}", status=204)
        cleanup(graph, graph_b, [bea["id"]], [alice["id"]], group)
