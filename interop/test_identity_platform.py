"""Identity platform: discovery, JWKS and the token endpoint, driven by MSAL, azure-identity and PyJWT."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid

import jwt
import msal
import pytest
from azure.identity import ClientSecretCredential
from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
from cryptography.hazmat.primitives import serialization

from support import ADMIN_PERMISSIONS, GRAPH_AUDIENCE, GRAPH_SCOPE, assert_oauth_error, self_signed_certificate, unique

GUID_LEN = 36


def discovery(tessera, tenant_ref: str) -> dict:
    r = tessera.session().get(f"{tessera.base_url}/{tenant_ref}/v2.0/.well-known/openid-configuration")
    assert r.status_code == 200, r.text
    return r.json()


def verify_access_token(tessera, token: str, tenant_ref: str) -> dict:
    """Verify signature (JWKS from discovery), issuer, audience and lifetime; return the claims."""
    meta = discovery(tessera, tenant_ref)
    jwks = tessera.session().get(meta["jwks_uri"]).json()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256", header
    assert header.get("typ", "JWT") == "JWT", header
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    assert key, f"kid {header.get('kid')} not in JWKS"
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=GRAPH_AUDIENCE,
                      issuer=meta["issuer"], options={"require": ["exp", "iat", "nbf", "iss", "aud"]})


def msal_app(tessera, tenant_ref: str, client_id: str, credential) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=credential, authority=tessera.authority(tenant_ref),
        instance_discovery=False, http_client=tessera.session())


def test_discovery_document(tessera, tenant_a):
    meta = discovery(tessera, tenant_a.tenant_id)
    base, tid = tessera.base_url, tenant_a.tenant_id
    assert meta["issuer"] == f"{base}/{tid}/v2.0"
    assert meta["token_endpoint"] == f"{base}/{tid}/oauth2/v2.0/token"
    assert meta["jwks_uri"] == f"{base}/{tid}/discovery/v2.0/keys"
    assert meta["authorization_endpoint"].startswith(f"{base}/{tid}/oauth2/v2.0/authorize")
    assert "RS256" in meta["id_token_signing_alg_values_supported"]
    assert {"client_secret_post", "client_secret_basic", "private_key_jwt"} <= set(
        meta["token_endpoint_auth_methods_supported"])


def test_jwks_has_rs256_signing_keys(tessera, tenant_a):
    jwks = tessera.session().get(discovery(tessera, tenant_a.tenant_id)["jwks_uri"]).json()
    assert jwks["keys"], jwks
    for k in jwks["keys"]:
        assert k["kty"] == "RSA" and k.get("use", "sig") == "sig", k
        assert k["kid"] and k["x5t"] and k["n"] and k["e"], k
        jwt.PyJWK(k)  # parses as an RSA public key
        if k.get("x5c"):  # when the certificate is published, x5t must be its SHA-1 thumbprint
            der = base64.b64decode(k["x5c"][0])
            assert k["x5t"] == base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()


def test_msal_client_credentials_then_cache(tessera, tenant_a):
    app = msal_app(tessera, tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret)
    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in first, first
    assert first["token_type"].lower() == "bearer"
    assert first["expires_in"] > 300
    assert first.get("token_source") == "identity_provider"
    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert second.get("token_source") == "cache"
    assert second["access_token"] == first["access_token"]


def test_access_token_claims_verified_with_jwks(tessera, tenant_a, graph):
    app = msal_app(tessera, tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret)
    token = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
    claims = verify_access_token(tessera, token, tenant_a.tenant_id)
    assert claims["iss"] == f"{tessera.base_url}/{tenant_a.tenant_id}/v2.0"
    assert claims["aud"] == GRAPH_AUDIENCE
    assert claims["tid"] == tenant_a.tenant_id
    assert claims["appid"] == claims["azp"] == tenant_a.client_id
    assert claims["ver"] == "2.0"
    assert ADMIN_PERMISSIONS <= set(claims["roles"]), claims["roles"]
    now = time.time()
    assert claims["nbf"] <= now + 60 and claims["iat"] <= now + 60
    assert claims["exp"] > now and claims["exp"] - claims["iat"] >= 600
    # oid is the object id of the app's service principal in this tenant
    sps = graph.ok("GET", "servicePrincipals", params={"$filter": f"appId eq '{tenant_a.client_id}'"})["value"]
    assert [sp["id"] for sp in sps] == [claims["oid"]]


def test_azure_identity_sync_credential(tessera, tenant_a):
    cred = ClientSecretCredential(tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret,
                                  authority=tessera.base_url, disable_instance_discovery=True,
                                  connection_verify=tessera.ca)
    tok = cred.get_token(GRAPH_SCOPE)
    assert tok.expires_on > time.time() + 300
    assert verify_access_token(tessera, tok.token, tenant_a.tenant_id)["appid"] == tenant_a.client_id


def test_azure_identity_async_credential(tessera, tenant_a):
    async def fetch():
        async with AsyncClientSecretCredential(
                tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret, authority=tessera.base_url,
                disable_instance_discovery=True, connection_verify=tessera.ca) as cred:
            return await cred.get_token(GRAPH_SCOPE)

    tok = asyncio.run(fetch())
    assert verify_access_token(tessera, tok.token, tenant_a.tenant_id)["tid"] == tenant_a.tenant_id


def test_client_secret_basic(tessera, tenant_a):
    r = tessera.session().post(tessera.token_endpoint(tenant_a.tenant_id),
                               data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE},
                               auth=(tenant_a.client_id, tenant_a.client_secret))
    assert r.status_code == 200, r.text
    assert r.json()["token_type"].lower() == "bearer"


def test_wrong_secret_is_invalid_client(tessera, tenant_a):
    app = msal_app(tessera, tenant_a.tenant_id, tenant_a.client_id, "not-the-secret")
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert result.get("error") == "invalid_client", result
    assert "access_token" not in result and result.get("error_description")
    assert_oauth_error(tessera.request_token(tenant_a.tenant_id, tenant_a.client_id, "not-the-secret"),
                       "invalid_client")


def test_unknown_client(tessera, tenant_a):
    # The brief says invalid_client; Entra itself answers unauthorized_client (AADSTS700016) here.
    r = tessera.request_token(tenant_a.tenant_id, str(uuid.uuid4()), "whatever")
    assert_oauth_error(r, ("invalid_client", "unauthorized_client"))


def test_client_of_tenant_a_cannot_authenticate_at_tenant_b(tessera, tenant_a, tenant_b):
    r = tessera.request_token(tenant_b.tenant_id, tenant_a.client_id, tenant_a.client_secret)
    assert_oauth_error(r, ("invalid_client", "unauthorized_client"))


def test_unsupported_grant_type(tessera, tenant_a):
    r = tessera.request_token(tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret,
                              grant_type="urn:example:not-a-grant")
    assert_oauth_error(r, "unsupported_grant_type", statuses=(400,))


def test_scope_without_default_suffix_is_invalid_scope(tessera, tenant_a):
    r = tessera.request_token(tenant_a.tenant_id, tenant_a.client_id, tenant_a.client_secret,
                              scope="https://graph.microsoft.com/User.Read.All")
    assert_oauth_error(r, "invalid_scope", statuses=(400,))


def test_missing_client_id_is_invalid_request(tessera, tenant_a):
    r = tessera.session().post(tessera.token_endpoint(tenant_a.tenant_id),
                               data={"grant_type": "client_credentials", "scope": GRAPH_SCOPE})
    assert_oauth_error(r, ("invalid_request", "invalid_client"))


# ---------------------------------------------------------------------------------------- private_key_jwt
def make_certificate(common_name: str):
    key, cert = self_signed_certificate(common_name)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return key, pem, cert.public_bytes(serialization.Encoding.DER)


def client_assertion(key, der: bytes, client_id: str, audience: str, jti: str | None = None,
                     lifetime: int = 600, age: int = 0) -> str:
    now = int(time.time()) - age
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode()
    claims = {"aud": audience, "iss": client_id, "sub": client_id, "jti": jti or str(uuid.uuid4()),
              "nbf": now, "iat": now, "exp": now + lifetime}
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t})


def assertion_request(tessera, tenant_ref: str, client_id: str, assertion: str):
    return tessera.request_token(
        tenant_ref, client_id, client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=assertion)


@pytest.fixture(scope="module")
def cert_app(graph):
    """A new app + service principal whose only credential is an uploaded X.509 certificate."""
    app, sp = graph.create_app(unique("cert-app-"))
    key, pem, der = make_certificate("tessera-interop")
    graph.ok("PATCH", f"applications/{app['id']}", 204, json={"keyCredentials": [{
        "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode(),
        "displayName": "CN=tessera-interop"}]})
    stored = graph.ok("GET", f"applications/{app['id']}")["keyCredentials"]
    assert len(stored) == 1 and stored[0]["type"] == "AsymmetricX509Cert", stored
    return {"app": app, "sp": sp, "key": key, "pem": pem, "der": der}


def test_private_key_jwt_with_msal(tessera, tenant_a, cert_app):
    thumbprint = hashlib.sha1(cert_app["der"]).hexdigest().upper()
    app = msal_app(tessera, tenant_a.tenant_id, cert_app["app"]["appId"],
                   {"private_key": cert_app["pem"], "thumbprint": thumbprint})
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    claims = verify_access_token(tessera, result["access_token"], tenant_a.tenant_id)
    assert claims["appid"] == cert_app["app"]["appId"]
    assert claims["oid"] == cert_app["sp"]["id"]
    assert claims.get("roles", []) == []  # no permission was granted to this app


def test_client_assertion_is_reusable_within_its_short_lifetime_as_msal_needs(tessera, tenant_a, cert_app):
    # MSAL and azure-identity keep one assertion for about nine minutes and send it again for every token
    # request in that time (another resource, a cache miss), as Entra accepts: so must Tessera.
    client_id = cert_app["app"]["appId"]
    assertion = client_assertion(cert_app["key"], cert_app["der"], client_id,
                                 tessera.token_endpoint(tenant_a.tenant_id))
    for _ in range(2):
        response = assertion_request(tessera, tenant_a.tenant_id, client_id, assertion)
        assert response.status_code == 200, response.text


def test_client_assertion_that_lives_longer_than_an_hour_is_refused(tessera, tenant_a, cert_app):
    client_id = cert_app["app"]["appId"]
    long_lived = client_assertion(cert_app["key"], cert_app["der"], client_id,
                                  tessera.token_endpoint(tenant_a.tenant_id), lifetime=7200)
    assert_oauth_error(assertion_request(tessera, tenant_a.tenant_id, client_id, long_lived), "invalid_client")


def test_expired_client_assertion_is_refused(tessera, tenant_a, cert_app):
    client_id = cert_app["app"]["appId"]
    expired = client_assertion(cert_app["key"], cert_app["der"], client_id,
                               tessera.token_endpoint(tenant_a.tenant_id), lifetime=600, age=1800)
    assert_oauth_error(assertion_request(tessera, tenant_a.tenant_id, client_id, expired), "invalid_client")


def test_client_assertion_signed_by_another_key_is_refused(tessera, tenant_a, cert_app):
    other_key, _, _ = make_certificate("intruder")
    client_id = cert_app["app"]["appId"]
    forged = client_assertion(other_key, cert_app["der"], client_id, tessera.token_endpoint(tenant_a.tenant_id))
    assert_oauth_error(assertion_request(tessera, tenant_a.tenant_id, client_id, forged), "invalid_client")


def test_client_assertion_for_another_audience_is_refused(tessera, tenant_a, cert_app):
    client_id = cert_app["app"]["appId"]
    wrong_aud = client_assertion(cert_app["key"], cert_app["der"], client_id, "https://login.example/token")
    assert_oauth_error(assertion_request(tessera, tenant_a.tenant_id, client_id, wrong_aud),
                       ("invalid_client", "invalid_request"))


# ---------------------------------------------------------------------------------------- tenant by domain
def test_client_assertion_for_another_hosts_token_endpoint_is_refused(tessera, tenant_a, cert_app):
    # The same path on another host (RFC 7523 §3: the audience must identify this server): an assertion minted for a
    # look-alike or another deployment cannot be replayed here.
    client_id = cert_app["app"]["appId"]
    elsewhere = tessera.token_endpoint(tenant_a.tenant_id).replace("://127.0.0.1:", "://login.example:")
    assert elsewhere != tessera.token_endpoint(tenant_a.tenant_id)
    for audience in (elsewhere, tessera.token_endpoint(tenant_a.tenant_id) + "/extra"):
        forged = client_assertion(cert_app["key"], cert_app["der"], client_id, audience)
        assert_oauth_error(assertion_request(tessera, tenant_a.tenant_id, client_id, forged), "invalid_client")


def test_tenant_referenced_by_domain(tessera, tenant_a):
    meta = discovery(tessera, tenant_a.domain)
    assert meta["issuer"] == f"{tessera.base_url}/{tenant_a.tenant_id}/v2.0"  # Entra: always the tenant id
    app = msal_app(tessera, tenant_a.domain, tenant_a.client_id, tenant_a.client_secret)
    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    assert "access_token" in result, result
    claims = verify_access_token(tessera, result["access_token"], tenant_a.domain)
    assert claims["tid"] == tenant_a.tenant_id and len(claims["tid"]) == GUID_LEN


def test_unknown_tenant_gets_no_token(tessera, tenant_a):
    r = tessera.request_token("nonexistent-tenant.test", tenant_a.client_id, tenant_a.client_secret)
    assert r.status_code in (400, 401, 404), r.text
    assert "access_token" not in r.json() and r.json().get("error"), r.text
