"""OpenID Connect as relying parties expect it (issue 20), proved with two independent relying-party libraries in two
languages, each signing a user in with a passkey in headless Chromium against the interop Tessera over HTTPS:

- Apache httpd's mod_auth_openidc (C), configured from Tessera's discovery document, protecting a CGI page that shows
  what the module passed the application (the ID token's payload, the userinfo answer);
- pyoidc (`oic`, the OpenID Foundation's reference implementation in Python) behind a small web application.

Both validate Tessera's ID tokens themselves (signature from jwks_uri, iss, aud, exp, nonce, c_hash; pyoidc also
max_age and acr_values), exchange the code with client_secret_basic and call userinfo. The applications and their
registrations (redirect URIs, logout URL, certificates) are made through Graph, as an administrator would.
See relying_parties.py for the two applications."""
from __future__ import annotations

import base64
import json
import time
import urllib.parse

import pytest
import requests

from browser import register_passkey, remove_authenticator
from relying_parties import Apache, PyoidcRP, signing_certificate
from support import unique

pytestmark = [pytest.mark.timeout(300),
              # pyoidc fetches the keys of an issuer on localhost without checking its certificate (oic.utils.keyio:
              # KeyJar.add), whatever verify_ssl says; the ID tokens' signatures are checked with them all the same.
              pytest.mark.filterwarnings("ignore:Unverified HTTPS request:urllib3.exceptions.InsecureRequestWarning")]


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def issuer(origin, tenant_a) -> str:
    return f"{origin}/{tenant_a.tenant_id}/v2.0"


def web_app(graph, redirect_uris: list[str], **web) -> tuple[dict, str]:
    """A web application (its redirect URIs and `web` properties such as logoutUrl) with a service principal and a
    client secret, as an administrator registers one for a line-of-business app."""
    app = graph.ok("POST", "applications", 201, json={"displayName": unique("rp-"), "web": {"redirectUris": redirect_uris, **web}})
    graph.ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
    return app, graph.add_password(app["id"])


@pytest.fixture(scope="module")
def user(graph, tenant_a, origin, browser):
    """A user with a passkey on the browser's virtual authenticator (kept for the module: every sign-in below is the
    user choosing it on Tessera's sign-in page)."""
    user = graph.create_user(tenant_a.domain, unique("rp"))
    aid = register_passkey(browser, f"{origin}/{tenant_a.tenant_id}/login", user["id"], graph.token)
    yield user
    remove_authenticator(browser, aid)


@pytest.fixture(scope="module")
def apache(graph, tessera, issuer):
    """mod_auth_openidc with one virtual host per configuration, each with its own application."""
    server = Apache(issuer, tessera.ca)
    key_pem, cert_pem, der = signing_certificate("mod_auth_openidc")
    # The parameters the module puts in its signed request object, and takes out of the query: Tessera must read the
    # redirect URI, state, nonce and scope from the object for the sign-in to come back at all.
    request_object = json.dumps({"copy_and_remove_from_request": ["redirect_uri", "state", "nonce", "scope", "claims", "max_age"],
                                 "crypto": {"sign_alg": "RS256"}, "request_object_type": "request"})
    claims = json.dumps({"id_token": {"auth_time": {"essential": True}, "acr": {"essential": True, "values": ["1"]}}}, separators=(",", ":"))
    sites = {
        "code": server.site("code", "", None),
        # ...which also calls userinfo with POST, the access token in the form body (Core §5.3.1, RFC 6750 §2.2)
        "formpost": server.site("formpost", "", None, "OIDCResponseMode form_post", "OIDCUserInfoTokenMethod post_param"),
        "maxage": server.site("maxage", "", None, "OIDCAuthRequestParams max_age=5"),
        "claims": server.site("claims", "", None, "OIDCAuthRequestParams claims=" + urllib.parse.quote(claims, safe="")),
        # the hybrid flow with the module's default response mode for it (fragment, posted back by its own page)
        "hybrid": server.site("hybrid", "", None, 'OIDCResponseType "code id_token"'),
        "request": server.site("request", "", None, "OIDCRequestObject " + json.dumps(request_object),
                               f"OIDCPrivateKeyFiles {server.file('rp-key.pem', key_pem)}",
                               f"OIDCPublicKeyFiles {server.file('rp-cert.pem', cert_pem)}"),
        "front": server.site("front", "", None),
        "back": server.site("back", "", None),
    }
    web = {"hybrid": {"implicitGrantSettings": {"enableIdTokenIssuance": True}},
           # mod_auth_openidc's front-channel logout endpoint (its back-channel one is set by the logout test)
           "front": {"logoutUrl": f"{sites['front'].redirect_uri}?logout=get"}}
    for name, site in sites.items():
        app, secret = web_app(graph, [site.redirect_uri, site.logged_out_url], **web.get(name, {}))
        site.client_id, site.secret, site.app_id = app["appId"], secret, app["id"]
        if name == "request":
            register_certificate(graph, app, der)
    server.start()
    yield sites
    server.stop()


def register_certificate(graph, app: dict, der: bytes) -> None:
    """The client's certificate on its application (keyCredentials), as for private_key_jwt."""
    graph.ok("PATCH", f"applications/{app['id']}", 204, json={"keyCredentials": [{
        "type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.b64encode(der).decode(), "displayName": "CN=rp"}]})


@pytest.fixture(scope="module")
def pyoidc(graph, tessera, issuer):
    """pyoidc's web application: one client, allowed the hybrid flow, with a certificate for its request objects and
    its front-channel logout URL (the back-channel one is set by the logout test)."""
    rp = PyoidcRP(issuer, tessera.ca)
    app, secret = web_app(graph, [rp.redirect_uri, rp.post_logout_redirect_uri],
                          implicitGrantSettings={"enableIdTokenIssuance": True}, logoutUrl=f"{rp.base}/frontchannel")
    rp.app_id = app["id"]
    key_pem, _, der = signing_certificate("pyoidc")
    register_certificate(graph, app, der)
    rp.register(app["appId"], secret, key_pem)
    yield rp
    rp.close()


@pytest.fixture
def fresh(browser):
    """Each test starts signed out everywhere (Tessera and the relying parties share localhost)."""
    browser.delete_all_cookies()
    return browser


def page_json(browser, url_prefix: str, timeout: float = 20) -> dict:
    """The JSON the browser shows once it has arrived at `url_prefix` (after the sign-in and the callback)."""
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        if browser.current_url.startswith(url_prefix):
            pres = browser.find_elements("tag name", "pre")
            last = pres[0].text if pres else browser.find_element("tag name", "body").text
            try:
                return json.loads(last)
            except ValueError:
                pass
        time.sleep(0.1)
    raise AssertionError(f"no JSON at {url_prefix} (the browser is at {browser.current_url}: {last[:500]!r})")


def app_sees(browser, site) -> dict:
    """What mod_auth_openidc passed the protected application, once the browser got there."""
    try:
        env = page_json(browser, site.claims_url)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{site.server.log()}") from None
    return {"env": env, "id_token": json.loads(env["OIDC_id_token_payload"]),
            "userinfo": json.loads(env["OIDC_userinfo_json"])}


def still_signed_in(site, cookie: str) -> bool:
    """Whether the relying party still has a session for that session cookie: its protected page answers, instead of
    sending the browser to Tessera's /authorize."""
    r = requests.get(site.claims_url, cookies={site.cookie: cookie}, allow_redirects=False, timeout=10,
                     headers={"Accept": "text/html"})
    if r.status_code == 200:
        return True
    assert r.status_code == 302 and "/oauth2/v2.0/authorize?" in r.headers["Location"], (r.status_code, r.headers)
    return False


def silent(browser, pyoidc, **params) -> dict:
    """pyoidc's prompt=none request, in the browser: what its callback got."""
    browser.get(pyoidc.login_url(prompt="none", **params))
    return page_json(browser, pyoidc.redirect_uri)


# ------------------------------------------------------------------------------------------------ code flow, userinfo
def test_mod_auth_openidc_code_flow_validates_the_id_token_and_passes_userinfo(fresh, apache, user, issuer):
    site = apache["code"]
    fresh.get(site.claims_url)  # not signed in: the module sends the browser to Tessera, the passkey signs in
    seen = app_sees(fresh, site)
    id_token, userinfo = seen["id_token"], seen["userinfo"]
    assert id_token["iss"] == issuer and id_token["aud"] == site.client_id
    assert id_token["oid"] == user["id"] and id_token["preferred_username"] == user["userPrincipalName"]
    # userinfo, called by the module after the code exchange with the access token: the same pairwise subject
    assert userinfo["sub"] == id_token["sub"] != user["id"]
    assert userinfo["preferred_username"] == user["userPrincipalName"] and userinfo["oid"] == user["id"]
    assert userinfo["name"] == user["displayName"]
    # REMOTE_USER is the module's default sub@issuer (without https://)
    assert seen["env"]["REMOTE_USER"] == f"{id_token['sub']}@{issuer.removeprefix('https://')}"
    assert fresh.get_cookie(site.cookie)


def test_pyoidc_code_flow_validates_the_id_token_and_calls_userinfo(fresh, pyoidc, user, issuer):
    fresh.get(pyoidc.login_url())
    result = page_json(fresh, pyoidc.redirect_uri)
    assert "id_token" in result, result
    assert result["method"] == "GET"
    id_token, userinfo = result["id_token"], result["userinfo"]
    assert id_token["iss"] == issuer and id_token["aud"] == [pyoidc.client.client_id]
    assert id_token["oid"] == user["id"] and id_token["amr"] == ["fido", "mfa"]
    assert userinfo["sub"] == id_token["sub"] and userinfo["preferred_username"] == user["userPrincipalName"]
    me = requests.get(f"{pyoidc.base}/me", cookies={"pyoidc_rp": fresh.get_cookie("pyoidc_rp")["value"]}, timeout=10)
    assert me.json()["id_token"]["sub"] == id_token["sub"]


# ------------------------------------------------------------------------------------------------ form_post
def test_mod_auth_openidc_form_post_and_userinfo_by_post(fresh, apache, user):
    site = apache["formpost"]
    fresh.get(site.claims_url)
    seen = app_sees(fresh, site)
    assert seen["id_token"]["oid"] == user["id"] and seen["userinfo"]["sub"] == seen["id_token"]["sub"]
    assert seen["userinfo"]["preferred_username"] == user["userPrincipalName"]


def test_pyoidc_form_post(fresh, pyoidc, user):
    fresh.get(pyoidc.login_url(response_mode="form_post"))
    result = page_json(fresh, pyoidc.redirect_uri)
    assert result["method"] == "POST", result  # the browser posted the answer to the redirect URI
    assert result["id_token"]["oid"] == user["id"] and result["userinfo"]["sub"] == result["id_token"]["sub"]


# ------------------------------------------------------------------------------------------------ RP-initiated logout
def test_mod_auth_openidc_rp_initiated_logout(fresh, apache, pyoidc, user):
    site = apache["code"]
    fresh.get(site.claims_url)
    app_sees(fresh, site)
    cookie = fresh.get_cookie(site.cookie)["value"]
    assert still_signed_in(site, cookie)
    # The module's logout: its session ends, then Tessera's end_session_endpoint with the ID token as id_token_hint
    # and post_logout_redirect_uri, which Tessera honours (a redirect URI the application registered).
    fresh.get(site.logout_url())
    deadline = time.monotonic() + 15
    while not fresh.current_url.startswith(site.logged_out_url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fresh.current_url.startswith(site.logged_out_url), fresh.current_url
    assert not still_signed_in(site, cookie)  # the module's session is gone, not only the cookie
    # ...and Tessera's: a silent sign-in now finds no one.
    assert silent(fresh, pyoidc)["error"] == "login_required"


def test_pyoidc_rp_initiated_logout_returns_the_state(fresh, pyoidc, user):
    fresh.get(pyoidc.login_url())
    assert "id_token" in page_json(fresh, pyoidc.redirect_uri)
    fresh.get(f"{pyoidc.base}/logout")
    logged_out = page_json(fresh, pyoidc.post_logout_redirect_uri)
    assert logged_out == {"logged_out": True}
    sent = urllib.parse.parse_qs(urllib.parse.urlsplit(pyoidc.end_session_requests[-1]).query)
    assert "id_token_hint" in sent and "client_id" not in sent  # the hint alone names the client
    assert pyoidc.logged_out[-1] == {"state": sent["state"][0]}
    assert silent(fresh, pyoidc)["error"] == "login_required"


# ------------------------------------------------------------------------------------------------ helpers for the rest
def signed_in_to(browser, site) -> tuple[dict, str]:
    """Signs in to a mod_auth_openidc site (or passes through, with a session at Tessera): what the app was passed,
    and the site's session cookie."""
    browser.get(site.claims_url)
    seen = app_sees(browser, site)
    return seen, browser.get_cookie(site.cookie)["value"]


def pyoidc_sign_in(browser, pyoidc, **params) -> dict:
    browser.get(pyoidc.login_url(**params))
    result = page_json(browser, pyoidc.redirect_uri)
    assert "id_token" in result, result
    return result


def pyoidc_signed_in(pyoidc, cookie: str) -> bool:
    r = requests.get(f"{pyoidc.base}/me", cookies={"pyoidc_rp": cookie}, allow_redirects=False, timeout=10)
    assert r.status_code in (200, 302), r.status_code
    return r.status_code == 200


def eventually(check, seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# ------------------------------------------------------------------------------------------------ id_token_hint + prompt=none
def test_pyoidc_silent_sign_in_with_id_token_hint(fresh, pyoidc, user):
    first = pyoidc_sign_in(fresh, pyoidc)
    again = silent(fresh, pyoidc, id_token_hint=first["id_token_jwt"])
    assert "id_token" in again, again  # no page: the same user is still signed in
    assert again["id_token"]["sub"] == first["id_token"]["sub"] and again["id_token"]["sid"] == first["id_token"]["sid"]
    assert again["id_token"]["auth_time"] == first["id_token"]["auth_time"]
    # without a session at Tessera: login_required, answered to the client instead of a sign-in page
    fresh.delete_all_cookies()
    refused = silent(fresh, pyoidc, id_token_hint=first["id_token_jwt"])
    assert refused["error"] == "login_required", refused


# ------------------------------------------------------------------------------------------------ max_age
def test_max_age_asks_for_a_new_sign_in_once_the_last_is_older(fresh, apache, pyoidc, user):
    first, _ = signed_in_to(fresh, apache["code"])
    t0 = first["id_token"]["auth_time"]
    time.sleep(6)
    # mod_auth_openidc asking max_age=5: the sign-in is older, so Tessera asks again (the passkey answers)
    again, _ = signed_in_to(fresh, apache["maxage"])
    t1 = again["id_token"]["auth_time"]
    assert t1 > t0 and again["id_token"]["sub"]
    # pyoidc without max_age: single sign-on, that same sign-in; then max_age=5, within it: still that sign-in
    assert pyoidc_sign_in(fresh, pyoidc)["id_token"]["auth_time"] == t1
    assert pyoidc_sign_in(fresh, pyoidc, max_age=5)["id_token"]["auth_time"] == t1
    time.sleep(6)
    # ...and once older, a new one, whose auth_time pyoidc checks against max_age itself
    renewed = pyoidc_sign_in(fresh, pyoidc, max_age=5)
    assert renewed["id_token"]["auth_time"] > t1 and renewed["request"]["max_age"] == 5


# ------------------------------------------------------------------------------------------------ claims, acr_values
def test_claims_parameter_and_acr_values(fresh, apache, pyoidc, user):
    seen, _ = signed_in_to(fresh, apache["claims"])  # claims: essential auth_time, essential acr among ["1"]
    assert seen["id_token"]["acr"] == "1" and seen["id_token"]["auth_time"] > 0
    claims = json.dumps({"id_token": {"auth_time": {"essential": True}, "acr": {"essential": True}}})
    result = pyoidc_sign_in(fresh, pyoidc, claims=claims, acr_values="1")  # pyoidc checks acr against acr_values
    assert result["id_token"]["acr"] == "1" and result["id_token"]["auth_time"] == seen["id_token"]["auth_time"]
    assert "acr" not in pyoidc_sign_in(fresh, pyoidc)["id_token"]  # not asked for: none, as Entra's v2 ID tokens
    # the claims parameter's userinfo member (Core §5.5): what it names is answered at userinfo with scope openid alone
    asked = json.dumps({"userinfo": {"name": {"essential": True}, "preferred_username": None, "phone_number": None}})
    info = pyoidc_sign_in(fresh, pyoidc, claims=asked, scope="openid")["userinfo"]
    assert info["name"] == user["displayName"] and info["preferred_username"] == user["userPrincipalName"]
    assert "oid" not in info and "phone_number" not in info  # the profile scope's others, and what Tessera keeps not


# ------------------------------------------------------------------------------------------------ hybrid flow
def test_hybrid_flow_code_id_token(fresh, apache, pyoidc, user):
    seen, _ = signed_in_to(fresh, apache["hybrid"])  # the fragment, posted back by the module's own page
    assert seen["id_token"]["oid"] == user["id"] and seen["userinfo"]["sub"] == seen["id_token"]["sub"]
    result = pyoidc_sign_in(fresh, pyoidc, response_type="code id_token", response_mode="form_post")
    front = result["authorization_id_token"]  # validated by pyoidc: signature, nonce, c_hash of the code
    assert front["c_hash"] and front["nonce"] and front["sub"] == result["id_token"]["sub"]
    assert result["userinfo"]["sub"] == front["sub"]


# ------------------------------------------------------------------------------------------------ request objects
def test_request_objects_signed_with_the_registered_certificate(fresh, apache, pyoidc, user):
    # mod_auth_openidc moves redirect_uri, state, nonce and scope into its request object: the sign-in comes back only
    # if Tessera verified the object and used them.
    seen, _ = signed_in_to(fresh, apache["request"])
    assert seen["id_token"]["oid"] == user["id"]
    result = pyoidc_sign_in(fresh, pyoidc, request="1")
    sent = urllib.parse.parse_qs(urllib.parse.urlsplit(pyoidc.authorization_requests[-1]).query)
    assert set(sent) == {"client_id", "request", "response_type", "scope"}, sent
    assert result["id_token"]["oid"] == user["id"]
    # signed with a key whose certificate is not on the application: refused (to the registered redirect URI), no code
    registered = pyoidc.signing_key
    try:
        pyoidc.use_signing_key(signing_certificate("not registered")[0])
        fresh.get(pyoidc.login_url(request="1"))
        refused = page_json(fresh, pyoidc.redirect_uri)
        assert refused["error"] == "invalid_request_object" and "id_token" not in refused, refused
    finally:
        pyoidc.signing_key = registered


# ------------------------------------------------------------------------------------------------ front- and back-channel logout
@pytest.fixture(scope="module")
def back_channel(graph, apache, pyoidc):
    """Back-channel logout URLs (web.backchannelLogoutUrl, Tessera's extension beside Entra's front-channel logoutUrl):
    mod_auth_openidc's ?logout=backchannel on the "back" site, and pyoidc's application's."""
    for app_id, url in ((apache["back"].app_id, f"{apache['back'].redirect_uri}?logout=backchannel"),
                        (pyoidc.app_id, f"{pyoidc.base}/backchannel")):
        web = graph.ok("GET", f"applications/{app_id}")["web"]
        graph.ok("PATCH", f"applications/{app_id}", 204, json={"web": {**web, "backchannelLogoutUrl": url}})


def test_logout_at_one_app_ends_the_sessions_of_every_app_front_and_back_channel(fresh, back_channel, apache, pyoidc, user, issuer):
    _, code = signed_in_to(fresh, apache["code"])
    _, front = signed_in_to(fresh, apache["front"])
    _, back = signed_in_to(fresh, apache["back"])
    result = pyoidc_sign_in(fresh, pyoidc)
    mine = fresh.get_cookie("pyoidc_rp")["value"]
    sid = result["id_token"]["sid"]
    assert all(still_signed_in(apache[name], cookie) for name, cookie in (("code", code), ("front", front), ("back", back)))
    fronts, backs = len(pyoidc.front_channel), len(pyoidc.back_channel)
    # mod_auth_openidc's RP-initiated logout at one app; Tessera's signed-out page loads the front-channel logout URLs
    # in iframes before it goes on to post_logout_redirect_uri, and POSTs logout tokens to the back-channel ones.
    fresh.get(apache["code"].logout_url())
    assert eventually(lambda: fresh.current_url.startswith(apache["code"].logged_out_url)), fresh.current_url
    assert not still_signed_in(apache["code"], code)
    assert not still_signed_in(apache["front"], front)  # front-channel: the module's ?logout=get in the iframe
    assert eventually(lambda: not still_signed_in(apache["back"], back)), "back-channel logout did not end the session"
    # pyoidc's application registered both: the iframe brought iss and sid, the logout token passed pyoidc's checks
    assert pyoidc.front_channel[fronts:] == [{"iss": issuer, "sid": sid}]
    assert eventually(lambda: len(pyoidc.back_channel) > backs)
    token = pyoidc.back_channel[-1]
    assert token.get("sid") == sid and token["iss"] == issuer and token["aud"] == [pyoidc.client.client_id], token
    assert "http://schemas.openid.net/event/backchannel-logout" in token["events"]
    assert not pyoidc_signed_in(pyoidc, mine)


def test_revoking_a_users_sign_in_sessions_tells_every_app_by_back_channel(fresh, back_channel, graph, origin, apache, pyoidc, user,
                                                                           issuer):
    # (last in the file: the user's earlier tokens are revoked)
    _, back = signed_in_to(fresh, apache["back"])
    result = pyoidc_sign_in(fresh, pyoidc)
    mine = fresh.get_cookie("pyoidc_rp")["value"]
    backs = len(pyoidc.back_channel)
    assert still_signed_in(apache["back"], back) and pyoidc_signed_in(pyoidc, mine)
    # An administrator revokes the user's sessions through Graph: no browser is involved, the apps hear it by back-channel.
    # Graph at 127.0.0.1 while the apps know Tessera as localhost: each logout token carries the issuer of the app's own
    # sign-in (Back-Channel Logout 1.0 §2.4), not the one at the Graph request's host.
    revoked = graph.post(f"users/{user['id']}/revokeSignInSessions")
    assert revoked.status_code == 200 and revoked.json()["value"] is True, revoked.text
    assert eventually(lambda: not still_signed_in(apache["back"], back)), "the session outlived the revocation\n" + apache["back"].server.log()
    # a logout token per session of the user (the earlier tests' too), each passing pyoidc's checks; this one's among them
    sid = result["id_token"]["sid"]
    assert eventually(lambda: any(t.get("sid") == sid for t in pyoidc.back_channel[backs:])), pyoidc.back_channel[backs:]
    assert all(t.get("iss") == issuer and "refused" not in t for t in pyoidc.back_channel[backs:]), pyoidc.back_channel[backs:]
    assert not pyoidc_signed_in(pyoidc, mine)
