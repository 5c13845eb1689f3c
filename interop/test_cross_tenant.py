"""Cross-tenant governance between the two tenants of the interop deployment (A: Contoso, B: Fabrikam), driven by the
real Microsoft Graph Python SDK and, for an external user's sign-in, by MSAL with a passkey in headless Chromium:

- /policies/crossTenantAccessPolicy (default, resetToSystemDefault, partners, identitySynchronization),
- /tenantRelationships/multiTenantOrganization (B joins A's organization; isInMultiTenantOrganization both ways),
- /invitations and B2B collaboration: A's user redeems B's invitation by signing in at home and accepting B's consent
  prompt, then signs in to B's application; B's token names A as `idp`. Conditional Access in B requiring MFA refuses
  the guest until B trusts A's MFA (inboundTrust.isMfaAccepted).
- B2B direct connect: with both tenants' direct connect settings, A's user signs in to B's application with A's
  passkey and gets B's token naming her home object, with no user created in B.

Every change is undone at the end: the two tenants are shared with the other modules."""
from __future__ import annotations


import jwt
import msal
import pytest
from msgraph.generated.models.cross_tenant_access_policy_b2_b_setting import CrossTenantAccessPolicyB2BSetting
from msgraph.generated.models.cross_tenant_access_policy_configuration_default import CrossTenantAccessPolicyConfigurationDefault
from msgraph.generated.models.cross_tenant_access_policy_configuration_partner import CrossTenantAccessPolicyConfigurationPartner
from msgraph.generated.models.cross_tenant_access_policy_inbound_trust import CrossTenantAccessPolicyInboundTrust
from msgraph.generated.models.cross_tenant_access_policy_target import CrossTenantAccessPolicyTarget
from msgraph.generated.models.cross_tenant_access_policy_target_configuration import CrossTenantAccessPolicyTargetConfiguration
from msgraph.generated.models.cross_tenant_access_policy_target_configuration_access_type import (
    CrossTenantAccessPolicyTargetConfigurationAccessType as AccessType)
from msgraph.generated.models.cross_tenant_access_policy_target_type import CrossTenantAccessPolicyTargetType as TargetType
from msgraph.generated.models.cross_tenant_identity_sync_policy_partner import CrossTenantIdentitySyncPolicyPartner
from msgraph.generated.models.cross_tenant_user_sync_inbound import CrossTenantUserSyncInbound
from msgraph.generated.models.invitation import Invitation
from msgraph.generated.models.multi_tenant_organization_join_request_record import MultiTenantOrganizationJoinRequestRecord
from msgraph.generated.models.multi_tenant_organization_member import MultiTenantOrganizationMember
from msgraph.generated.models.multi_tenant_organization_member_state import MultiTenantOrganizationMemberState
from kiota_abstractions.api_error import APIError

from browser import Callback, click, register_passkey, remove_authenticator, wait_for_text
from support import Sdk, unique


@pytest.fixture(scope="module")
def sdk_b(tessera, tenant_b):
    client = Sdk(tessera, tenant_b)
    yield client
    client.close()




def test_cross_tenant_access_policy_with_the_graph_sdk(sdk, graph, tenant_b):
    policies = sdk.client.policies.cross_tenant_access_policy
    policy = sdk.run(policies.get())
    assert policy.display_name == "CrossTenantAccessPolicy"
    default = sdk.run(policies.default.get())
    assert default.is_service_default is True and default.inbound_trust.is_mfa_accepted is False
    assert default.b2b_collaboration_inbound.users_and_groups.access_type == AccessType.Allowed
    assert default.b2b_direct_connect_outbound.applications.access_type == AccessType.Blocked
    sdk.run(policies.default.patch(CrossTenantAccessPolicyConfigurationDefault(inbound_trust=CrossTenantAccessPolicyInboundTrust(
        is_mfa_accepted=True, is_compliant_device_accepted=False, is_hybrid_azure_a_d_joined_device_accepted=False))))
    patched = sdk.run(policies.default.get())
    assert patched.is_service_default is False and patched.inbound_trust.is_mfa_accepted is True
    sdk.run(policies.default.reset_to_system_default.post())
    assert sdk.run(policies.default.get()).is_service_default is True

    # Microsoft's create example, for tenant B.
    partner = CrossTenantAccessPolicyConfigurationPartner(
        tenant_id=tenant_b.tenant_id,
        b2b_direct_connect_outbound=CrossTenantAccessPolicyB2BSetting(users_and_groups=CrossTenantAccessPolicyTargetConfiguration(
            access_type=AccessType.Blocked,
            targets=[CrossTenantAccessPolicyTarget(target="6f546279-4da5-4b53-a095-09ea0cef9971", target_type=TargetType.Group)])),
        b2b_direct_connect_inbound=CrossTenantAccessPolicyB2BSetting(applications=CrossTenantAccessPolicyTargetConfiguration(
            access_type=AccessType.Allowed, targets=[CrossTenantAccessPolicyTarget(target="Office365", target_type=TargetType.Application)])))
    created = sdk.run(policies.partners.post(partner))
    try:
        assert created.tenant_id == tenant_b.tenant_id and created.inbound_trust is None and created.b2b_collaboration_inbound is None
        assert created.b2b_direct_connect_outbound.users_and_groups.targets[0].target_type == TargetType.Group
        with pytest.raises(APIError) as duplicate:
            sdk.run(policies.partners.post(CrossTenantAccessPolicyConfigurationPartner(tenant_id=tenant_b.tenant_id)))
        assert duplicate.value.response_status_code == 409
        item = policies.partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id)
        sdk.run(item.patch(CrossTenantAccessPolicyConfigurationPartner(inbound_trust=CrossTenantAccessPolicyInboundTrust(
            is_mfa_accepted=True, is_compliant_device_accepted=False, is_hybrid_azure_a_d_joined_device_accepted=False))))
        assert sdk.run(item.get()).inbound_trust.is_mfa_accepted is True
        listed = sdk.run(policies.partners.get()).value
        assert [p.tenant_id for p in listed] == [tenant_b.tenant_id]
        # Microsoft's identitySynchronization example.
        sdk.run(item.identity_synchronization.put(CrossTenantIdentitySyncPolicyPartner(
            display_name="Fabrikam", user_sync_inbound=CrossTenantUserSyncInbound(is_sync_allowed=True))))
        sync = sdk.run(item.identity_synchronization.get())
        assert sync.display_name == "Fabrikam" and sync.user_sync_inbound.is_sync_allowed is True and sync.tenant_id == tenant_b.tenant_id
        # This SDK has no PATCH for it (Microsoft documents one): sent as Microsoft's update example writes it.
        graph.ok("PATCH", f"policies/crossTenantAccessPolicy/partners/{tenant_b.tenant_id}/identitySynchronization", status=204,
                 json={"userSyncInbound": {"isSyncAllowed": False}})
        assert sdk.run(item.identity_synchronization.get()).user_sync_inbound.is_sync_allowed is False
        sdk.run(item.identity_synchronization.delete())
        with pytest.raises(APIError) as gone:
            sdk.run(item.identity_synchronization.get())
        assert gone.value.response_status_code == 404
    finally:
        sdk.run(policies.partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id).delete())
    assert sdk.run(policies.partners.get()).value == []


def test_multitenant_organization_with_the_graph_sdk(sdk, sdk_b, graph, tenant_a, tenant_b):
    organization = sdk.client.tenant_relationships.multi_tenant_organization
    # The SDK has no PUT for the organization (Microsoft's create is a PUT): sent as Microsoft's example writes it.
    created = graph.ok("PUT", "tenantRelationships/multiTenantOrganization", status=201, json={
        "displayName": "Contoso organization", "description": "Multitenant organization between Contoso and Fabrikam"})
    assert created["state"] == "active"
    try:
        read = sdk.run(organization.get())
        assert read.display_name == "Contoso organization" and read.id == created["id"]
        added = sdk.run(organization.tenants.post(MultiTenantOrganizationMember(tenant_id=tenant_b.tenant_id, display_name="Fabrikam")))
        assert added.state == MultiTenantOrganizationMemberState.Pending and str(added.added_by_tenant_id) == tenant_a.tenant_id  # Edm.Guid here
        join = sdk_b.client.tenant_relationships.multi_tenant_organization.join_request
        sdk_b.run(join.patch(MultiTenantOrganizationJoinRequestRecord(added_by_tenant_id=tenant_a.tenant_id)))
        record = sdk_b.run(join.get())
        assert record.member_state == MultiTenantOrganizationMemberState.Active and record.added_by_tenant_id == tenant_a.tenant_id
        member = sdk.run(organization.tenants.by_multi_tenant_organization_member_id(tenant_b.tenant_id).get())
        assert member.state == MultiTenantOrganizationMemberState.Active and member.joined_date_time is not None
        assert sdk_b.run(sdk_b.client.tenant_relationships.multi_tenant_organization.get()).display_name == "Contoso organization"
        partners = sdk.client.policies.cross_tenant_access_policy.partners
        assert sdk.run(partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id).get()).is_in_multi_tenant_organization
        assert sdk_b.run(sdk_b.client.policies.cross_tenant_access_policy.partners
                         .by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_a.tenant_id).get()).is_in_multi_tenant_organization
        # B is a member, not an owner.
        with pytest.raises(APIError) as refused:
            sdk_b.run(sdk_b.client.tenant_relationships.multi_tenant_organization.tenants.post(
                MultiTenantOrganizationMember(tenant_id=tenant_a.tenant_id, display_name="Contoso")))
        assert refused.value.response_status_code == 403
        sdk.run(organization.tenants.by_multi_tenant_organization_member_id(tenant_b.tenant_id).delete())
        assert sdk_b.run(sdk_b.client.tenant_relationships.multi_tenant_organization.get()).state.value == "inactive"
        assert not sdk.run(partners.by_cross_tenant_access_policy_configuration_partner_tenant_id(tenant_b.tenant_id).get()).is_in_multi_tenant_organization
    finally:
        try:
            sdk.run(organization.tenants.by_multi_tenant_organization_member_id(tenant_b.tenant_id).delete())
        except APIError:
            pass  # removed above
        sdk.run(organization.tenants.by_multi_tenant_organization_member_id(tenant_a.tenant_id).delete())  # the organization ends
        for client, partner in ((sdk, tenant_b), (sdk_b, tenant_a)):
            try:
                client.run(client.client.policies.cross_tenant_access_policy.partners
                           .by_cross_tenant_access_policy_configuration_partner_tenant_id(partner.tenant_id).delete())
            except APIError:
                pass
    assert sdk.run(organization.get()).state.value == "inactive"


def test_external_user_signs_in_with_msal_refused_then_accepted_by_inbound_trust(
        graph, graph_b, sdk_b, tessera, tenant_a, tenant_b, origin, browser):
    """Alice (tenant A, a passkey in Chromium) is invited by B, redeems at home, then signs in to B's app with MSAL.
    B's Conditional Access requires MFA of guests: refused while B does not trust A's MFA, accepted once it does."""
    alice = graph.create_user(tenant_a.domain, unique("alice"))
    email = alice["userPrincipalName"]
    aid = register_passkey(browser, f"{origin}/{tenant_a.tenant_id}/login", alice["id"], graph.token)
    callback = Callback()
    policy = partner_made = guest = None
    try:
        # B invites Alice: no mail, the redeem URL is in the answer.
        invitation = sdk_b.run(sdk_b.client.invitations.post(Invitation(
            invited_user_email_address=email, invite_redirect_url=callback.url, send_invitation_message=False)))
        guest = invitation.invited_user.id
        assert invitation.status == "PendingAcceptance" and invitation.invite_redeem_url.startswith(f"{tessera.base_url}/{tenant_b.tenant_id}/b2b/redeem?")
        browser.get(invitation.invite_redeem_url.replace("127.0.0.1", "localhost"))  # to A's sign-in page; autofill signs Alice in
        wait_for_text(browser, "Review permissions")  # B's consent prompt: neither tenant suppresses it
        assert graph_b.ok("GET", f"users/{guest}", params={"$select": "externalUserState"})["externalUserState"] == "PendingAcceptance"
        click(browser, "accept")
        assert callback.wait(1) == {}  # B's redirect after redemption
        state = graph_b.ok("GET", f"users/{guest}", params={"$select": "externalUserState,userType,creationType"})
        assert state["externalUserState"] == "Accepted" and state["userType"] == "Guest" and state["creationType"] == "Invitation"

        # B's application, with User.Read granted for everyone, and a policy requiring MFA of B2B guests.
        app = graph_b.ok("POST", "applications", status=201, json={"displayName": unique("B2B app"), "publicClient": {"redirectUris": [callback.url]}})
        sp = graph_b.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        graph_b.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph_b.graph_service_principal()["id"], "scope": "User.Read"})
        policy = graph_b.ok("POST", "identity/conditionalAccess/policies", status=201, json={
            "displayName": unique("Guests need MFA"), "state": "enabled",
            "conditions": {"users": {"includeGuestsOrExternalUsers": {
                "guestOrExternalUserTypes": "b2bCollaborationGuest",
                "externalTenants": {"@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants", "membershipKind": "all"}}},
                "applications": {"includeApplications": [app["appId"]]}},
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
        msal_app = msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_b.tenant_id}", instance_discovery=False,
                                                http_client=tessera.session())

        refused = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(refused["auth_uri"])  # B sends Alice home (signed in already) and back; B's policy refuses
        wait_for_text(browser, "AADSTS53003")

        partner_made = graph_b.ok("POST", "policies/crossTenantAccessPolicy/partners", status=201, json={
            "tenantId": tenant_a.tenant_id,
            "inboundTrust": {"isMfaAccepted": True, "isCompliantDeviceAccepted": False, "isHybridAzureADJoinedDeviceAccepted": False}})
        accepted = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(accepted["auth_uri"])
        result = msal_app.acquire_token_by_auth_code_flow(accepted, callback.wait(2))
        assert "access_token" in result, result
        claims = result["id_token_claims"]
        assert claims["tid"] == tenant_b.tenant_id and claims["oid"] == guest, claims
        assert claims["idp"] == f"{origin}/{tenant_a.tenant_id}/v2.0" and claims["acct"] == 1, claims
        access = jwt.decode(result["access_token"], options={"verify_signature": False})
        assert access["tid"] == tenant_b.tenant_id and access["idp"] == claims["idp"] and "User.Read" in access["scp"].split()
        # The token works in B's Graph, as the guest.
        me = tessera.session().get(f"{origin}/v1.0/me", headers={"Authorization": f"Bearer {result['access_token']}"})
        assert me.status_code == 200 and me.json()["id"] == guest, me.text
    finally:
        callback.close()
        remove_authenticator(browser, aid)
        if policy:
            graph_b.ok("DELETE", f"identity/conditionalAccess/policies/{policy['id']}", status=204)
            graph_b.ok("DELETE", f"identity/conditionalAccess/deletedItems/policies/{policy['id']}", status=204)
        if partner_made:
            graph_b.ok("DELETE", f"policies/crossTenantAccessPolicy/partners/{tenant_a.tenant_id}", status=204)
        if guest:
            graph_b.ok("DELETE", f"users/{guest}", status=204)
            graph_b.ok("DELETE", f"directory/deletedItems/{guest}", status=204)


def test_direct_connect_user_signs_in_with_msal_without_a_user_in_the_resource_tenant(
        graph, graph_b, tessera, tenant_a, tenant_b, origin, browser):
    """Carol (tenant A, a passkey in Chromium) signs in to B's application with MSAL by B2B direct connect: A allows its
    users out and B lets A's users in; B issues the token, names Carol's home object and tenant, and creates no user."""
    carol = graph.create_user(tenant_a.domain, unique("carol"))
    email = carol["userPrincipalName"]
    aid = register_passkey(browser, f"{origin}/{tenant_a.tenant_id}/login", carol["id"], graph.token)
    callback = Callback()
    everyone = {"usersAndGroups": {"accessType": "allowed", "targets": [{"target": "AllUsers", "targetType": "user"}]},
                "applications": {"accessType": "allowed", "targets": [{"target": "AllApplications", "targetType": "application"}]}}
    inbound = outbound = app = None
    try:
        users_before = len(graph_b.all_pages("users"))
        app = graph_b.ok("POST", "applications", status=201, json={"displayName": unique("Direct connect app"),
                                                                   "publicClient": {"redirectUris": [callback.url]}})
        sp = graph_b.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        graph_b.ok("POST", "oauth2PermissionGrants", status=201, json={
            "clientId": sp["id"], "consentType": "AllPrincipals", "resourceId": graph_b.graph_service_principal()["id"], "scope": "User.Read"})
        msal_app = msal.PublicClientApplication(app["appId"], authority=f"{origin}/{tenant_b.tenant_id}", instance_discovery=False,
                                                http_client=tessera.session())
        # Without B's inbound setting, Carol is not known in B.
        refused = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(refused["auth_uri"])
        wait_for_text(browser, "AADSTS50020")

        inbound = graph_b.ok("POST", "policies/crossTenantAccessPolicy/partners", status=201, json={
            "tenantId": tenant_a.tenant_id, "b2bDirectConnectInbound": everyone})
        outbound = graph.ok("POST", "policies/crossTenantAccessPolicy/partners", status=201, json={
            "tenantId": tenant_b.tenant_id, "b2bDirectConnectOutbound": everyone})
        flow = msal_app.initiate_auth_code_flow(scopes=["User.Read"], redirect_uri=callback.url, login_hint=email)
        browser.get(flow["auth_uri"])  # B sends Carol home (signed in already) and back, as a direct connect user
        result = msal_app.acquire_token_by_auth_code_flow(flow, callback.wait(1))
        assert "access_token" in result and "refresh_token" not in result, result
        claims = result["id_token_claims"]
        assert claims["tid"] == tenant_b.tenant_id and claims["oid"] == carol["id"], claims
        assert claims["iss"] == f"{origin}/{tenant_b.tenant_id}/v2.0" and claims["idp"] == f"{origin}/{tenant_a.tenant_id}/v2.0", claims
        assert claims["acct"] == 1 and claims["preferred_username"] == email, claims
        access = jwt.decode(result["access_token"], options={"verify_signature": False})
        assert access["tid"] == tenant_b.tenant_id and access["oid"] == carol["id"] and "User.Read" in access["scp"].split()
        # No user in B; both tenants' sign-in logs name the access type and both tenants.
        assert len(graph_b.all_pages("users")) == users_before
        graph_b.ok("GET", f"users/{carol['id']}", status=404)
        for client in (graph, graph_b):
            entries = [e for e in client.ok("GET", "auditLogs/signIns")["value"]
                       if e.get("userId") == carol["id"] and e.get("crossTenantAccessType") == "b2bDirectConnect"]
            assert entries and entries[0]["homeTenantId"] == tenant_a.tenant_id and entries[0]["resourceTenantId"] == tenant_b.tenant_id, entries
    finally:
        callback.close()
        remove_authenticator(browser, aid)
        if inbound:
            graph_b.ok("DELETE", f"policies/crossTenantAccessPolicy/partners/{tenant_a.tenant_id}", status=204)
        if outbound:
            graph.ok("DELETE", f"policies/crossTenantAccessPolicy/partners/{tenant_b.tenant_id}", status=204)
        if app:
            graph_b.ok("DELETE", f"applications/{app['id']}", status=204)


def test_invitations_of_an_unknown_organization_are_refused(sdk_b):
    with pytest.raises(APIError) as refused:
        sdk_b.run(sdk_b.client.invitations.post(Invitation(
            invited_user_email_address="carol@elsewhere.example", invite_redirect_url="https://myapps.example/")))
    assert refused.value.response_status_code == 400 and refused.value.error.code == "Request_BadRequest"
