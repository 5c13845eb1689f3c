"""Conditional Access What If through the official Microsoft Graph Python SDK: the generated
`client.identity.conditional_access.evaluate.post(EvaluatePostRequestBody(...))` builds the request as Microsoft's
documentation shows it (conditionalaccessroot-evaluate.md), and the SDK's models parse Tessera's answer.

The policies target only a user and a service principal made here (report-only), so the shared tenant's other tests
are not affected by them.
"""
from __future__ import annotations

import pytest
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.identity.conditional_access.evaluate.evaluate_post_request_body import EvaluatePostRequestBody
from msgraph.generated.identity.conditional_access.evaluate.evaluate_post_response import EvaluatePostResponse
from msgraph.generated.models.application_context import ApplicationContext
from msgraph.generated.models.auth_context import AuthContext
from msgraph.generated.models.authentication_flow import AuthenticationFlow
from msgraph.generated.models.conditional_access_client_app import ConditionalAccessClientApp
from msgraph.generated.models.conditional_access_device_platform import ConditionalAccessDevicePlatform
from msgraph.generated.models.conditional_access_policy_state import ConditionalAccessPolicyState
from msgraph.generated.models.conditional_access_transfer_methods import ConditionalAccessTransferMethods
from msgraph.generated.models.device_info import DeviceInfo
from msgraph.generated.models.insider_risk_level import InsiderRiskLevel
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.risk_level import RiskLevel
from msgraph.generated.models.service_principal_sign_in import ServicePrincipalSignIn
from msgraph.generated.models.sign_in_conditions import SignInConditions
from msgraph.generated.models.user_sign_in import UserSignIn
from msgraph.generated.models.what_if_analysis_reasons import WhatIfAnalysisReasons

from support import assert_graph_error, unique

SHAREPOINT = "00000003-0000-0ff1-ce00-000000000000"
POLICIES = "identity/conditionalAccess/policies"


@pytest.fixture(scope="module")
def setup(graph, tenant_a):
    user = graph.create_user(tenant_a.domain)
    app, sp = graph.create_app(unique("whatif-"))
    office = graph.ok("POST", "identity/conditionalAccess/namedLocations", 201, json={
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": unique("What If office "),
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "192.0.2.0/24"}]})

    def policy(name, conditions, grant):
        return graph.ok("POST", POLICIES, 201, json={
            "displayName": unique(name), "state": "enabledForReportingButNotEnforced", "conditions": conditions,
            "grantControls": grant})["id"]

    ids = {
        "risky": policy("What If user risk H ", {
            "users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": ["All"]}, "userRiskLevels": ["high"]},
            {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}),
        "register": policy("What If register security info ", {
            "users": {"includeUsers": [user["id"]]}, "applications": {"includeUserActions": ["urn:user:registersecurityinfo"]}},
            {"operator": "OR", "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002"}}),
        "outside": policy("What If outside the office ", {
            "users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": ["Office365"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": [office["id"]]}},
            {"operator": "OR", "builtInControls": ["block"]}),
        "ios": policy("What If iOS ", {
            "users": {"includeUsers": [user["id"]]}, "applications": {"includeApplications": ["All"]},
            "platforms": {"includePlatforms": ["iOS"]}}, {"operator": "OR", "builtInControls": ["mfa"]}),
        "context": policy("What If c37 ", {
            "users": {"includeUsers": [user["id"]]}, "applications": {"includeAuthenticationContextClassReferences": ["c37"]}},
            {"operator": "OR", "builtInControls": ["mfa"]}),
        "workload": policy("What If automation ", {
            "users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": [sp["id"]]},
            "applications": {"includeApplications": ["All"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": [office["id"]]}},
            {"operator": "OR", "builtInControls": ["block"]}),
    }
    yield {"user": user, "sp": sp, "policies": ids}
    for policy_id in ids.values():
        graph.delete(f"{POLICIES}/{policy_id}")


def by_id(results):
    return {r.id: r for r in results}


def test_the_sdk_asks_as_documented_and_parses_every_policys_answer(sdk, setup):
    # Microsoft's first example, through the SDK's generated request builder.
    body = EvaluatePostRequestBody(
        sign_in_identity=UserSignIn(user_id=setup["user"]["id"]),
        sign_in_context=ApplicationContext(include_applications=[SHAREPOINT]),
        sign_in_conditions=SignInConditions(
            device_platform=ConditionalAccessDevicePlatform.Android, client_app_type=ConditionalAccessClientApp.Browser,
            sign_in_risk_level=RiskLevel.High, user_risk_level=RiskLevel.High, country="US", ip_address="40.77.182.32",
            insider_risk_level=InsiderRiskLevel.Elevated,
            authentication_flow=AuthenticationFlow(transfer_method=ConditionalAccessTransferMethods.DeviceCodeFlow),
            device_info=DeviceInfo(is_compliant=True)),
        applied_policies_only=False)
    results = by_id(sdk.run(sdk.client.identity.conditional_access.evaluate.post(body)).value)
    ids = setup["policies"]
    outside = results[ids["outside"]]
    assert outside.policy_applies is True
    assert outside.analysis_reasons == [WhatIfAnalysisReasons.NotSet]
    assert outside.state == ConditionalAccessPolicyState.EnabledForReportingButNotEnforced
    assert outside.conditions.users.include_users == [setup["user"]["id"]]
    assert outside.grant_controls.built_in_controls[0].value == "block"
    assert results[ids["ios"]].policy_applies is False
    assert results[ids["ios"]].analysis_reasons == [WhatIfAnalysisReasons.DevicePlatform]
    assert results[ids["context"]].analysis_reasons == [WhatIfAnalysisReasons.AuthenticationContext]
    assert results[ids["workload"]].analysis_reasons == [WhatIfAnalysisReasons.Users]


def test_applied_policies_only_from_inside_the_office_and_for_an_authentication_context(sdk, setup):
    ids = setup["policies"]
    inside = sdk.run(sdk.client.identity.conditional_access.evaluate.post(EvaluatePostRequestBody(
        sign_in_identity=UserSignIn(user_id=setup["user"]["id"]),
        sign_in_context=ApplicationContext(include_applications=[SHAREPOINT]),
        sign_in_conditions=SignInConditions(ip_address="192.0.2.10", device_platform=ConditionalAccessDevicePlatform.IOS),
        applied_policies_only=True))).value
    assert {r.id for r in inside} & set(ids.values()) == {ids["ios"]}
    assert all(r.policy_applies for r in inside)
    data = sdk.run(sdk.client.identity.conditional_access.evaluate.post(EvaluatePostRequestBody(
        sign_in_identity=UserSignIn(user_id=setup["user"]["id"]),
        sign_in_context=AuthContext(authentication_context_value="c37"), sign_in_conditions=SignInConditions(),
        applied_policies_only=True))).value
    assert ids["context"] in {r.id for r in data}


def test_a_service_principal_from_outside_its_location(sdk, setup):
    ids = setup["policies"]
    results = by_id(sdk.run(sdk.client.identity.conditional_access.evaluate.post(EvaluatePostRequestBody(
        sign_in_identity=ServicePrincipalSignIn(service_principal_id=setup["sp"]["id"]),
        sign_in_context=ApplicationContext(include_applications=[SHAREPOINT]),
        sign_in_conditions=SignInConditions(service_principal_risk_level=RiskLevel.High, country="CA", ip_address="40.77.182.32"),
        applied_policies_only=False))).value)
    assert results[ids["workload"]].policy_applies is True
    assert results[ids["outside"]].analysis_reasons == [WhatIfAnalysisReasons.WorkloadIdentities]


def test_bad_questions_are_graph_errors(sdk, graph, tessera, tenant_a, setup):
    with pytest.raises(ODataError) as info:
        sdk.run(sdk.client.identity.conditional_access.evaluate.post(EvaluatePostRequestBody(
            sign_in_identity=UserSignIn(user_id=setup["user"]["id"]),
            sign_in_context=ApplicationContext(include_applications=[SHAREPOINT]),
            sign_in_conditions=SignInConditions(device_platform=ConditionalAccessDevicePlatform.All))))
    assert info.value.response_status_code == 400
    assert "signInConditions.devicePlatform" in info.value.error.message
    question = {"signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": setup["user"]["id"]},
                "signInContext": {"@odata.type": "#microsoft.graph.applicationContext", "includeApplications": [SHAREPOINT]},
                "signInConditions": {}}
    assert_graph_error(graph.post("identity/conditionalAccess/evaluate", json={**question, "when": "now"}), 400, "Request_BadRequest")
    # An app without a Conditional Access read permission is refused.
    app, sp = graph.create_app(unique("no-ca-"))
    graph.grant(sp["id"], "User.Read.All")
    token = tessera.token(tenant_a, app["appId"], graph.add_password(app["id"]))
    reader = tessera.session()
    reader.headers["Authorization"] = f"Bearer {token}"
    denied = reader.post(f"{tessera.base_url}/v1.0/identity/conditionalAccess/evaluate", json=question)
    assert_graph_error(denied, 403, "Authorization_RequestDenied")


# conditionalaccessroot-evaluate.md, examples 1 to 4: the requests exactly as the page writes them but for the user's and
# the service principal's ids, over plain HTTP; the answers read through the SDK's response model.
DOCUMENTED = {
    "user accessing an application": ({
        "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "USER"},
        "signInContext": {"@odata.type": "#microsoft.graph.applicationContext",
                          "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
        "signInConditions": {"devicePlatform": "android", "clientAppType": "browser", "signInRiskLevel": "high",
                             "userRiskLevel": "high", "country": "US", "ipAddress": "40.77.182.32", "insiderRiskLevel": "elevated",
                             "authenticationFlow": {"transferMethod": "deviceCodeFlow"}, "deviceInfo": {"isCompliant": True}},
        "appliedPoliciesOnly": True}, {"risky", "outside"}),
    "user accessing data behind an authentication context": ({
        "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "USER"},
        "signInContext": {"@odata.type": "#microsoft.graph.authContext", "authenticationContextValue": "c37"},
        "signInConditions": {"devicePlatform": "windows", "clientAppType": "mobileAppsAndDesktopClients", "signInRiskLevel": "medium",
                             "userRiskLevel": "none", "country": "US", "ipAddress": "40.77.182.32", "insiderRiskLevel": "moderate",
                             "authenticationFlow": {"transferMethod": "authenticationTransfer"},
                             "deviceInfo": {"profileType": "Standard"}},
        "appliedPoliciesOnly": True}, {"context"}),
    "user performing a user action": ({
        "signInIdentity": {"@odata.type": "#microsoft.graph.userSignIn", "userId": "USER"},
        "signInContext": {"@odata.type": "#microsoft.graph.userActionContext", "userAction": "registerSecurityInformation"},
        "signInConditions": {"devicePlatform": "macOS", "clientAppType": "browser", "signInRiskLevel": "low", "userRiskLevel": "high",
                             "servicePrincipalRiskLevel": "none", "country": "CA", "ipAddress": "40.77.182.32", "insiderRiskLevel": "minor",
                             "authenticationFlow": {"transferMethod": "deviceCodeFlow"}, "deviceInfo": {"trustType": "EntraID"}},
        "appliedPoliciesOnly": True}, {"register"}),
    "service principal": ({
        "signInIdentity": {"@odata.type": "#microsoft.graph.servicePrincipalSignIn", "servicePrincipalId": "SP"},
        "signInContext": {"@odata.type": "#microsoft.graph.applicationContext",
                          "includeApplications": ["00000003-0000-0ff1-ce00-000000000000"]},
        "signInConditions": {"servicePrincipalRiskLevel": "high", "country": "CA", "ipAddress": "40.77.182.32"},
        "appliedPoliciesOnly": True}, {"workload"}),
}


@pytest.mark.parametrize("example", DOCUMENTED)
def test_microsofts_documented_examples(graph, setup, example):
    body, expected = DOCUMENTED[example]
    identity = dict(body["signInIdentity"])
    for key, value in (("userId", setup["user"]["id"]), ("servicePrincipalId", setup["sp"]["id"])):
        if key in identity:
            identity[key] = value
    response = graph.post("identity/conditionalAccess/evaluate", json={**body, "signInIdentity": identity})
    assert response.status_code == 200, response.text
    assert response.json()["@odata.context"] == f"{graph.base}/$metadata#Collection(microsoft.graph.whatIfAnalysisResult)"
    answer = JsonParseNodeFactory().get_root_parse_node("application/json", response.content).get_object_value(EvaluatePostResponse)
    mine = {name for name, policy_id in setup["policies"].items() if policy_id in {r.id for r in answer.value}}
    assert mine == expected
    assert all(r.policy_applies and r.analysis_reasons == [WhatIfAnalysisReasons.NotSet] for r in answer.value)
