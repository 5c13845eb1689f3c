"""Microsoft's documented Graph requests, run as written against Tessera (issue 21).

Each test names the page of microsoftgraph/microsoft-graph-docs-contrib (api-reference/v1.0/api/…) whose HTTP
example it runs; only ids, domains and dates are adapted. Requests go through the msgraph-sdk request builders and
models where the SDK has them (as the pages' Python tabs do), and raw HTTP otherwise; raw responses are parsed into
the SDK's models to prove their shape.
"""
from __future__ import annotations

import datetime
import uuid
from urllib.parse import urlencode

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.groups.delta.delta_request_builder import DeltaRequestBuilder
from msgraph.generated.models.application import Application
from msgraph.generated.models.conditional_access_condition_set import ConditionalAccessConditionSet
from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
from msgraph.generated.models.directory_role import DirectoryRole
from msgraph.generated.models.domain import Domain
from msgraph.generated.models.group import Group
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.risk_level import RiskLevel
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod)
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_definitions.role_definitions_request_builder import (
    RoleDefinitionsRequestBuilder)

from support import ADVANCED, GRAPH_APP_ID, assert_graph_error, unique
from test_graph_sdk import new_group, new_user

USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"


def parse(model, response):
    """A raw Graph response body read through the SDK's model, as the SDK would read it."""
    node = JsonParseNodeFactory().get_root_parse_node("application/json", response.content)
    return node.get_object_value(model)


def user_id(sdk, tenant_a, **props) -> str:
    return sdk.run(sdk.client.users.post(new_user(tenant_a.domain, **props))).id


def bind(object_id: str, collection: str = "users") -> str:
    return f"https://graph.microsoft.com/v1.0/{collection}/{object_id}"


def ids(page) -> set[str]:
    return {item.id for item in page.value}


# group-post-groups.md, example 2: "Create a group with owners and members".
def test_create_group_with_owners_and_members(sdk, tenant_a):
    owner, a, b = (user_id(sdk, tenant_a) for _ in range(3))
    group = Group(description="Group with designated owner and members", display_name="Operations group", group_types=[],
                  mail_enabled=False, mail_nickname=unique("operations"), security_enabled=True,
                  additional_data={"owners@odata.bind": [bind(owner)], "members@odata.bind": [bind(a), bind(b)]})
    created = sdk.run(sdk.client.groups.post(group))
    assert "members@odata.bind" not in created.additional_data and "owners@odata.bind" not in created.additional_data
    assert ids(sdk.run(sdk.client.groups.by_group_id(created.id).members.get())) == {a, b}
    assert ids(sdk.run(sdk.client.groups.by_group_id(created.id).owners.get())) == {owner}
    fetched = sdk.run(sdk.client.groups.by_group_id(created.id).get())
    assert not any("@odata.bind" in key for key in fetched.additional_data), fetched.additional_data


# group-post-members.md, example 2: "Add multiple members to a group in a single request".
def test_add_multiple_members_in_one_patch(graph, sdk, tenant_a):
    group = sdk.run(sdk.client.groups.post(new_group()))
    members = [user_id(sdk, tenant_a) for _ in range(3)]
    graph.ok("PATCH", f"groups/{group.id}", 204, json={
        "members@odata.bind": [bind(m, "directoryObjects") for m in members]})
    assert ids(sdk.run(sdk.client.groups.by_group_id(group.id).members.get())) == set(members)


# user-list-memberof.md ("Get groups, directory roles, and administrative units that the user is a direct member of").
def test_member_of_lists_directory_roles(sdk, tenant_a):
    admin = user_id(sdk, tenant_a)
    sdk.run(sdk.client.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
        principal_id=admin, role_definition_id=USER_ADMINISTRATOR, directory_scope_id="/")))
    roles = sdk.run(sdk.client.users.by_user_id(admin).member_of.graph_directory_role.get())
    assert [(r.id, r.role_template_id) for r in roles.value] == [(USER_ADMINISTRATOR, USER_ADMINISTRATOR)]
    everything = sdk.run(sdk.client.users.by_user_id(admin).member_of.get())
    assert [type(o).__name__ for o in everything.value] == ["DirectoryRole"]


# user-get.md / user-list.md with $select: property names are case-insensitive in Graph.
def test_property_names_are_case_insensitive(graph, sdk, tenant_a):
    uid = user_id(sdk, tenant_a, job_title="Case Study")
    got = graph.ok("GET", f"users/{uid}", params={"$select": "id,DisplayName,JOBTITLE"})
    assert got["jobTitle"] == "Case Study" and "displayName" in got
    mail = sdk.run(sdk.client.users.by_user_id(uid).get()).user_principal_name
    found = graph.ok("GET", "users", params={"$filter": f"proxyaddresses/any(p:startswith(p,'smtp:')) or UserPrincipalName eq '{mail}'"})
    assert uid in {u["id"] for u in found["value"]}


# Issue 13: no `_`-prefixed member is reachable, for instance a client secret's digest by prefix.
@pytest.mark.parametrize("query", [
    {"$filter": "passwordCredentials/any(p:startswith(p/_hash,''))"},
    {"$filter": "startswith(passwordCredentials,'[')"},
    {"$filter": "passwordCredentials/any(p:startswith(p,'{'))"},
    {"$orderby": "_hash"},
    {"$select": "id,_hash"},
])
def test_hidden_members_are_unreachable(graph, sdk, query):
    app = sdk.run(sdk.client.applications.post(Application(display_name=unique("secret-holder"))))
    graph.ok("POST", f"applications/{app.id}/addPassword", json={"passwordCredential": {"displayName": "s"}})
    resp = graph.get("applications", params=query)
    assert_graph_error(resp, 400, "Request_BadRequest")
    batch = graph.ok("POST", "$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": "/applications?" + urlencode(query)}]})
    assert batch["responses"][0]["status"] == 400


# group-delta.md, example 1 ("GET /groups/delta?$select=displayName,description,members") and the deltaLink round.
def test_group_delta_tracks_members(sdk, tenant_a):
    first, second = user_id(sdk, tenant_a), user_id(sdk, tenant_a)
    group = sdk.run(sdk.client.groups.post(new_group(additional_data={"members@odata.bind": [bind(first)]})))
    query = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters(select=["displayName", "description", "members"])
    page = sdk.run(sdk.client.groups.delta.get(request_configuration=RequestConfiguration(query_parameters=query)))
    while page.odata_next_link:
        page = sdk.run(sdk.client.groups.delta.with_url(page.odata_next_link).get())
    assert page.odata_delta_link
    # members@delta is carried in every group of the initial round (the SDK keeps it in additional_data).
    sdk.run(sdk.client.groups.by_group_id(group.id).members.ref.post(ReferenceCreate(
        odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{second}")))
    changes = sdk.run(sdk.client.groups.delta.with_url(page.odata_delta_link).get())
    entry = next(g for g in changes.value if g.id == group.id)
    assert {str(m["id"]) for m in entry.additional_data["members@delta"]} == {second}


# user-delta.md: `$filter=id eq …`, and "Prefer: return=minimal" (only the changed properties).
def test_user_delta_by_id_with_minimal_responses(graph, sdk, tenant_a):
    uid = user_id(sdk, tenant_a)
    initial = graph.ok("GET", "users/delta", params={"$select": "displayName,jobTitle,mobilePhone", "$filter": f"id eq '{uid}'"})
    assert [u["id"] for u in initial["value"]] == [uid]
    graph.ok("PATCH", f"users/{uid}", 204, json={"jobTitle": "Minimal"})
    minimal = graph.get(initial["@odata.deltaLink"], headers={"Prefer": "return=minimal"})
    assert minimal.status_code == 200 and minimal.headers.get("Preference-Applied") == "return=minimal"
    assert minimal.json()["value"] == [{"id": uid, "jobTitle": "Minimal"}]


# authentication-post-temporaryaccesspassmethods.md: a new pass replaces the user's old one.
def test_temporary_access_pass_replaces_the_old_one(sdk, tenant_a):
    uid = user_id(sdk, tenant_a)
    methods = sdk.client.users.by_user_id(uid).authentication.temporary_access_pass_methods
    start = datetime.datetime.now(datetime.timezone.utc)
    first = sdk.run(methods.post(TemporaryAccessPassAuthenticationMethod(start_date_time=start, lifetime_in_minutes=60, is_usable_once=False)))
    second = sdk.run(methods.post(TemporaryAccessPassAuthenticationMethod(start_date_time=start, lifetime_in_minutes=60, is_usable_once=False)))
    assert first.temporary_access_pass and second.temporary_access_pass and first.id != second.id
    assert [m.id for m in sdk.run(methods.get()).value] == [second.id]


# conditionalaccessroot-post-policies.md (example 1, its grant) then conditionalaccesspolicy-update.md (only signInRiskLevels).
def test_conditional_access_patch_merges_conditions(graph, sdk):
    created = graph.ok("POST", "identity/conditionalAccess/policies", 201, json={
        "displayName": "Access to EXO requires MFA", "state": "enabled",
        "conditions": {"clientAppTypes": ["mobileAppsAndDesktopClients", "browser"],
                       "applications": {"includeApplications": ["00000002-0000-0ff1-ce00-000000000000"]},
                       "users": {"includeGroups": [], "includeUsers": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})
    policy = parse(ConditionalAccessPolicy, graph.get(f"identity/conditionalAccess/policies/{created['id']}"))
    assert policy.conditions.users.exclude_users == [] and policy.grant_controls.terms_of_use == []
    assert "modifiedDateTime" in created and "sessionControls" in created
    sdk.run(sdk.client.identity.conditional_access.policies.by_conditional_access_policy_id(created["id"]).patch(
        ConditionalAccessPolicy(conditions=ConditionalAccessConditionSet(
            sign_in_risk_levels=[RiskLevel.High, RiskLevel.Medium, RiskLevel.Low]))))
    after = sdk.run(sdk.client.identity.conditional_access.policies.by_conditional_access_policy_id(created["id"]).get())
    assert after.conditions.sign_in_risk_levels == [RiskLevel.High, RiskLevel.Medium, RiskLevel.Low]
    assert after.conditions.users.include_users == ["All"] and after.modified_date_time is not None


# application-post-applications.md: the response carries api, web, publicClient, info and parentalControlSettings.
def test_applications_come_back_with_their_default_members(graph, sdk):
    created = sdk.run(sdk.client.applications.post(Application(display_name="Display name")))
    for app in (created, sdk.run(sdk.client.applications.by_application_id(created.id).get())):
        assert app.web.redirect_uris == [] and app.web.implicit_grant_settings.enable_id_token_issuance is False
        assert app.api.oauth2_permission_scopes == [] and app.public_client.redirect_uris == []
        assert app.parental_control_settings.legal_age_group_rule == "Allow" and app.info is not None
    raw = graph.ok("GET", f"applications/{created.id}")
    assert raw["web"]["redirectUris"] == [] and raw["spa"]["redirectUris"] == []


# user-list.md, "Get only a count of users without a license" style: `$filter=assignedLicenses/$count eq 0`.
def test_count_inside_filter(graph, sdk, tenant_a):
    uid = user_id(sdk, tenant_a)
    page = graph.ok("GET", "users", headers=ADVANCED, params={"$filter": "assignedLicenses/$count eq 0", "$count": "true",
                                                                "$select": "id,displayName", "$top": "999"})
    assert page["@odata.count"] >= 1 and uid in {u["id"] for u in page["value"]}
    assert_graph_error(graph.get("users", params={"$filter": "assignedLicenses/$count eq 0"}), 400, "Request_UnsupportedQuery")


# user-list.md: `$filter=createdDateTime ge 2021-11-01` (a date-only literal).
def test_date_only_literal(graph):
    page = graph.ok("GET", "users", params={"$filter": "createdDateTime ge 2021-11-01", "$select": "id,createdDateTime"})
    assert page["value"] and all(u["createdDateTime"] >= "2021-11-01" for u in page["value"])


# directoryrole-post-directoryroles.md, directoryrole-post-members.md, directoryrole-delete-member.md.
def test_legacy_directory_roles_are_writable(sdk, tenant_a):
    role = sdk.run(sdk.client.directory_roles.post(DirectoryRole(role_template_id=DIRECTORY_READERS)))
    assert role.role_template_id == DIRECTORY_READERS
    uid = user_id(sdk, tenant_a)
    members = sdk.client.directory_roles.by_directory_role_id(role.id).members
    sdk.run(members.ref.post(ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{uid}")))
    assert uid in ids(sdk.run(members.get()))
    assignments = sdk.run(sdk.client.role_management.directory.role_assignments.get())
    assert any(a.principal_id == uid and a.role_definition_id == DIRECTORY_READERS for a in assignments.value)
    sdk.run(members.by_directory_object_id(uid).ref.delete())
    assert uid not in ids(sdk.run(members.get()))


# device-get.md (alternate key `devices(deviceId='{deviceId}')`) and device-list.md (`$search="displayName:Android"`).
def test_devices_by_alternate_key_and_search(graph):
    names = {f"contoso_Android_{unique('d')}", f"contosoAndroid{unique('d')}", f"Windows {unique('d')}"}
    device_ids = {}
    for name in names:
        device_id = str(uuid.uuid4())
        graph.ok("POST", "devices", 201, json={"accountEnabled": False, "alternativeSecurityIds": [], "deviceId": device_id,
                                              "displayName": name, "operatingSystem": "linux", "operatingSystemVersion": "1"})
        device_ids[name] = device_id
    for name, device_id in device_ids.items():
        assert graph.ok("GET", f"devices(deviceId='{device_id}')")["displayName"] == name
    found = graph.ok("GET", "devices", headers=ADVANCED, params={"$search": '"displayName:Android"', "$count": "true", "$top": "999"})["value"]
    shown = {d["displayName"] for d in found} & names
    assert shown == {n for n in names if "Android" in n}


# domain-post-domains.md; an unverified domain holds no users.
def test_add_a_domain(sdk, tenant_a):
    name = f"{unique('dom')}.test"
    domain = sdk.run(sdk.client.domains.post(Domain(id=name)))
    assert domain.id == name and domain.is_verified is False and domain.is_default is False
    with pytest.raises(Exception):
        sdk.run(sdk.client.users.post(User(account_enabled=True, display_name="x", mail_nickname="x",
                                           user_principal_name=f"x@{name}", password_profile=new_user(name).password_profile)))


# serviceprincipal-list-oauth2permissiongrants.md.
def test_service_principal_oauth2_permission_grants(graph, sdk, tenant_a):
    client = graph.ok("GET", "servicePrincipals", params={"$filter": f"appId eq '{tenant_a.client_id}'"})["value"][0]["id"]
    resource = graph.ok("GET", "servicePrincipals", params={"$filter": f"appId eq '{GRAPH_APP_ID}'"})["value"][0]["id"]
    existing = graph.get("oauth2PermissionGrants", params={"$filter": f"clientId eq '{client}'"}).json()["value"]
    grant = existing[0] if existing else graph.ok("POST", "oauth2PermissionGrants", 201, json={
        "clientId": client, "consentType": "AllPrincipals", "resourceId": resource, "scope": "User.Read"})
    grants = sdk.run(sdk.client.service_principals.by_service_principal_id(client).oauth2_permission_grants.get())
    assert grant["id"] in ids(grants)


# rbacapplication-list-roledefinitions.md with $select and $filter.
def test_role_definitions_with_select(sdk):
    query = RoleDefinitionsRequestBuilder.RoleDefinitionsRequestBuilderGetQueryParameters(
        select=["displayName", "id", "templateId"], filter="displayName eq 'User Administrator'")
    page = sdk.run(sdk.client.role_management.directory.role_definitions.get(
        request_configuration=RequestConfiguration(query_parameters=query)))
    assert [(d.display_name, d.id) for d in page.value] == [("User Administrator", USER_ADMINISTRATOR)]
    assert page.value[0].role_permissions is None, "$select leaves rolePermissions out"


# directoryaudit-list.md: filter on activityDateTime and initiatedBy; order by activityDateTime.
def test_audit_logs_filter_and_order(graph, sdk, tenant_a):
    uid = user_id(sdk, tenant_a)
    newest = graph.ok("GET", "auditLogs/directoryAudits", params={"$orderby": "activityDateTime desc", "$top": "5"})["value"]
    times = [a["activityDateTime"] for a in newest]
    assert times == sorted(times, reverse=True)
    mine = graph.ok("GET", "auditLogs/directoryAudits", params={
        "$filter": f"activityDateTime ge 2021-11-01 and targetResources/any(t:t/id eq '{uid}')"})["value"]
    assert [a["activityDisplayName"] for a in mine] == ["Add user"]
    by_app = graph.ok("GET", "auditLogs/directoryAudits", params={
        "$filter": f"initiatedBy/app/appId eq '{tenant_a.client_id}'", "$top": "3"})["value"]
    assert by_app and all(a["initiatedBy"]["app"]["appId"] == tenant_a.client_id for a in by_app)


# user-post-users.md: displayName "Maximum length is 256 characters"; NUL refused.
@pytest.mark.parametrize("props", [{"displayName": "a" * 257}, {"jobTitle": "a" * 129}, {"displayName": "nul\u0000byte"}])
def test_length_limits(graph, tenant_a, props):
    nick = unique("limit")
    body = {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{tenant_a.domain}",
            "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d"}, **props}
    assert_graph_error(graph.post("users", json=body), 400, "Request_BadRequest")
    assert graph.ok("GET", "users", params={"$filter": f"mailNickname eq '{nick}'"})["value"] == []


# user-list.md: $search needs ConsistencyLevel: eventual (Request_UnsupportedQuery without it).
def test_search_needs_consistency_level(graph):
    assert_graph_error(graph.get("users", params={"$search": '"displayName:room"'}), 400, "Request_UnsupportedQuery")


# conditionalaccessroot-list-namedlocations.md examples: isof() and countriesAndRegions/any().
def test_named_locations_filters(graph):
    name = unique("countries")
    created = graph.ok("POST", "identity/conditionalAccess/namedLocations", 201, json={
        "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": name,
        "countriesAndRegions": ["US", "GB"], "includeUnknownCountriesAndRegions": True})
    by_type = graph.ok("GET", "identity/conditionalAccess/namedLocations",
                       params={"$filter": "isof('microsoft.graph.countryNamedLocation')"})["value"]
    assert created["id"] in {n["id"] for n in by_type}
    assert all(n["@odata.type"] == "#microsoft.graph.countryNamedLocation" for n in by_type)
    by_country = graph.ok("GET", "identity/conditionalAccess/namedLocations",
                          params={"$filter": "countriesAndRegions/any(c:c eq 'GB')"})["value"]
    assert created["id"] in {n["id"] for n in by_country}


@pytest.fixture(scope="module")
def documented_objects(graph, tenant_a):
    """What the documented requests below name: two users, a Microsoft 365 group holding the first, an application
    and its service principal."""
    def new_user_id():
        nick = unique("doc")
        return graph.ok("POST", "users", 201, json={
            "accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{tenant_a.domain}",
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "xWwvJ]6NMw+bWH-d"}})["id"]
    u1, u2 = new_user_id(), new_user_id()
    group = graph.ok("POST", "groups", 201, json={  # group-post-groups.md, example 1
        "description": "Self help community for library", "displayName": "Library Assist", "groupTypes": ["Unified"],
        "mailEnabled": True, "mailNickname": unique("library"), "securityEnabled": False})["id"]
    graph.ok("POST", f"groups/{group}/members/$ref", 204, json={"@odata.id": f"https://graph.microsoft.com/v1.0/directoryObjects/{u1}"})
    app = graph.ok("POST", "applications", 201, json={"displayName": "Display name"})
    sp = graph.ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
    return {"u1": u1, "u2": u2, "group": group, "app": app["id"], "sp": sp["id"]}


# user-post-users.md, example 1: the request as documented (the domain adapted) and the response's members: Graph's
# default user properties and the context, nothing else (no password profile, no internal members).
DEFAULT_USER_MEMBERS = {"@odata.context", "id", "businessPhones", "displayName", "givenName", "jobTitle", "mail",
                        "mobilePhone", "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}


def documented_user(domain: str, **extra) -> dict:
    nickname = unique("AdeleV")
    return {"accountEnabled": True, "displayName": "Adele Vance", "mailNickname": nickname,
            "userPrincipalName": f"{nickname}@{domain}",
            "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": "xWwvJ]6NMw+bWH-d"}, **extra}


def check_created_user(graph, body: dict, sent: dict):
    """A create's 201 body as user-post-users.md shows it, read through the SDK's model, equal to a later GET."""
    assert set(body) == DEFAULT_USER_MEMBERS, sorted(body)
    assert body["@odata.context"].endswith("/$metadata#users/$entity"), body["@odata.context"]
    for name in DEFAULT_USER_MEMBERS - {"@odata.context", "id"}:
        assert body[name] == sent.get(name, [] if name == "businessPhones" else None), name
    # A read adds its @odata.etag (the create gives it as the ETag header); the properties are the same.
    fetched = graph.ok("GET", f"users/{body['id']}")
    assert {k: v for k, v in fetched.items() if not k.startswith("@odata.")} == \
        {k: v for k, v in body.items() if not k.startswith("@odata.")}


def test_create_user_answers_as_documented(graph, tenant_a):
    """POST /users (user-post-users.md, example 1) answers 201 with the user's default properties, its Location and
    ETag, as written, with the properties it was given, and the same body inside a $batch."""
    sent = documented_user(tenant_a.domain)
    r = graph.post("users", json=sent)
    assert r.status_code == 201, r.text
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body = r.json()
    assert r.headers["Location"].endswith(f"/users/{body['id']}"), r.headers
    assert r.headers.get("ETag"), r.headers
    check_created_user(graph, body, sent)
    model = parse(User, r)
    assert (model.id, model.display_name, model.user_principal_name, model.business_phones) == \
        (body["id"], "Adele Vance", sent["userPrincipalName"], [])

    # With the documented response's other properties given, each comes back; a non-ASCII name as written.
    fuller = documented_user(tenant_a.domain, displayName="Adèle Vance “AV” 🎉", givenName="Adele", surname="Vance",
                             jobTitle="Product Marketing Manager", mobilePhone="+1 425 555 0109",
                             officeLocation="18/2111", preferredLanguage="en-US", businessPhones=["+1 425 555 0100"])
    check_created_user(graph, graph.ok("POST", "users", 201, json=fuller), fuller)

    in_batch = documented_user(tenant_a.domain)
    answer = graph.ok("POST", "$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"}, "body": in_batch}]})
    created = answer["responses"][0]
    assert created["status"] == 201, created
    check_created_user(graph, created["body"], in_batch)


# (page under api-reference/v1.0/api/, method, path, body, advanced query): Microsoft's documented requests, with ids
# adapted; each must answer 2xx.
DOCUMENTED = [
    ("user-list.md", "GET", "users?$select=displayName,mail,identities", None, False),
    ("user-list.md", "GET", "users?$filter=identities/any(c:c/issuerAssignedId eq 'j.smith@yahoo.com' and c/issuer eq 'My B2C tenant')&$select=displayName,id", None, False),
    ("user-list.md", "GET", "users?$filter=startswith(displayName,'a')&$orderby=displayName&$count=true&$top=1", None, True),
    ("user-list.md", "GET", "users?$filter=endswith(mail,'a@contoso.com')&$orderby=userPrincipalName&$count=true", None, True),
    ("user-list.md", "GET", 'users?$search="displayName:wa" OR "displayName:ad"&$orderby=displayName&$count=true', None, True),
    ("user-list.md", "GET", "users?$filter=signInActivity/lastSignInDateTime le 2019-06-01T00:00:00Z", None, False),
    ("user-list.md", "GET", "users?$select=displayName,id&$filter=assignedLicenses/any(x:x/skuId eq 184efa21-98c3-4e5d-95ab-d07053a96e67)", None, False),
    ("user-list.md", "GET", "users?$filter=assignedLicenses/$count eq 0&$count=true", None, True),
    ("user-list-memberof.md", "GET", "users/{u1}/memberOf?$count=true&$orderby=displayName&$filter=startswith(displayName, 'a')", None, True),
    ("user-list-transitivememberof.md", "GET", "users/{u1}/transitiveMemberOf/microsoft.graph.group?$count=true", None, True),
    ("user-update.md", "PATCH", "users/{u1}", {"businessPhones": ["+1 425 555 0109"], "officeLocation": "18/2111"}, False),
    ("user-update.md", "PATCH", "users/{u1}", {"passwordProfile": {"forceChangePasswordNextSignIn": False, "password": "xWwvJ]6NMw+bWH-d"}}, False),
    ("user-update.md", "PATCH", "users/{u1}", {"accountEnabled": False}, False),
    ("user-post-manager.md", "PUT", "users/{u1}/manager/$ref", {"@odata.id": "https://graph.microsoft.com/v1.0/users/{u2}"}, False),
    ("user-list-manager.md", "GET", "users/{u1}/manager", None, False),
    ("user-list-directreports.md", "GET", "users/{u2}/directReports", None, False),
    ("user-list-ownedobjects.md", "GET", "users/{u1}/ownedObjects", None, False),
    ("user-list-oauth2permissiongrants.md", "GET", "users/{u1}/oauth2PermissionGrants", None, False),
    ("user-delta.md", "GET", "users/delta?$select=displayName,givenName,surname", None, False),
    ("user-getmembergroups.md", "POST", "users/{u1}/getMemberGroups", {"securityEnabledOnly": False}, False),
    ("user-checkmemberobjects.md", "POST", "users/{u1}/checkMemberObjects", {"ids": ["{group}"]}, False),
    ("group-list.md", "GET", "groups?$filter=groupTypes/any(c:c+eq+'Unified')", None, False),
    ("group-list.md", "GET", "groups?$filter=startswith(displayName, 'a')&$count=true&$top=1&$orderby=displayName", None, True),
    ("group-list.md", "GET", 'groups?$search="displayName:Video" OR "description:prod"&$orderby=displayName&$count=true', None, True),
    ("group-list.md", "GET", "groups?$filter=mailEnabled eq false and securityEnabled eq true and NOT(groupTypes/any(s:s eq 'Unified')) and membershipRuleProcessingState eq 'On'&$count=true&$select=id,membershipRule,membershipRuleProcessingState", None, True),
    ("group-list.md", "GET", "groups?$filter=hasMembersWithLicenseErrors eq true", None, False),
    ("group-list-members.md", "GET", "groups/{group}/members?$count=true&$filter=startswith(displayName, 'a')", None, True),
    ("group-list-members.md", "GET", 'groups/{group}/members/microsoft.graph.user?$count=true&$orderby=displayName&$search="displayName:Pr"&$select=displayName,id', None, True),
    ("group-list-transitivemembers.md", "GET", "groups/{group}/transitiveMembers/microsoft.graph.user?$count=true", None, True),
    ("group-update.md", "PATCH", "groups/{group}", {"description": "Library Assist group", "displayName": "Library Assist"}, False),
    ("group-post-owners.md", "POST", "groups/{group}/owners/$ref", {"@odata.id": "https://graph.microsoft.com/v1.0/users/{u2}"}, False),
    ("group-delta.md", "GET", "groups/delta?$select=displayName,description,members", None, False),
    ("application-list.md", "GET", "applications?$count=true&$filter=startswith(displayName, 'a')", None, True),
    ("application-get.md", "GET", "applications/{app}?$select=id,appId,displayName,requiredResourceAccess", None, False),
    ("application-update.md", "PATCH", "applications/{app}", {"web": {"redirectUris": ["https://localhost/callback"]}}, False),
    ("application-update.md", "PATCH", "applications/{app}", {"appRoles": [{"allowedMemberTypes": ["User"], "description": "Writers", "displayName": "Writer", "id": "f9c7e1c4-4f4b-4e0a-9b0e-3f1c2d9a0b11", "isEnabled": True, "value": "Document.Write"}]}, False),
    ("application-post-owners.md", "POST", "applications/{app}/owners/$ref", {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/{u1}"}, False),
    ("serviceprincipal-update.md", "PATCH", "servicePrincipals/{sp}", {"appRoleAssignmentRequired": True}, False),
    ("serviceprincipal-list-approleassignedto.md", "GET", "servicePrincipals/{sp}/appRoleAssignedTo", None, False),
    ("serviceprincipal-get.md", "GET", "servicePrincipals(appId='00000003-0000-0000-c000-000000000000')?$select=appRoles", None, False),
    ("serviceprincipal-list.md", "GET", "servicePrincipals?$count=true&$search=\"displayName:Team\"", None, True),
    ("directoryobject-getbyids.md", "POST", "directoryObjects/getByIds", {"ids": ["{u1}", "{group}"], "types": ["user", "group"]}, False),
    ("directory-deleteditems-list.md", "GET", "directory/deletedItems/microsoft.graph.group", None, False),
    ("organization-get.md", "GET", "organization?$select=id,displayName,verifiedDomains", None, False),
    ("domain-list.md", "GET", "domains", None, False),
    ("rbacapplication-list-roledefinitions.md", "GET", "roleManagement/directory/roleDefinitions?$filter=displayName eq 'Helpdesk Administrator'", None, False),
    ("unifiedroledefinition-get.md", "GET", "roleManagement/directory/roleDefinitions/fdd7a751-b60b-444a-984c-02652fe8fa1c", None, False),
    ("rbacapplication-list-roleassignments.md", "GET", "roleManagement/directory/roleAssignments?$filter=principalId eq '{u1}'", None, False),
    ("rbacapplication-list-roleassignments.md", "GET", "roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'&$expand=principal", None, False),
    ("group-get.md", "GET", "groups/{group}?$expand=members", None, False),
    ("user-list-manager.md", "GET", "users/{u1}?$expand=manager", None, False),
    ("user-list-manager.md", "GET", "users/{u1}/?$expand=manager($select=id,displayName)", None, False),
    ("directoryrole-list.md", "GET", "directoryRoles", None, False),
    ("directoryaudit-list.md", "GET", "auditLogs/directoryAudits?$filter=loggedByService eq 'Core Directory'&$top=1", None, False),
    ("signin-list.md", "GET", "auditLogs/signIns?$filter=startsWith(appDisplayName,'Graph')&$top=10", None, False),
    ("conditionalaccessroot-list-policies.md", "GET", "identity/conditionalAccess/policies", None, False),
    ("conditionalaccessroot-list-namedlocations.md", "GET", "identity/conditionalAccess/namedLocations?$filter=modifiedDateTime ge 2019-09-01", None, False),
    ("authorizationpolicy-get.md", "GET", "policies/authorizationPolicy", None, False),
    ("oauth2permissiongrant-list.md", "GET", "oauth2PermissionGrants?$filter=clientId eq '{sp}'", None, False),
]


@pytest.mark.parametrize("page,method,path,body,advanced", DOCUMENTED, ids=[f"{d[0]}:{i}" for i, d in enumerate(DOCUMENTED)])
def test_documented_request_succeeds(graph, documented_objects, page, method, path, body, advanced):
    def fill(value):
        if isinstance(value, str):
            return value.format(**documented_objects)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value
    resp = graph.request(method, fill(path), json=fill(body), headers=ADVANCED if advanced else {})
    assert 200 <= resp.status_code < 300, f"{page}: {method} {path} answered {resp.status_code}: {resp.text[:500]}"
