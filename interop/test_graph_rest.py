"""Microsoft Graph over plain HTTP (requests + a client-credentials token): OData queries, validation, delta,
$batch, ETags, concurrency and the audit log."""
from __future__ import annotations

import concurrent.futures
import json
import threading

import pytest

from support import ADVANCED, DUPLICATE_UPN_MESSAGE, PASSWORD, assert_graph_error, unique

ADVANCED_COUNT = {"headers": ADVANCED, "params": {"$count": "true"}}


@pytest.fixture(scope="module")
def people(graph, tenant_a):
    """Three users sharing a display-name prefix, each with its own mail address."""
    prefix = unique("Rest")
    users = []
    for i in range(3):
        nick = f"{prefix.lower()}{i}"
        users.append(graph.create_user(tenant_a.domain, nick, displayName=f"{prefix} {i}",
                                       mail=f"{nick}@{tenant_a.domain}", jobTitle=f"Role {i}"))
    return prefix, users


def ids(items) -> set:
    return {i["id"] for i in items}


def q(graph, filter_: str, **kw):
    return graph.get("users", params={"$filter": filter_, **kw.pop("params", {})}, **kw)


# ------------------------------------------------------------------------------------------------ $filter
def test_filter_startswith(graph, people):
    prefix, users = people
    assert ids(graph.ok("GET", "users", params={"$filter": f"startswith(displayName,'{prefix}')"})["value"]) == ids(
        users)


def test_filter_in_and_or(graph, people):
    _, users = people
    upns = ",".join(f"'{u['userPrincipalName']}'" for u in users[:2])
    assert ids(graph.ok("GET", "users", params={"$filter": f"userPrincipalName in ({upns})"})["value"]) == ids(
        users[:2])
    either = f"id eq '{users[0]['id']}' or id eq '{users[2]['id']}'"
    assert ids(graph.ok("GET", "users", params={"$filter": either})["value"]) == {users[0]["id"], users[2]["id"]}
    both = f"startswith(displayName,'{people[0]}') and jobTitle eq 'Role 1'"
    assert ids(graph.ok("GET", "users", params={"$filter": both})["value"]) == {users[1]["id"]}


def test_filter_any_over_proxy_addresses(graph, people, tenant_a):
    # Entra derives proxyAddresses from mail (primary SMTP:<mail>); filter with a lambda over the collection.
    _, users = people
    mail = users[1]["mail"]
    got = graph.ok("GET", f"users/{users[1]['id']}", params={"$select": "mail,proxyAddresses"})
    assert f"smtp:{mail}".lower() in [p.lower() for p in got["proxyAddresses"]], got
    found = graph.ok("GET", "users", params={"$filter": f"proxyAddresses/any(p:p eq 'SMTP:{mail}')"})["value"]
    assert ids(found) == {users[1]["id"]}
    stem = mail.split("@")[0][:-1]  # common to all three addresses
    found = graph.ok("GET", "users", params={"$filter": f"proxyAddresses/any(p:startswith(p,'smtp:{stem}'))"})
    assert ids(found["value"]) == ids(users)


@pytest.mark.parametrize("filter_", ["displayName ne 'nobody'", "not(startswith(displayName,'zzz'))",
                                     "endswith(userPrincipalName,'@DOMAIN')"])
def test_advanced_filters_need_consistency_level(graph, people, tenant_a, filter_):
    filter_ = filter_.replace("DOMAIN", tenant_a.domain)
    prefix, users = people
    assert_graph_error(q(graph, filter_), 400, "Request_UnsupportedQuery")
    r = q(graph, f"{filter_} and startswith(displayName,'{prefix}')", **ADVANCED_COUNT)
    assert r.status_code == 200, r.text
    assert ids(r.json()["value"]) == ids(users) and r.json()["@odata.count"] == 3


def test_count_and_orderby(graph, people):
    prefix, users = people
    r = graph.get("users", headers=ADVANCED, params={
        "$filter": f"startswith(displayName,'{prefix}')", "$count": "true", "$orderby": "displayName desc",
        "$select": "displayName"})
    assert r.status_code == 200, r.text
    assert r.json()["@odata.count"] == 3
    assert [u["displayName"] for u in r.json()["value"]] == [f"{prefix} 2", f"{prefix} 1", f"{prefix} 0"]


def test_dollar_count_segment_is_plain_text(graph, people):
    r = graph.get("users/$count", headers=ADVANCED)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    assert int(r.text) >= 4  # the admin user and the three people


def test_search_display_name(graph, tenant_a):
    word = unique("Zebra")
    user = graph.create_user(tenant_a.domain, displayName=f"{word} Searchable")
    r = graph.get("users", headers=ADVANCED, params={"$search": f'"displayName:{word}"'})
    assert r.status_code == 200, r.text
    assert ids(r.json()["value"]) == {user["id"]}


def test_top_bounds(graph):
    assert graph.get("users", params={"$top": "999"}).status_code == 200
    assert_graph_error(graph.get("users", params={"$top": "1000"}), 400)


def test_malformed_filter(graph):
    assert_graph_error(graph.get("users", params={"$filter": "displayName eq"}), 400, "Request_BadRequest")
    assert_graph_error(graph.get("users", params={"$filter": "startswith(displayName,'x'"}), 400)


# ------------------------------------------------------------------------------------------------ bodies
def user_body(domain: str, **extra) -> dict:
    nick = unique("v")
    return {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{domain}",
            "passwordProfile": {"password": PASSWORD, "forceChangePasswordNextSignIn": False}, **extra}


def test_malformed_json_body(graph):
    r = graph.post("users", data=b'{"accountEnabled": true, "displayName": ', headers={
        "Content-Type": "application/json"})
    assert_graph_error(r, 400)


def test_unknown_property_is_rejected(graph, tenant_a):
    body = user_body(tenant_a.domain, favouriteColour="teal")
    assert_graph_error(graph.post("users", json=body), 400)
    assert graph.get(f"users/{body['userPrincipalName']}").status_code == 404


def test_wrong_type_is_rejected(graph, tenant_a):
    body = user_body(tenant_a.domain, accountEnabled="yes")
    assert_graph_error(graph.post("users", json=body), 400)
    assert graph.get(f"users/{body['userPrincipalName']}").status_code == 404


def test_oversized_body(graph, tenant_a):
    body = json.dumps(user_body(tenant_a.domain, displayName="x" * (5 * 1024 * 1024)))
    r = graph.post("users", data=body.encode(), headers={"Content-Type": "application/json"})
    assert_graph_error(r, (400, 413))


# ------------------------------------------------------------------------------------------------ delta
def run_delta(graph, url: str, **kw) -> tuple[list[dict], str]:
    items = []
    for _ in range(500):
        page = graph.ok("GET", url, **kw)
        items.extend(page["value"])
        kw.pop("params", None)
        if "@odata.deltaLink" in page:
            assert "@odata.nextLink" not in page
            return items, page["@odata.deltaLink"]
        url = page["@odata.nextLink"]
    raise AssertionError("delta never ended with a deltaLink")


def test_users_delta(graph, tenant_a):
    keep = graph.create_user(tenant_a.domain)
    doomed = graph.create_user(tenant_a.domain)
    initial, delta_link = run_delta(graph, "users/delta", params={"$select": "displayName,jobTitle"})
    assert {keep["id"], doomed["id"]} <= ids(initial)
    assert delta_link.startswith(graph.tessera.base_url + "/")
    assert not any("@removed" in u for u in initial)

    fresh = graph.create_user(tenant_a.domain)
    graph.ok("PATCH", f"users/{keep['id']}", 204, json={"jobTitle": "Changed by delta test"})
    graph.ok("DELETE", f"users/{doomed['id']}", 204)

    changes, next_delta = run_delta(graph, delta_link)
    by_id = {c["id"]: c for c in changes}
    assert len(changes) == len(by_id) == 3 and set(by_id) == {fresh["id"], keep["id"], doomed["id"]}, changes
    assert "@removed" in by_id[doomed["id"]]
    assert "@removed" not in by_id[fresh["id"]] and "@removed" not in by_id[keep["id"]]
    assert by_id[keep["id"]]["jobTitle"] == "Changed by delta test"
    assert run_delta(graph, next_delta)[0] == []  # nothing changed since


def test_groups_delta_returns_a_delta_link(graph):
    group = graph.create_group()
    items, link = run_delta(graph, "groups/delta")
    assert group["id"] in ids(items) and link


# ------------------------------------------------------------------------------------------------ $batch
def test_batch_with_depends_on(graph, tenant_a):
    body = user_body(tenant_a.domain)
    r = graph.post("$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": "/users", "headers": {"Content-Type": "application/json"},
         "body": body},
        {"id": "2", "method": "GET", "url": f"/users/{body['userPrincipalName']}?$select=id,userPrincipalName",
         "dependsOn": ["1"]},
        {"id": "3", "method": "GET", "url": "/users/00000000-0000-4000-8000-00000000dead"},
    ]})
    assert r.status_code == 200, r.text
    responses = {x["id"]: x for x in r.json()["responses"]}
    assert responses["1"]["status"] == 201
    assert responses["2"]["status"] == 200
    assert responses["2"]["body"]["id"] == responses["1"]["body"]["id"]
    assert responses["3"]["status"] == 404
    assert responses["3"]["body"]["error"]["code"] == "Request_ResourceNotFound"


def test_batch_over_twenty_requests_is_rejected(graph):
    reqs = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(1, 22)]
    assert_graph_error(graph.post("$batch", json={"requests": reqs}), 400)


# ------------------------------------------------------------------------------------------------ ETags
def test_if_match_etag(graph, tenant_a):
    user = graph.create_user(tenant_a.domain)
    etag = graph.ok("GET", f"users/{user['id']}").get("@odata.etag")
    assert etag, "users must carry @odata.etag"
    assert_graph_error(graph.patch(f"users/{user['id']}", json={"jobTitle": "x"},
                                   headers={"If-Match": 'W/"not-the-etag"'}), 412)
    assert graph.patch(f"users/{user['id']}", json={"jobTitle": "y"}, headers={"If-Match": etag}).status_code == 204
    assert_graph_error(graph.patch(f"users/{user['id']}", json={"jobTitle": "z"}, headers={"If-Match": etag}), 412)
    assert graph.ok("GET", f"users/{user['id']}")["jobTitle"] == "y"


# ------------------------------------------------------------------------------------------------ concurrency
def test_concurrent_duplicate_upn_creates_exactly_one(graph, tenant_a):
    body = user_body(tenant_a.domain)
    start = threading.Barrier(20)

    def create(_):
        s = graph.tessera.session()  # one connection per thread
        s.headers["Authorization"] = f"Bearer {graph.token}"
        start.wait(timeout=30)
        r = s.post(graph.url("users"), json=body)
        return r.status_code, r.json()

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(create, range(20)))
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1, statuses
    for status, payload in results:
        if status != 201:
            assert status == 400, (status, payload)
            assert payload["error"]["code"] == "Request_BadRequest"
            assert DUPLICATE_UPN_MESSAGE in payload["error"]["message"]
    same = graph.ok("GET", "users", params={"$filter": f"userPrincipalName eq '{body['userPrincipalName']}'"})
    assert len(same["value"]) == 1


# ------------------------------------------------------------------------------------------------ audit log
def test_audit_log_records_user_creation(graph, tenant_a):
    user = graph.create_user(tenant_a.domain)
    entries = graph.all_pages("auditLogs/directoryAudits",
                              params={"$filter": "activityDisplayName eq 'Add user'", "$top": "100"})
    mine = [e for e in entries if user["id"] in {t.get("id") for t in e.get("targetResources", [])}]
    assert len(mine) == 1, f"{len(entries)} 'Add user' entries, none for {user['id']}"
    entry = mine[0]
    assert entry["activityDisplayName"] == "Add user"
    assert entry["category"] == "UserManagement" and entry["result"] == "success"
    assert entry["initiatedBy"]["app"]["appId"] == tenant_a.client_id
    assert entry["activityDateTime"]
