"""Tenant restrictions v2 between the two tenants of the interop deployment (A: Contoso restricts, B: Fabrikam is where
the external account lives):

- the `tenantRestrictions` setting of /policies/crossTenantAccessPolicy/default and partners/{id}, driven by the real
  Microsoft Graph Python SDK (its crossTenantAccessPolicyTenantRestrictions and devicesFilter models);
- enforcement: once on A's network, Chromium sends `sec-Restrict-Tenant-Access-Policy: <A>:<A's policy id>` on every
  request (as A's proxy would; the policy id read from the default's `id`, as Microsoft says to), and MSAL's HTTP client
  sends it to the token endpoint. Bob of B, signed in with a passkey, is refused B's application with AADSTS5000211
  while A's default blocks external accounts, signed in once A's partner configuration for B allows him, and his
  refresh refused once it blocks the application again.

Every change is undone at the end: the two tenants are shared with the other modules."""
from __future__ import annotations

import msal
import pytest
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.cross_tenant_access_policy_configuration_default import CrossTenantAccessPolicyConfigurationDefault
from msgraph.generated.models.cross_tenant_access_policy_configuration_partner import CrossTenantAccessPolicyConfigurationPartner
from msgraph.generated.models.cross_tenant_access_policy_target import CrossTenantAccessPolicyTarget
from msgraph.generated.models.cross_tenant_access_policy_target_configuration import CrossTenantAccessPolicyTargetConfiguration
from msgraph.generated.models.cross_tenant_access_policy_target_configuration_access_type import (
    CrossTenantAccessPolicyTargetConfigurationAccessType as AccessType)
from msgraph.generated.models.cross_tenant_access_policy_target_type import CrossTenantAccessPolicyTargetType as TargetType
from msgraph.generated.models.cross_tenant_access_policy_tenant_restrictions import CrossTenantAccessPolicyTenantRestrictions
from msgraph.generated.models.devices_filter import DevicesFilter

from browser import Callback, register_passkey, remove_authenticator, wait_for_text
from support import unique

HEADER = "sec-Restrict-Tenant-Access-Policy"


def restrictions(users: AccessType, apps: AccessType, app_target: str = "AllApplications") -> CrossTenantAccessPolicyTenantRestrictions:
    return CrossTenantAccessPolicyTenantRestrictions(
        users_and_groups=CrossTenantAccessPolicyTargetConfiguration(
            access_type=users, targets=[CrossTenantAccessPolicyTarget(target="AllUsers", target_type=TargetType.User)]),
        applications=CrossTenantAccessPolicyTargetConfiguration(
            access_type=apps, targets=[CrossTenantAccessPolicyTarget(target=app_target, target_type=TargetType.Application)]))


def test_tenant_restrictions_settings_with_the_graph_sdk(sdk, tenant_b):
    policies = sdk.client.policies.cross_tenant_access_policy
    default = sdk.run(policies.default.get())
    # Entra's default blocks every external account from every application; its id is the header's policy id.
    assert default.tenant_restrictions.users_and_groups.access_type == AccessType.Blocked
    assert default.tenant_restrictions.applications.targets[0].target == "AllApplications"
    assert default.tenant_restrictions.devices is None and len(default.id) == 36
    try:
        sdk.run(policies.default.patch(CrossTenantAccessPolicyConfigurationDefault(
            tenant_restrictions=restrictions(AccessType.Allowed, AccessType.Allowed))))
        assert sdk.run(policies.default.get()).tenant_restrictions.users_and_groups.access_type == AccessType.Allowed
        # Blocking every user while allowing every application is refused, as Entra refuses it.
        with pytest.raises(APIError) as refused:
            sdk.run(policies.default.patch(CrossTenantAccessPolicyConfigurationDefault(
                tenant_restrictions=restrictions(AccessType.Blocked, AccessType.Allowed))))
        assert refused.value.response_status_code == 400 and refused.value.error.code == "Request_BadRequest"

        # Microsoft's partner example (Office365 allowed), then a device filter.
        created = sdk.run(policies.partners.post(CrossTenantAccessPolicyConfigurationPartner(
            tenant_id=tenant_b.tenant_id, tenant_restrictions=restrictions(AccessType.Allowed, AccessType.Allowed, "Office365"))))
        assert created.tenant_restrictions.applications.targets[0].target == "Office365"
        item = policies.partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id)
        with_devices = restrictions(AccessType.Allowed, AccessType.Allowed)
        with_devices.devices = DevicesFilter(mode=AccessType.Allowed, rule='device.trustType -eq "ServerAD"')
        sdk.run(item.patch(CrossTenantAccessPolicyConfigurationPartner(tenant_restrictions=with_devices)))
        read = sdk.run(item.get()).tenant_restrictions
        assert read.devices.mode == AccessType.Allowed and read.devices.rule == 'device.trustType -eq "ServerAD"'
        assert read.applications.targets[0].target == "AllApplications"
    finally:
        try:
            sdk.run(policies.partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id).delete())
        except APIError:
            pass  # not created
        sdk.run(policies.default.reset_to_system_default.post())
    assert sdk.run(policies.default.get()).tenant_restrictions.users_and_groups.access_type == AccessType.Blocked


def test_a_restricted_network_signs_in_only_the_external_accounts_the_policy_allows(
        sdk, graph, graph_b, tessera, tenant_a, tenant_b, origin, browser):
    policy_id = sdk.run(sdk.client.policies.cross_tenant_access_policy.default.get()).id
    header = f"{tenant_a.tenant_id}:{policy_id}"
    bob = graph_b.create_user(tenant_b.domain, unique("bob"))
    aid = register_passkey(browser, f"{origin}/{tenant_b.tenant_id}/login", bob["id"], graph_b.token)
    callback = Callback()
    partner = None
    try:
        app = graph_b.ok("POST", "applications", status=201, json={"displayName": unique("TR app"), "publicClient": {"redirectUris": [callback.url]}})
        sp = graph_b.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        graph_b.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph_b.graph_service_principal()["id"], "scope": "User.Read"})
        http = tessera.session()
        msal_app = msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_b.tenant_id}", instance_discovery=False,
                                                http_client=http)
        # Bob signs in with his passkey off A's network (Chromium refuses a sec- header on the sign-in page's own fetches,
        # which a proxy adds without the page knowing).
        elsewhere = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=bob["userPrincipalName"])
        browser.get(elsewhere["auth_uri"])
        callback.wait(1)

        # On A's network its proxy adds A's header to every request of the browser and of MSAL.
        browser.execute_cdp_cmd("Network.enable", {})
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {HEADER: header}})
        http.headers[HEADER] = header
        refused = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=bob["userPrincipalName"])
        browser.get(refused["auth_uri"])  # A's default refuses his B account
        wait_for_text(browser, "AADSTS5000211")
        failures = graph_b.ok("GET", "auditLogs/signIns", params={"$filter": "status/errorCode eq 5000211"})["value"]
        assert any(entry["userId"] == bob["id"] for entry in failures), failures

        partner = graph.ok("POST", "policies/crossTenantAccessPolicy/partners", status=201, json={
            "tenantId": tenant_b.tenant_id, "tenantRestrictions": {
                "usersAndGroups": {"accessType": "allowed", "targets": [{"target": bob["id"], "targetType": "user"}]},
                "applications": {"accessType": "allowed", "targets": [{"target": app["appId"], "targetType": "application"}]}}})
        accepted = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=bob["userPrincipalName"])
        browser.get(accepted["auth_uri"])
        result = msal_app.acquire_token_by_auth_code_flow(accepted, callback.wait(2))
        assert "access_token" in result, result

        # A blocks the application again: the next refresh through A's network is refused.
        graph.ok("PATCH", f"policies/crossTenantAccessPolicy/partners/{tenant_b.tenant_id}", status=204, json={"tenantRestrictions": {
            "usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
            "applications": {"accessType": "blocked", "targets": [{"target": app["appId"], "targetType": "application"}]}}})
        account = msal_app.get_accounts()[0]
        renewed = msal_app.acquire_token_silent_with_error(["User.Read"], account=account, force_refresh=True)
        assert renewed and renewed.get("error") == "invalid_grant" and 5000211 in renewed.get("error_codes", []), renewed

        # A header that is not Microsoft's format is refused, not ignored.
        bad = tessera.session().post(f"{origin}/{tenant_b.tenant_id}/oauth2/v2.0/token", headers={HEADER: "contoso.com"},
                                     data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": app["appId"]})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_request" and bad.json()["error_codes"] == [90023], bad.text
    finally:
        browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {}})
        callback.close()
        remove_authenticator(browser, aid)
        if partner:
            graph.ok("DELETE", f"policies/crossTenantAccessPolicy/partners/{tenant_b.tenant_id}", status=204)
        graph_b.ok("DELETE", f"users/{bob['id']}", status=204)
        graph_b.ok("DELETE", f"directory/deletedItems/{bob['id']}", status=204)
