"""Authentication strengths through the real Microsoft Graph Python SDK (issue 14's proof): the built-ins read and
refused for writes, a custom strength created, renamed, its combinations changed with updateAllowedCombinations, a
FIDO2 combination configuration naming AAGUIDs, a Conditional Access policy requiring it (which keeps it from being
deleted) and the strength's usage; each call through the SDK's own request builders and models.

The SDK models a combination as one `authenticationMethodModes` member, so the strengths here use one-method
combinations (a combination such as "password,sms" reads back as None in the SDK's model); the raw requests below
show the multi-method ones."""
from __future__ import annotations

import uuid

import pytest

YUBIKEY_5 = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
FEITIAN = "ee882879-721c-4913-9775-3dfcce97072a"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"


def test_authentication_strengths_through_the_graph_sdk(sdk, graph, graph_b):
    from msgraph.generated.identity.conditional_access.authentication_strength.policies.item.update_allowed_combinations.update_allowed_combinations_post_request_body import (
        UpdateAllowedCombinationsPostRequestBody)
    from msgraph.generated.models.authentication_method_modes import AuthenticationMethodModes as Modes
    from msgraph.generated.models.authentication_strength_policy import AuthenticationStrengthPolicy
    from msgraph.generated.models.authentication_strength_policy_type import AuthenticationStrengthPolicyType
    from msgraph.generated.models.authentication_strength_requirements import AuthenticationStrengthRequirements
    from msgraph.generated.models.conditional_access_applications import ConditionalAccessApplications
    from msgraph.generated.models.conditional_access_condition_set import ConditionalAccessConditionSet
    from msgraph.generated.models.conditional_access_grant_controls import ConditionalAccessGrantControls
    from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
    from msgraph.generated.models.conditional_access_policy_state import ConditionalAccessPolicyState
    from msgraph.generated.models.conditional_access_users import ConditionalAccessUsers
    from msgraph.generated.models.fido2_combination_configuration import Fido2CombinationConfiguration
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    ca = sdk.client.identity.conditional_access
    strengths = ca.authentication_strength.policies
    name = f"Security keys {uuid.uuid4().hex[:8]}"

    # The built-ins, with Microsoft's ids; phishing-resistant MFA allows Windows Hello for Business, FIDO2 and CBA.
    listed = sdk.run(strengths.get())
    builtins = {p.id: p for p in listed.value if p.policy_type == AuthenticationStrengthPolicyType.BuiltIn}
    assert set(builtins) == {"00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003", PHISHING_RESISTANT}
    strongest = builtins[PHISHING_RESISTANT]
    assert strongest.display_name == "Phishing-resistant MFA" and strongest.requirements_satisfied == [AuthenticationStrengthRequirements.Mfa]
    assert strongest.allowed_combinations == [Modes.WindowsHelloForBusiness, Modes.Fido2, Modes.X509CertificateMultiFactor]
    with pytest.raises(ODataError) as refused:
        sdk.run(strengths.by_authentication_strength_policy_id(PHISHING_RESISTANT).patch(AuthenticationStrengthPolicy(display_name="Mine")))
    assert refused.value.response_status_code == 400 and "Built-in" in refused.value.error.message
    with pytest.raises(ODataError):
        sdk.run(strengths.by_authentication_strength_policy_id(PHISHING_RESISTANT).delete())

    modes = sdk.run(ca.authentication_strength.authentication_method_modes.get())
    assert {m.id: m.display_name for m in modes.value}["fido2"] == "FIDO2 Security Key"

    # A custom strength: passkeys or Windows Hello.
    created = sdk.run(strengths.post(AuthenticationStrengthPolicy(
        display_name=name, description="Passkeys or Windows Hello", allowed_combinations=[Modes.Fido2, Modes.WindowsHelloForBusiness])))
    assert created.id and created.policy_type == AuthenticationStrengthPolicyType.Custom
    assert created.requirements_satisfied == [AuthenticationStrengthRequirements.Mfa] and created.created_date_time is not None
    assert created.allowed_combinations == [Modes.Fido2, Modes.WindowsHelloForBusiness]
    item = strengths.by_authentication_strength_policy_id(created.id)
    with pytest.raises(ODataError) as duplicate:
        sdk.run(strengths.post(AuthenticationStrengthPolicy(display_name=name, allowed_combinations=[Modes.Fido2])))
    assert "already exists" in duplicate.value.error.message

    # Only the passkey models the organisation bought.
    configuration = sdk.run(item.combination_configurations.post(Fido2CombinationConfiguration(
        allowed_a_a_g_u_i_ds=[YUBIKEY_5], applies_to_combinations=[Modes.Fido2])))
    assert isinstance(configuration, Fido2CombinationConfiguration) and configuration.allowed_a_a_g_u_i_ds == [YUBIKEY_5]
    sdk.run(item.combination_configurations.by_authentication_combination_configuration_id(configuration.id).patch(
        Fido2CombinationConfiguration(allowed_a_a_g_u_i_ds=[YUBIKEY_5, FEITIAN])))
    with pytest.raises(ODataError) as bad_aaguid:
        sdk.run(item.combination_configurations.post(Fido2CombinationConfiguration(allowed_a_a_g_u_i_ds=["yubikey"], applies_to_combinations=[Modes.Fido2])))
    assert bad_aaguid.value.response_status_code == 400
    read = sdk.run(item.get())
    assert [c.allowed_a_a_g_u_i_ds for c in read.combination_configurations] == [[YUBIKEY_5, FEITIAN]]

    sdk.run(item.patch(AuthenticationStrengthPolicy(display_name=f"{name} (renamed)")))
    assert sdk.run(item.get()).display_name == f"{name} (renamed)"

    # A Conditional Access policy requiring it (disabled, so it decides no other test's sign-in).
    policy = sdk.run(ca.policies.post(ConditionalAccessPolicy(
        display_name=f"Keys for everyone {name}", state=ConditionalAccessPolicyState.Disabled,
        conditions=ConditionalAccessConditionSet(users=ConditionalAccessUsers(include_users=["All"]),
                                                 applications=ConditionalAccessApplications(include_applications=["All"])),
        grant_controls=ConditionalAccessGrantControls(operator="OR", authentication_strength=AuthenticationStrengthPolicy(id=created.id)))))
    assert policy.grant_controls.authentication_strength.id == created.id
    assert policy.grant_controls.authentication_strength.display_name == f"{name} (renamed)"

    result = sdk.run(item.update_allowed_combinations.post(UpdateAllowedCombinationsPostRequestBody(
        allowed_combinations=[Modes.Fido2, Modes.TemporaryAccessPassOneTime])))
    assert result.previous_combinations == [Modes.Fido2, Modes.WindowsHelloForBusiness]
    assert result.current_combinations == [Modes.Fido2, Modes.TemporaryAccessPassOneTime]
    assert result.conditional_access_references == [policy.id] and "lowered the security" in result.additional_information
    usage = sdk.run(item.usage.get())
    assert [p.id for p in usage.none_] == [policy.id] and usage.mfa == []
    shown = sdk.run(ca.policies.by_conditional_access_policy_id(policy.id).get()).grant_controls.authentication_strength
    assert shown.allowed_combinations == [Modes.Fido2, Modes.TemporaryAccessPassOneTime]

    with pytest.raises(ODataError) as in_use:
        sdk.run(item.delete())
    assert in_use.value.response_status_code == 400 and "is used by the Conditional Access policy" in in_use.value.error.message

    # Another tenant sees only the built-ins.
    theirs = graph_b.get("/identity/conditionalAccess/authenticationStrength/policies").json()["value"]
    assert created.id not in {p["id"] for p in theirs}

    # The policy gone for good, the strength can go.
    sdk.run(ca.policies.by_conditional_access_policy_id(policy.id).delete())
    sdk.run(ca.deleted_items.policies.by_conditional_access_policy_id(policy.id).delete())
    sdk.run(item.combination_configurations.by_authentication_combination_configuration_id(configuration.id).delete())
    sdk.run(item.delete())
    with pytest.raises(ODataError) as gone:
        sdk.run(item.get())
    assert gone.value.response_status_code == 404


def test_multi_method_combinations_and_bad_ones_as_microsofts_examples_send_them(graph):
    """Microsoft's create example, with combinations spaced as it writes them, at /policies/authenticationStrengthPolicies;
    a combination Graph does not allow is a Graph error and nothing is written."""
    name = f"Contoso authentication level {uuid.uuid4().hex[:8]}"
    created = graph.post("/policies/authenticationStrengthPolicies", json={
        "@odata.type": "#microsoft.graph.authenticationStrengthPolicy", "displayName": name,
        "description": "The only authentication level allowed to access our secret apps",
        "allowedCombinations": ["password, hardwareOath", "password, sms"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["allowedCombinations"] == ["password,hardwareOath", "password,sms"] and body["requirementsSatisfied"] == "mfa"
    before = graph.get("/policies/authenticationStrengthPolicies").json()["value"]
    refused = graph.post("/policies/authenticationStrengthPolicies", json={"displayName": "Weak", "allowedCombinations": ["sms, voice"]})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "Request_BadRequest", refused.text
    assert graph.get("/policies/authenticationStrengthPolicies").json()["value"] == before
    filtered = graph.get("/policies/authenticationStrengthPolicies", params={"$filter": "policyType eq 'custom'"}).json()["value"]
    assert name in {p["displayName"] for p in filtered} and all(p["policyType"] == "custom" for p in filtered)
    assert graph.delete(f"/policies/authenticationStrengthPolicies/{body['id']}").status_code == 204


def test_concurrent_writers_keep_the_limit_and_unique_names(graph_b):
    """Twenty creates at once (each its own connection): exactly fifteen are kept; five creates of one name: exactly
    one. Tenant B, so the first test's strengths do not count."""
    from concurrent.futures import ThreadPoolExecutor

    path = "/identity/conditionalAccess/authenticationStrength/policies"

    def create(name: str) -> int:
        session = graph_b.tessera.session()
        session.headers["Authorization"] = f"Bearer {graph_b.token}"
        return session.post(graph_b.url(path), json={"displayName": name, "allowedCombinations": ["fido2"]}).status_code

    run = uuid.uuid4().hex[:8]
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(create, [f"Concurrent {run} {n}" for n in range(20)]))
    assert sorted(statuses) == [201] * 15 + [400] * 5, statuses
    custom = [p for p in graph_b.get(path).json()["value"] if p["policyType"] == "custom"]
    assert len(custom) == 15
    for policy in custom:
        assert graph_b.delete(f"{path}/{policy['id']}").status_code == 204

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(create, [f"Same name {run}"] * 5))
    assert sorted(statuses) == [201] + [400] * 4, statuses
    for policy in graph_b.get(path, params={"$filter": "policyType eq 'custom'"}).json()["value"]:
        assert graph_b.delete(f"{path}/{policy['id']}").status_code == 204
