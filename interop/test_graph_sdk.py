"""The official Microsoft Graph Python SDK (msgraph-sdk) against Tessera, authenticated by azure-identity.

Every call goes through GraphServiceClient (kiota + httpx, HTTP/2 offered) with an access token that
azure.identity.aio.ClientSecretCredential got from Tessera's token endpoint (see the `sdk` fixture).
"""
from __future__ import annotations

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.applications.item.add_password.add_password_post_request_body import (
    AddPasswordPostRequestBody)
from msgraph.generated.applications.item.remove_password.remove_password_post_request_body import (
    RemovePasswordPostRequestBody)
from msgraph.generated.models.application import Application
from msgraph.generated.models.group import Group
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.password_profile import PasswordProfile
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.user import User
from msgraph.generated.role_management.directory.role_assignments.role_assignments_request_builder import (
    RoleAssignmentsRequestBuilder)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core.tasks.page_iterator import PageIterator

from support import (ADVANCED, DUPLICATE_UPN_MESSAGE, GLOBAL_ADMIN_ROLE_ID, PASSWORD, assert_oauth_error,
                      unique)


def new_user(domain: str, display_name: str | None = None, **props) -> User:
    nick = unique("sdk")
    return User(account_enabled=True, display_name=display_name or nick, mail_nickname=nick,
                user_principal_name=f"{nick}@{domain}",
                password_profile=PasswordProfile(force_change_password_next_sign_in=False, password=PASSWORD),
                **props)


def new_group(**props) -> Group:
    nick = unique("sdkg")
    return Group(display_name=nick, mail_enabled=False, mail_nickname=nick, security_enabled=True, **props)


def odata_error(sdk, coro) -> ODataError:
    with pytest.raises(ODataError) as info:
        sdk.run(coro)
    return info.value


def ref(object_id: str) -> ReferenceCreate:
    # As Microsoft's own samples write it: the real Graph host, whatever host the request goes to.
    return ReferenceCreate(odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{object_id}")


def users_config(**query) -> RequestConfiguration:
    cfg = RequestConfiguration(query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(**query))
    cfg.headers.add("ConsistencyLevel", ADVANCED["ConsistencyLevel"])
    return cfg


def collect(sdk, first) -> list:
    items = []

    def keep(item):
        items.append(item)
        return True

    sdk.run(PageIterator(first, sdk.client.request_adapter).iterate(keep))
    return items


@pytest.fixture(scope="module")
def listed(sdk, tenant_a):
    """Three users with a common display-name prefix, created out of order, all with jobTitle Engineer."""
    prefix = unique("SdkList")
    for i in (3, 1, 2):
        sdk.run(sdk.client.users.post(new_user(tenant_a.domain, f"{prefix} {i}", job_title="Engineer")))
    return prefix


def test_create_user_then_get_by_id_and_upn(sdk, tenant_a):
    body = new_user(tenant_a.domain, "Ada Interop", job_title="Analyst")
    created = sdk.run(sdk.client.users.post(body))
    assert created.id and created.user_principal_name == body.user_principal_name
    by_id = sdk.run(sdk.client.users.by_user_id(created.id).get())
    assert by_id.display_name == "Ada Interop" and by_id.job_title == "Analyst"
    by_upn = sdk.run(sdk.client.users.by_user_id(body.user_principal_name).get())
    assert by_upn.id == created.id


def test_list_users_with_filter_select_top_count_orderby(sdk, listed):
    cfg = users_config(filter=f"startswith(displayName,'{listed}')", select=["id", "displayName"], top=2,
                       count=True, orderby=["displayName"])
    page = sdk.run(sdk.client.users.get(request_configuration=cfg))
    assert page.odata_count == 3
    assert [u.display_name for u in page.value] == [f"{listed} 1", f"{listed} 2"]
    assert all(u.job_title is None for u in page.value), "$select=id,displayName must leave jobTitle out"
    assert page.odata_next_link, "3 matches with $top=2 must give a nextLink"
    next_cfg = RequestConfiguration()
    next_cfg.headers.add("ConsistencyLevel", ADVANCED["ConsistencyLevel"])
    last = sdk.run(sdk.client.users.with_url(page.odata_next_link).get(request_configuration=next_cfg))
    assert [u.display_name for u in last.value] == [f"{listed} 3"]
    assert not last.odata_next_link


def test_page_iterator_walks_every_page(sdk, listed):
    cfg = users_config(filter=f"startswith(displayName,'{listed}')", top=2)
    first = sdk.run(sdk.client.users.get(request_configuration=cfg))
    assert len(first.value) == 2 and first.odata_next_link
    names = sorted(u.display_name for u in collect(sdk, first))
    assert names == [f"{listed} 1", f"{listed} 2", f"{listed} 3"]


def test_page_iterator_follows_keyset_links_in_orderby_desc(sdk, listed):
    # $orderby with $filter is an advanced query in Entra: $count=true and ConsistencyLevel on every page.
    cfg = users_config(filter=f"startswith(displayName,'{listed}')", orderby=["displayName desc"], top=1, count=True,
                       select=["id", "displayName"])
    first = sdk.run(sdk.client.users.get(request_configuration=cfg))
    assert [u.display_name for u in first.value] == [f"{listed} 3"] and first.odata_next_link
    items = []
    iterator = PageIterator(first, sdk.client.request_adapter)
    # PageIterator.set_headers passes the dict as keyword arguments to HeadersCollection.add_all, which takes none.
    iterator.headers.add("ConsistencyLevel", ADVANCED["ConsistencyLevel"])
    sdk.run(iterator.iterate(lambda user: items.append(user.display_name) or True))
    assert items == [f"{listed} 3", f"{listed} 2", f"{listed} 1"]


def test_next_link_moves_with_nothing_written_before_it(sdk, tenant_a):
    """The next link is a position, not an offset: users created or deleted before it skip or repeat nobody."""
    prefix = unique("SdkKeyset")
    ids = {}
    for i in range(5):
        ids[i] = sdk.run(sdk.client.users.post(new_user(tenant_a.domain, f"{prefix} {i}"))).id
    cfg = users_config(filter=f"startswith(displayName,'{prefix}')", orderby=["displayName"], top=2, count=True,
                       select=["id", "displayName"])
    page = sdk.run(sdk.client.users.get(request_configuration=cfg))
    assert [u.display_name for u in page.value] == [f"{prefix} 0", f"{prefix} 1"]
    for i in (0, 1):
        sdk.run(sdk.client.users.by_user_id(ids[i]).delete())
    sdk.run(sdk.client.users.post(new_user(tenant_a.domain, f"{prefix} 00")))
    next_cfg = RequestConfiguration()
    next_cfg.headers.add("ConsistencyLevel", ADVANCED["ConsistencyLevel"])
    seen = []
    while page.odata_next_link:
        page = sdk.run(sdk.client.users.with_url(page.odata_next_link).get(request_configuration=next_cfg))
        seen += [u.display_name for u in page.value]
    assert seen == [f"{prefix} 2", f"{prefix} 3", f"{prefix} 4"]


def test_patch_user(sdk, tenant_a):
    created = sdk.run(sdk.client.users.post(new_user(tenant_a.domain)))
    sdk.run(sdk.client.users.by_user_id(created.id).patch(User(job_title="Interop Lead", office_location="B1")))
    got = sdk.run(sdk.client.users.by_user_id(created.id).get())
    assert (got.job_title, got.office_location) == ("Interop Lead", "B1")


def test_duplicate_upn_is_a_conflict(sdk, tenant_a):
    body = new_user(tenant_a.domain)
    sdk.run(sdk.client.users.post(body))
    again = new_user(tenant_a.domain)
    again.user_principal_name = body.user_principal_name
    err = odata_error(sdk, sdk.client.users.post(again))
    assert err.response_status_code == 400
    assert err.error.code == "Request_BadRequest"
    assert DUPLICATE_UPN_MESSAGE in err.error.message


def test_missing_user_is_request_resource_not_found(sdk):
    err = odata_error(sdk, sdk.client.users.by_user_id("9d1d5a3c-0000-4000-8000-000000000404").get())
    assert err.response_status_code == 404
    assert err.error.code == "Request_ResourceNotFound"


def test_delete_then_restore_user(sdk, tenant_a):
    created = sdk.run(sdk.client.users.post(new_user(tenant_a.domain)))
    sdk.run(sdk.client.users.by_user_id(created.id).delete())
    assert odata_error(sdk, sdk.client.users.by_user_id(created.id).get()).response_status_code == 404

    deleted = collect(sdk, sdk.run(sdk.client.directory.deleted_items.graph_user.get()))
    match = [u for u in deleted if u.id == created.id]
    assert len(match) == 1 and match[0].deleted_date_time is not None

    restored = sdk.run(sdk.client.directory.deleted_items.by_directory_object_id(created.id).restore.post())
    assert restored.id == created.id
    assert sdk.run(sdk.client.users.by_user_id(created.id).get()).user_principal_name == created.user_principal_name
    deleted = collect(sdk, sdk.run(sdk.client.directory.deleted_items.graph_user.get()))
    assert created.id not in {u.id for u in deleted}


def test_group_members_nested_and_transitive(sdk, tenant_a):
    c = sdk.client
    outer, inner = sdk.run(c.groups.post(new_group())), sdk.run(c.groups.post(new_group()))
    u1 = sdk.run(c.users.post(new_user(tenant_a.domain)))
    u2 = sdk.run(c.users.post(new_user(tenant_a.domain)))
    sdk.run(c.groups.by_group_id(outer.id).members.ref.post(ref(u1.id)))
    sdk.run(c.groups.by_group_id(outer.id).members.ref.post(ref(inner.id)))
    sdk.run(c.groups.by_group_id(inner.id).members.ref.post(ref(u2.id)))

    members = sdk.run(c.groups.by_group_id(outer.id).members.get()).value
    assert {m.id: type(m) for m in members} == {u1.id: User, inner.id: Group}  # typed by @odata.type
    transitive = sdk.run(c.groups.by_group_id(outer.id).transitive_members.get()).value
    assert {m.id for m in transitive} == {u1.id, inner.id, u2.id}
    assert {g.id for g in sdk.run(c.users.by_user_id(u2.id).member_of.get()).value} == {inner.id}
    assert {g.id for g in sdk.run(c.users.by_user_id(u2.id).transitive_member_of.get()).value} == {
        inner.id, outer.id}

    err = odata_error(sdk, c.groups.by_group_id(outer.id).members.ref.post(ref(u1.id)))  # already a member
    assert err.response_status_code == 400 and err.error.code == "Request_BadRequest"

    sdk.run(c.groups.by_group_id(outer.id).members.by_directory_object_id(u1.id).ref.delete())
    assert {m.id for m in sdk.run(c.groups.by_group_id(outer.id).members.get()).value} == {inner.id}


def test_application_password_and_service_principal(sdk, tessera, tenant_a):
    c = sdk.client
    app = sdk.run(c.applications.post(Application(display_name=unique("sdk-app-"))))
    assert app.id and app.app_id
    pw = sdk.run(c.applications.by_application_id(app.id).add_password.post(
        AddPasswordPostRequestBody(password_credential=PasswordCredential(display_name="interop"))))
    assert pw.secret_text and pw.key_id
    sp = sdk.run(c.service_principals.post(ServicePrincipal(app_id=app.app_id)))
    assert sp.id and sp.app_id == app.app_id

    # the new secret is a working client credential for the new app ...
    r = tessera.request_token(tenant_a.tenant_id, app.app_id, pw.secret_text)
    assert r.status_code == 200, r.text
    # ... until it is removed
    sdk.run(c.applications.by_application_id(app.id).remove_password.post(
        RemovePasswordPostRequestBody(key_id=pw.key_id)))
    assert_oauth_error(tessera.request_token(tenant_a.tenant_id, app.app_id, pw.secret_text), "invalid_client")


def test_role_definitions_include_global_administrator(sdk):
    definitions = collect(sdk, sdk.run(sdk.client.role_management.directory.role_definitions.get()))
    ga = [d for d in definitions if d.id == GLOBAL_ADMIN_ROLE_ID]
    assert len(ga) == 1, [d.display_name for d in definitions]
    assert ga[0].display_name == "Global Administrator" and ga[0].is_built_in


def test_role_assignment_for_user(sdk, tenant_a):
    c = sdk.client
    user = sdk.run(c.users.post(new_user(tenant_a.domain)))
    assignment = sdk.run(c.role_management.directory.role_assignments.post(UnifiedRoleAssignment(
        principal_id=user.id, role_definition_id=GLOBAL_ADMIN_ROLE_ID, directory_scope_id="/")))
    assert assignment.id and assignment.principal_id == user.id
    assert assignment.role_definition_id == GLOBAL_ADMIN_ROLE_ID
    qp = RoleAssignmentsRequestBuilder.RoleAssignmentsRequestBuilderGetQueryParameters(
        filter=f"principalId eq '{user.id}'")
    listed = sdk.run(c.role_management.directory.role_assignments.get(
        request_configuration=RequestConfiguration(query_parameters=qp))).value
    assert [(a.id, a.role_definition_id) for a in listed] == [(assignment.id, GLOBAL_ADMIN_ROLE_ID)]


def test_organization(sdk, tenant_a):
    orgs = sdk.run(sdk.client.organization.get()).value
    assert len(orgs) == 1
    org = orgs[0]
    assert org.id == tenant_a.tenant_id and org.display_name == "Contoso"
    assert tenant_a.domain in {d.name for d in org.verified_domains}
