"""Two independent OpenID Connect relying-party libraries, run as the web applications a Tessera customer would put in
front of their users, for test_oidc_relying_parties.py:

- Apache httpd with mod_auth_openidc (C; Debian's libapache2-mod-auth-openidc), each "site" a virtual host on a port of
  its own with its own client, configured from Tessera's discovery document as its documentation says. A CGI script
  behind the protected location shows the application what the module passed it (its OIDC_* environment: the ID
  token's payload, the userinfo answer as JSON, REMOTE_USER).
- pyoidc (`oic`, the OpenID Foundation's reference implementation in Python) behind a small http.server web
  application: /login sends the browser to /authorize, /callback takes the answer (query or form_post), exchanges the
  code and calls userinfo, all validated by the library; /logout, /frontchannel and /backchannel end its sessions.

Both run unprivileged on free loopback ports, from files in a temp folder, and need nothing from the internet.
"""
from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import requests

from support import free_port, self_signed_certificate

APACHE = os.environ.get("APACHE_BIN", "/usr/sbin/apache2")
MODULES = Path(os.environ.get("APACHE_MODULES", "/usr/lib/apache2/modules"))

# What the protected application shows: everything mod_auth_openidc passed it, as JSON.
CLAIMS_CGI = """#!/usr/bin/env python3
import json, os
print("Content-Type: text/plain; charset=utf-8")
print("Cache-Control: no-store")
print()
print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("OIDC_") or k == "REMOTE_USER"}, sort_keys=True))
"""


@dataclass
class Site:
    """One mod_auth_openidc relying party: a virtual host on `port` whose /app is protected; /app/redirect_uri is the
    module's own callback (code, form_post, logout, front- and back-channel logout)."""

    name: str
    port: int
    client_id: str
    secret: str | None
    directives: list[str] = field(default_factory=list)
    server: "Apache | None" = field(default=None, repr=False)
    app_id: str = ""  # the application's object id in Graph

    @property
    def base(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def redirect_uri(self) -> str:
        return f"{self.base}/app/redirect_uri"

    @property
    def claims_url(self) -> str:
        return f"{self.base}/app/claims"

    @property
    def logged_out_url(self) -> str:
        return f"{self.base}/loggedout.html"

    @property
    def cookie(self) -> str:
        """The name of the module's session cookie on this site (the sites share localhost, so each names its own)."""
        return f"rp_{self.name}_session"

    def logout_url(self, return_to: str | None = None) -> str:
        """The module's RP-initiated logout: ends its session, then the provider's (end_session_endpoint)."""
        return f"{self.redirect_uri}?logout={urllib.parse.quote(return_to or self.logged_out_url, safe='')}"


def signing_certificate(common_name: str) -> tuple[str, str, bytes]:
    """A new RSA key and a self-signed certificate for it, as a client registers one on its application
    (keyCredentials) to sign request objects: the key's PEM, the certificate's PEM and its DER."""
    from cryptography.hazmat.primitives import serialization

    key, cert = self_signed_certificate(common_name)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode(), cert.public_bytes(serialization.Encoding.DER)


class Apache:
    """Apache httpd with mod_auth_openidc in a temp folder (ServerRoot, PidFile, logs, cache), one virtual host per Site,
    started in the foreground on loopback ports; as root, its children run as www-data."""

    def __init__(self, issuer: str, ca: str):
        self.folder = Path(tempfile.mkdtemp(prefix="tessera-apache-"))
        self.folder.chmod(0o755)
        # The children (www-data, when started as root) read the CA at every call to Tessera: a copy they may read.
        self.issuer, self.ca = issuer, str(shutil.copyfile(ca, self.folder / "tessera-ca.pem"))
        os.chmod(self.ca, 0o644)
        self.sites: list[Site] = []
        self.proc: subprocess.Popen | None = None
        self.passphrase = secrets.token_urlsafe(24)

    def file(self, name: str, text: str) -> str:
        """A file in the server's folder that its children may read (keys, certificates); returns its path."""
        path = self.folder / name
        path.write_text(text)
        path.chmod(0o644)
        return str(path)

    def site(self, name: str, client_id: str, secret: str | None, *directives: str) -> Site:
        # free_port can name a port twice in a row (it was seen: Apache then refuses two Listens on one port).
        taken = {s.port for s in self.sites}
        port = free_port()
        while port in taken:
            port = free_port()
        site = Site(name, port, client_id, secret, list(directives), self)
        self.sites.append(site)
        return site

    def _config(self) -> str:
        root = self.folder
        modules = ["mpm_prefork", "authn_core", "authz_core", "authz_user", "alias", "cgi", "mime", "auth_openidc"]
        lines = [f"ServerRoot {root}", "ServerName localhost", f"PidFile {root}/httpd.pid", f"ErrorLog {root}/error.log",
                 "LogLevel warn auth_openidc:info", f"DocumentRoot {root}/htdocs", "TypesConfig /etc/mime.types",
                 "StartServers 2", "MinSpareServers 2", "MaxSpareServers 4", "MaxRequestWorkers 16",
                 f"Mutex file:{root} default", f"OIDCCacheDir {root}/cache",
                 *[f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in modules]]
        if os.geteuid() == 0:
            lines += ["User www-data", "Group www-data"]
        lines += [f'<Directory {root}/htdocs>', "Require all granted", "</Directory>",
                  f'<Directory {root}/cgi>', "Options +ExecCGI", "Require all granted", "</Directory>"]
        for s in self.sites:
            lines += [f"Listen 127.0.0.1:{s.port}", f"<VirtualHost 127.0.0.1:{s.port}>", f"ServerName localhost:{s.port}",
                      f"DocumentRoot {root}/htdocs",
                      f"OIDCProviderMetadataURL {self.issuer}/.well-known/openid-configuration",
                      f"OIDCCABundlePath {self.ca}", "OIDCSSLValidateServer On",
                      f"OIDCClientID {s.client_id}", *([f"OIDCClientSecret {s.secret}"] if s.secret else []),
                      f"OIDCRedirectURI {s.redirect_uri}", f"OIDCCryptoPassphrase {self.passphrase}",
                      'OIDCScope "openid profile email"',
                      f"OIDCCookie {s.cookie}", f"OIDCStateCookiePrefix rp_{s.name}_state_",
                      "OIDCPassClaimsAs environment", "OIDCPassIDTokenAs payload serialized", "OIDCPassUserInfoAs json",
                      "OIDCInfoHook iat id_token userinfo session", f"OIDCDefaultLoggedOutURL {s.logged_out_url}",
                      *s.directives,
                      f"ScriptAlias /app/claims {root}/cgi/claims.py",
                      "<Location /app>", "AuthType openid-connect", "Require valid-user", "</Location>",
                      "</VirtualHost>"]
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        root = self.folder
        for sub in ("htdocs", "cgi", "cache"):
            (root / sub).mkdir(exist_ok=True)
        (root / "htdocs" / "loggedout.html").write_text("<!doctype html><title>Logged out</title><p>Logged out of the app.</p>\n")
        cgi = root / "cgi" / "claims.py"
        cgi.write_text(CLAIMS_CGI)
        cgi.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(root / "cache", "www-data", "www-data")
        (root / "httpd.conf").write_text(self._config())
        self.proc = subprocess.Popen([APACHE, "-DFOREGROUND", "-f", str(root / "httpd.conf")], stdin=subprocess.DEVNULL,
                                     stdout=open(root / "stdout.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"apache2 exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if all(requests.get(f"{s.base}/loggedout.html", timeout=1).status_code == 200 for s in self.sites):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"apache2 did not answer on {[s.port for s in self.sites]}:\n{self.log()}")

    def log(self) -> str:
        text = ""
        for name in ("stdout.log", "error.log"):
            path = self.folder / name
            if path.exists():
                lines = [line for line in path.read_text(errors="replace").splitlines() if "SHOULD be \"https\"" not in line]
                text += f"--- {name}\n" + "\n".join(lines[-60:]) + "\n"
        return text

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the parent stops its children
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class PyoidcRP:
    """A web application signing users in with pyoidc's `oic.oic.Client`, on http://localhost:<port>.

    GET /login?<authorization request parameters>  to /authorize, with a fresh state and nonce; `request=1` sends the
                                                   parameters as a request object signed with the client's key instead
    GET|POST /callback                             the answer (query or form_post): pyoidc parses it, validates the ID
                                                   token(s) (signature, iss, aud, exp, nonce, c_hash, max_age, acr),
                                                   exchanges the code (client_secret_basic) and calls userinfo; the
                                                   page shows the result as JSON and a session cookie is set
    GET /me                                        the session's claims, or a redirect to /login without one
    GET /logout                                    RP-initiated logout: end_session_endpoint with the ID token as
                                                   id_token_hint, post_logout_redirect_uri=/loggedout and a state
    GET /frontchannel?iss&sid                      front-channel logout: ends the sessions with that sid
    POST /backchannel                              back-channel logout: the logout token validated by pyoidc
                                                   (BackChannelLogoutRequest), the sessions with its sid ended
    """

    def __init__(self, issuer: str, ca: str):
        from oic.oic import Client
        from oic.utils.authn.client import CLIENT_AUTHN_METHOD
        from oic.utils.settings import OicClientSettings

        self.issuer = issuer
        self.client = Client(client_authn_method=CLIENT_AUTHN_METHOD, settings=OicClientSettings(verify_ssl=ca))
        self.client.provider_config(issuer)
        self.requests: dict[str, dict] = {}  # state -> the authorization request's arguments
        self.sessions: dict[str, dict] = {}  # session cookie -> what the sign-in gave
        self.results: list[dict] = []  # every callback's outcome, in order
        self.authorization_requests: list[str] = []  # where /login sent the browser
        self.end_session_requests: list[str] = []  # where /logout sent the browser
        self.logged_out: list[dict] = []  # the queries /loggedout was visited with
        self.front_channel: list[dict] = []
        self.back_channel: list[dict] = []
        self.signing_key = None
        self.app_id = ""  # the application's object id in Graph
        rp = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                rp._handle(self, "GET")

            def do_POST(self):  # noqa: N802
                rp._handle(self, "POST")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://localhost:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def redirect_uri(self) -> str:
        return f"{self.base}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base}/loggedout"

    def register(self, client_id: str, secret: str, signing_key_pem: str | None = None, kid: str | None = None) -> None:
        """The client's registration (made through Graph): its id, secret, redirect URI and, for request objects,
        the private key whose certificate is on the application."""
        from oic.oic.message import RegistrationResponse

        self.client.store_registration_info(RegistrationResponse(
            client_id=client_id, client_secret=secret, redirect_uris=[self.redirect_uri],
            post_logout_redirect_uris=[self.post_logout_redirect_uri]))
        self.client.redirect_uris = [self.redirect_uri]
        if signing_key_pem:
            self.use_signing_key(signing_key_pem, kid)

    def use_signing_key(self, key_pem: str, kid: str | None = None) -> None:
        """The private key request objects are signed with from now on."""
        from Cryptodome.PublicKey import RSA
        from jwkest.jwk import RSAKey

        self.signing_key = RSAKey(key=RSA.import_key(key_pem), kid=kid or "", use="sig")

    def login_url(self, **params) -> str:
        return f"{self.base}/login?{urllib.parse.urlencode(params)}"

    # ------------------------------------------------------------------------------------------ the web application
    def _handle(self, h: http.server.BaseHTTPRequestHandler, method: str) -> None:
        url = urllib.parse.urlsplit(h.path)
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0)).decode() if method == "POST" else ""
        try:
            if url.path == "/login":
                return self._redirect(h, self._authorize(dict(urllib.parse.parse_qsl(url.query))))
            if url.path == "/callback":
                result = self._callback(body if method == "POST" else url.query)
                result["method"] = method
                self.results.append(result)
                cookie = None
                if "id_token" in result:
                    cookie = secrets.token_urlsafe(16)
                    self.sessions[cookie] = result
                return self._json(h, result, cookie)
            if url.path == "/me":
                session = self.sessions.get(self._cookie(h))
                return self._json(h, session) if session else self._redirect(h, f"{self.base}/login")
            if url.path == "/logout":
                session = self.sessions.pop(self._cookie(h), None)
                state = secrets.token_urlsafe(12)
                args = {"post_logout_redirect_uri": self.post_logout_redirect_uri, "state": state}
                if session:
                    args["id_token_hint"] = session["id_token_jwt"]
                request = self.client.construct_EndSessionRequest(request_args=args)
                self.end_session_requests.append(request.request(self.client.end_session_endpoint))
                return self._redirect(h, self.end_session_requests[-1])
            if url.path == "/loggedout":
                self.logged_out.append(dict(urllib.parse.parse_qsl(url.query)))
                return self._json(h, {"logged_out": True})
            if url.path == "/frontchannel":
                query = dict(urllib.parse.parse_qsl(url.query))
                self.front_channel.append(query)
                if query.get("iss") == self.issuer and query.get("sid"):
                    self._end_sessions(query["sid"])
                return self._json(h, {"ended": query.get("sid")})
            if url.path == "/backchannel" and method == "POST":
                return self._back_channel(h, body)
            h.send_response(404)
            h.end_headers()
        except Exception as error:  # noqa: BLE001  (the test reads it from the page, and from self.results)
            self.results.append({"exception": f"{type(error).__name__}: {error}"})
            self._json(h, self.results[-1], status=500)

    def _authorize(self, params: dict) -> str:
        from oic import rndstr

        request_object = params.pop("request", None) == "1"
        state, nonce = rndstr(24), rndstr(24)
        args = {"client_id": self.client.client_id, "response_type": params.pop("response_type", "code"),
                "scope": ["openid", "profile", "email"], "redirect_uri": self.redirect_uri, "state": state,
                "nonce": nonce, **params}
        if "max_age" in args:
            args["max_age"] = int(args["max_age"])
        if "acr_values" in args:
            args["acr_values"] = args["acr_values"].split()
        if "claims" in args:
            from oic.oic.message import ClaimsRequest

            args["claims"] = ClaimsRequest().from_json(args["claims"])
        kwargs = {}
        if request_object:
            kwargs = {"request_method": "request", "request_object_signing_alg": "RS256", "keys": [self.signing_key]}
        areq = self.client.construct_AuthorizationRequest(request_args=dict(args), **kwargs)
        if request_object:  # outside the object only what OAuth and OpenID Connect need in the query (Core §6.1)
            url = self.client.authorization_endpoint + "?" + urllib.parse.urlencode({
                "client_id": args["client_id"], "response_type": args["response_type"], "scope": " ".join(args["scope"]),
                "request": areq["request"]})
        else:
            url = areq.request(self.client.authorization_endpoint)
        self.requests[state] = args
        self.authorization_requests.append(url)
        return self.authorization_requests[-1]

    def _callback(self, query: str) -> dict:
        from oic.oic.message import AuthorizationResponse

        response = self.client.parse_response(AuthorizationResponse, info=query, sformat="urlencoded", keyjar=self.client.keyjar)
        if "error" in response:
            return {"error": response["error"], "error_description": response.get("error_description"),
                    "state": response.get("state")}
        state = response["state"]
        authn_request = self.requests.pop(state)  # a state this application sent, once
        result: dict = {"state": state, "request": {k: v for k, v in authn_request.items() if k != "nonce"}}
        if "id_token" in response:  # hybrid flow: validated by parse_response (signature, c_hash), then as below
            self.client.verify_id_token(response["id_token"], authn_request)
            result["authorization_id_token"] = response["id_token"].to_dict()
        tokens = self.client.do_access_token_request(state=state, request_args={"code": response["code"], "redirect_uri": self.redirect_uri},
                                                     authn_method="client_secret_basic")
        if "error" in tokens:
            return {"token_error": tokens.to_dict()}
        self.client.verify_id_token(tokens["id_token"], authn_request)  # nonce, max_age, acr_values
        result["id_token"] = tokens["id_token"].to_dict()
        result["id_token_jwt"] = tokens["id_token"].jwt
        userinfo = self.client.do_user_info_request(state=state)
        result["userinfo"] = userinfo.to_dict()
        return result

    def _back_channel(self, h, body: str) -> None:
        from oic.oic.message import BackChannelLogoutRequest

        request = BackChannelLogoutRequest().from_urlencoded(body)
        try:
            request.verify(aud=self.client.client_id, iss=self.issuer, keyjar=self.client.keyjar)
        except Exception as error:  # noqa: BLE001
            self.back_channel.append({"refused": str(error)})
            h.send_response(400)
            h.end_headers()
            return
        token = request["logout_token"].to_dict()
        self.back_channel.append(token)
        if token.get("sid"):
            self._end_sessions(token["sid"])
        h.send_response(200)
        h.send_header("Cache-Control", "no-store")
        h.end_headers()

    def _end_sessions(self, sid: str) -> None:
        for cookie, session in list(self.sessions.items()):
            if session["id_token"].get("sid") == sid:
                del self.sessions[cookie]

    @staticmethod
    def _cookie(h) -> str | None:
        for part in (h.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "pyoidc_rp":
                return value
        return None

    @staticmethod
    def _redirect(h, location: str) -> None:
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Cache-Control", "no-store")
        h.end_headers()

    @staticmethod
    def _json(h, value, cookie: str | None = None, status: int = 200) -> None:
        body = json.dumps(value, default=str).encode()
        h.send_response(status)
        h.send_header("Content-Type", "text/plain; charset=utf-8")  # shown as is, in a <pre>
        h.send_header("Cache-Control", "no-store")
        if cookie:
            h.send_header("Set-Cookie", f"pyoidc_rp={cookie}; Path=/; HttpOnly; SameSite=Lax")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
