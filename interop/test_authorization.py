"""Who may do what: bearer-token checks, tenant isolation and application permissions (appRoles)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from support import Graph, assert_graph_error, unique


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def call(tessera, token: str | None, path: str = "users", method: str = "GET", **kw):
    s = tessera.session()
    if token is not None:
        s.headers["Authorization"] = token if " " in token else f"Bearer {token}"
    return s.request(method, f"{tessera.base_url}/v1.0/{path}", **kw)


def assert_unauthenticated(resp):
    assert_graph_error(resp, 401, "InvalidAuthenticationToken")
    assert resp.headers.get("WWW-Authenticate", "").lower().startswith("bearer"), resp.headers


# ------------------------------------------------------------------------------------------------ bearer tokens
def test_no_token(tessera):
    assert_unauthenticated(call(tessera, None))


@pytest.mark.parametrize("value", ["Bearer not-a-jwt", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "Bearer "])
def test_garbage_authorization(tessera, value):
    assert_unauthenticated(call(tessera, value))


@pytest.fixture(scope="module")
def genuine(tessera, tenant_a):
    token = tessera.token(tenant_a)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    jwks = tessera.session().get(f"{tessera.base_url}/{tenant_a.tenant_id}/discovery/v2.0/keys").json()
    server_key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == header["kid"])).key
    return token, header, claims, server_key


def forge(kind: str, genuine) -> str:
    token, header, claims, server_key = genuine
    now = int(time.time())
    h, p, s = token.split(".")
    if kind == "tampered-payload":  # same signature, one more role
        return ".".join([h, segment({**claims, "roles": claims["roles"] + ["Mail.ReadWrite"]}), s])
    if kind == "truncated-signature":
        return f"{h}.{p}.{s[:-8]}"
    if kind == "alg-none":
        return ".".join([segment({"alg": "none", "typ": "JWT"}), p, ""])
    if kind == "hs256-with-public-key":  # the classic algorithm-confusion attack
        pem = server_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        head = segment({"alg": "HS256", "typ": "JWT", "kid": header["kid"]})
        mac = hmac.new(pem, f"{head}.{p}".encode(), hashlib.sha256).digest()
        return f"{head}.{p}.{b64url(mac)}"
    ours = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "signed-by-another-key":
        return jwt.encode(claims, ours, algorithm="RS256", headers={"kid": header["kid"]})
    if kind == "expired":
        old = {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}
        return jwt.encode(old, ours, algorithm="RS256", headers={"kid": header["kid"]})
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["tampered-payload", "truncated-signature", "alg-none", "hs256-with-public-key",
                                  "signed-by-another-key", "expired"])
def test_forged_tokens_are_rejected(tessera, genuine, kind):
    assert call(tessera, genuine[0]).status_code == 200  # the genuine token works ...
    assert_unauthenticated(call(tessera, forge(kind, genuine)))  # ... the forgery does not


# ------------------------------------------------------------------------------------------------ tenant isolation
@pytest.fixture(scope="module")
def victim(graph, tenant_a):
    return graph.create_user(tenant_a.domain, jobTitle="Untouched"), graph.create_group()


def test_tenant_b_cannot_read_tenant_a_objects(graph_b, victim):
    user, group = victim
    for path in (f"users/{user['id']}", f"users/{user['userPrincipalName']}", f"groups/{group['id']}",
                 f"groups/{group['id']}/members"):
        r = graph_b.get(path)
        assert r.status_code in (401, 403, 404), f"tenant B read {path}: {r.status_code} {r.text[:500]}"


def test_tenant_b_lists_only_its_own_objects(graph_b, tenant_a, tenant_b, victim):
    user, group = victim
    users = graph_b.all_pages("users", params={"$top": "999"})
    upns = {u["userPrincipalName"].lower() for u in users}
    assert user["id"] not in {u["id"] for u in users}
    assert tenant_a.admin_upn.lower() not in upns and tenant_b.admin_upn.lower() in upns
    assert not any(upn.endswith("@" + tenant_a.domain.lower()) for upn in upns)
    assert group["id"] not in {g["id"] for g in graph_b.all_pages("groups", params={"$top": "999"})}
    r = graph_b.get("users", params={"$filter": f"userPrincipalName eq '{user['userPrincipalName']}'"})
    assert r.status_code != 200 or r.json()["value"] == [], r.text
    org = graph_b.ok("GET", "organization")["value"]
    assert [o["id"] for o in org] == [tenant_b.tenant_id]


def test_tenant_b_cannot_change_tenant_a_objects(graph, graph_b, victim):
    user, group = victim
    attempts = [graph_b.patch(f"users/{user['id']}", json={"jobTitle": "changed by tenant B"}),
                graph_b.delete(f"users/{user['id']}"),
                graph_b.post(f"groups/{group['id']}/members/$ref",
                             json={"@odata.id": f"{graph_b.base}/directoryObjects/{user['id']}"})]
    assert all(r.status_code in (400, 401, 403, 404) for r in attempts), [(r.status_code, r.text) for r in attempts]
    assert graph.ok("GET", f"users/{user['id']}")["jobTitle"] == "Untouched"
    assert graph.ok("GET", f"groups/{group['id']}/members")["value"] == []


# ------------------------------------------------------------------------------------------------ app permissions
@pytest.fixture(scope="module")
def reader(tessera, graph, tenant_a):
    """An app granted only the Graph application permission User.Read.All, and a token for it."""
    app, sp = graph.create_app(unique("reader-"))
    assignment = graph.grant(sp["id"], "User.Read.All")
    secret = graph.add_password(app["id"])
    r = tessera.request_token(tenant_a.tenant_id, app["appId"], secret)
    assert r.status_code == 200, r.text
    return {"app": app, "sp": sp, "assignment": assignment, "secret": secret,
            "graph": Graph(tessera, r.json()["access_token"])}


def test_grant_is_visible_on_both_service_principals(graph, reader):
    sp, assignment = reader["sp"], reader["assignment"]
    assert assignment["principalId"] == sp["id"] and assignment["id"]
    mine = graph.ok("GET", f"servicePrincipals/{sp['id']}/appRoleAssignments")["value"]
    assert [a["id"] for a in mine] == [assignment["id"]]
    graph_sp = graph.graph_service_principal()
    assert assignment["resourceId"] == graph_sp["id"]
    assigned_to = graph.all_pages(f"servicePrincipals/{graph_sp['id']}/appRoleAssignedTo")
    assert assignment["id"] in {a["id"] for a in assigned_to}


def test_token_carries_only_the_granted_role(reader):
    claims = jwt.decode(reader["graph"].token, options={"verify_signature": False})
    assert claims["roles"] == ["User.Read.All"]
    assert claims["appid"] == reader["app"]["appId"] and claims["oid"] == reader["sp"]["id"]


def test_reader_can_read_users(reader, victim):
    g = reader["graph"]
    assert g.get("users").status_code == 200
    assert g.ok("GET", f"users/{victim[0]['id']}")["id"] == victim[0]["id"]


@pytest.mark.parametrize("method,path,body", [
    ("POST", "users", {"accountEnabled": True, "displayName": "nope", "mailNickname": "nope",
                       "userPrincipalName": "nope@DOMAIN", "passwordProfile": {"password": "Interop-Passw0rd!"}}),
    ("PATCH", "users/VICTIM", {"jobTitle": "changed by a reader"}),
    ("DELETE", "users/VICTIM", None),
    ("GET", "groups", None),
    ("POST", "applications", {"displayName": "nope"}),
    ("GET", "roleManagement/directory/roleAssignments", None),
])
def test_reader_is_denied_everything_else(reader, victim, tenant_a, method, path, body):
    path = path.replace("VICTIM", victim[0]["id"])
    if body and "userPrincipalName" in body:
        body = {**body, "userPrincipalName": f"{unique('nope')}@{tenant_a.domain}"}
    r = reader["graph"].request(method, path, json=body)
    assert_graph_error(r, 403, "Authorization_RequestDenied")


def test_revoked_grant_applies_to_new_tokens(tessera, graph, tenant_a):
    app, sp = graph.create_app(unique("revoked-"))
    assignment = graph.grant(sp["id"], "User.Read.All")
    secret = graph.add_password(app["id"])
    graph.ok("DELETE", f"servicePrincipals/{sp['id']}/appRoleAssignments/{assignment['id']}", 204)
    r = tessera.request_token(tenant_a.tenant_id, app["appId"], secret)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert jwt.decode(token, options={"verify_signature": False}).get("roles", []) == []
    assert_graph_error(call(tessera, token, "users"), 403, "Authorization_RequestDenied")
