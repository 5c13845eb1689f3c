"""Helpers shared by the interop tests: constants, Tessera/Graph clients and response checks.

Trap avoided on purpose: this machine (like many CI images) sets REQUESTS_CA_BUNDLE, and requests lets that
override Session.verify. Every session here therefore has trust_env=False and verify=<Tessera's CA>.
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import requests

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
GRAPH_AUDIENCE = "https://graph.microsoft.com"
ADMIN_PERMISSIONS = frozenset({
    "Directory.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All", "Application.ReadWrite.All",
    "RoleManagement.ReadWrite.Directory", "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.ConditionalAccess", "AuditLog.Read.All",
})
GLOBAL_ADMIN_ROLE_ID = "62e90394-69f5-4237-9190-012177145e10"
DUPLICATE_UPN_MESSAGE = "Another object with the same value for property userPrincipalName already exists."
PASSWORD = "Interop-Passw0rd!"  # meets Entra's complexity rules
ADVANCED = {"ConsistencyLevel": "eventual"}


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclasses.dataclass(frozen=True)
class Tenant:
    tenant_id: str
    domain: str
    admin_upn: str
    client_id: str
    client_secret: str

    @classmethod
    def from_json(cls, d: dict) -> "Tenant":
        return cls(d["tenantId"], d["domain"], d["adminUserPrincipalName"], d["clientId"], d["clientSecret"])


class Session(requests.Session):
    """requests.Session that trusts only Tessera's CA, ignores the environment and never waits forever."""

    def __init__(self, ca: str):
        super().__init__()
        self.verify = ca
        self.trust_env = False

    def request(self, method, url, **kw):
        kw.setdefault("timeout", 60)
        return super().request(method, url, **kw)


def assert_graph_error(resp: requests.Response, status, code: str | None = None) -> dict:
    """Check a Graph error response: {"error": {"code", "message", "innerError": {...}}}."""
    statuses = status if isinstance(status, (tuple, list, set)) else (status,)
    assert resp.status_code in statuses, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:1000]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    err = resp.json().get("error")
    assert isinstance(err, dict), resp.text
    assert isinstance(err.get("code"), str) and err["code"], err
    assert isinstance(err.get("message"), str), err
    assert isinstance(err.get("innerError"), dict), err
    if code is not None:
        assert err["code"] == code, err
    return err


def assert_oauth_error(resp: requests.Response, error, statuses=(400, 401)) -> dict:
    """Check an Entra-style OAuth error: error, error_description and numeric error_codes."""
    assert resp.status_code in statuses, f"HTTP {resp.status_code}: {resp.text[:1000]}"
    body = resp.json()
    errors = error if isinstance(error, (tuple, list, set)) else (error,)
    assert body.get("error") in errors, body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    assert isinstance(body.get("error_codes"), list) and body["error_codes"], body
    assert all(isinstance(c, int) for c in body["error_codes"]), body
    assert "access_token" not in body
    return body


class Graph:
    """Microsoft Graph over plain requests with one bearer token."""

    def __init__(self, tessera: "Tessera", token: str, version: str = "v1.0"):
        self.tessera = tessera
        self.token = token
        self.base = f"{tessera.base_url}/{version}"
        self.s = tessera.session()
        self.s.headers["Authorization"] = f"Bearer {token}"

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else f"{self.base}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kw) -> requests.Response:
        return self.s.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def ok(self, method: str, path: str, status=200, **kw) -> dict:
        r = self.request(method, path, **kw)
        assert r.status_code == status, f"{method} {path}: expected {status}, got {r.status_code}: {r.text[:2000]}"
        return r.json() if r.content else {}

    def all_pages(self, path: str, max_pages: int = 200, **kw) -> list[dict]:
        """GET a collection and follow @odata.nextLink (absolute URLs) to the end."""
        items, url = [], path
        for _ in range(max_pages):
            page = self.ok("GET", url, **kw)
            items.extend(page["value"])
            url = page.get("@odata.nextLink")
            if not url:
                return items
            assert url.startswith(self.tessera.base_url + "/"), f"nextLink not on this host: {url}"
            kw.pop("params", None)  # the nextLink carries the query
        raise AssertionError(f"more than {max_pages} pages at {path}")

    def create_user(self, domain: str, nick: str | None = None, **props) -> dict:
        nick = nick or unique("u")
        body = {
            "accountEnabled": True, "displayName": nick, "mailNickname": nick,
            "userPrincipalName": f"{nick}@{domain}",
            "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD},
        }
        body.update(props)
        return self.ok("POST", "users", 201, json=body)

    def create_group(self, name: str | None = None, **props) -> dict:
        nick = name or unique("g")
        body = {"displayName": nick, "mailEnabled": False, "mailNickname": nick, "securityEnabled": True}
        body.update(props)
        return self.ok("POST", "groups", 201, json=body)

    def create_app(self, name: str | None = None) -> tuple[dict, dict]:
        """An application and its service principal (Entra issues app tokens only with one)."""
        app = self.ok("POST", "applications", 201, json={"displayName": name or unique("app-")})
        sp = self.ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
        return app, sp

    def add_password(self, app_object_id: str) -> str:
        cred = self.ok("POST", f"applications/{app_object_id}/addPassword", 200,
                       json={"passwordCredential": {"displayName": "interop"}})
        assert cred.get("secretText"), cred
        return cred["secretText"]

    def graph_service_principal(self) -> dict:
        found = self.ok("GET", "servicePrincipals", params={"$filter": f"appId eq '{GRAPH_APP_ID}'"})["value"]
        assert len(found) == 1, found
        return found[0]

    def grant(self, sp_id: str, permission: str) -> dict:
        """Grant a Graph application permission (an appRole of the Graph service principal) to sp_id."""
        graph_sp = self.graph_service_principal()
        role = next((r for r in graph_sp["appRoles"] if r["value"] == permission), None)
        assert role, f"{permission} is not an appRole of the Graph service principal"
        return self.ok("POST", f"servicePrincipals/{sp_id}/appRoleAssignments", 201,
                       json={"principalId": sp_id, "resourceId": graph_sp["id"], "appRoleId": role["id"]})


class Tessera:
    def __init__(self, base_url: str, ca: str, tenant_a: Tenant, tenant_b: Tenant):
        self.base_url = base_url.rstrip("/")
        self.ca = ca
        self.tenant_a = tenant_a
        self.tenant_b = tenant_b
        self._tokens: dict[tuple, str] = {}

    def session(self) -> Session:
        return Session(self.ca)

    def authority(self, tenant_ref: str) -> str:
        return f"{self.base_url}/{tenant_ref}"

    def token_endpoint(self, tenant_ref: str) -> str:
        return f"{self.base_url}/{tenant_ref}/oauth2/v2.0/token"

    def request_token(self, tenant_ref: str, client_id: str, secret: str | None = None,
                      scope: str = GRAPH_SCOPE, **form) -> requests.Response:
        data = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
        if secret is not None:
            data["client_secret"] = secret
        data.update(form)
        return self.session().post(self.token_endpoint(tenant_ref), data=data)

    def token(self, tenant: Tenant, client_id: str | None = None, secret: str | None = None) -> str:
        key = (tenant.tenant_id, client_id or tenant.client_id, secret or tenant.client_secret)
        if key not in self._tokens:
            r = self.request_token(tenant.tenant_id, key[1], key[2])
            assert r.status_code == 200, f"token request failed: {r.status_code} {r.text}"
            self._tokens[key] = r.json()["access_token"]
        return self._tokens[key]

    def graph(self, tenant: Tenant, version: str = "v1.0") -> Graph:
        return Graph(self, self.token(tenant), version)


class Sdk:
    """msgraph-sdk's GraphServiceClient for tenant A, authenticated by azure.identity.aio.ClientSecretCredential.

    One event loop (asyncio.Runner) for the whole session, so the httpx and aiohttp connections are reused.
    """

    def __init__(self, tessera: Tessera, tenant: Tenant):
        self.tessera, self.tenant = tessera, tenant
        self.runner = asyncio.Runner()
        self.client = self.runner.run(self._build())

    async def _build(self):
        import httpx
        from azure.identity.aio import ClientSecretCredential
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider)
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.graph_request_adapter import options as graph_options
        from msgraph_core import GraphClientFactory

        t = self.tessera
        self.credential = ClientSecretCredential(
            self.tenant.tenant_id, self.tenant.client_id, self.tenant.client_secret, authority=t.base_url,
            disable_instance_discovery=True, connection_verify=t.ca)
        # Explicit scopes: without them kiota derives "https://127.0.0.1/.default" from the request host.
        # allowed_hosts: kiota sends the token only to hosts on this list.
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=[GRAPH_SCOPE], allowed_hosts=["127.0.0.1"])
        self.http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=t.ca), trust_env=False, http2=True,
                                      timeout=httpx.Timeout(60, connect=10))
        adapter = GraphRequestAdapter(
            auth, client=GraphClientFactory.create_with_default_middleware(client=self.http, options=graph_options))
        adapter.base_url = f"{t.base_url}/v1.0"
        return GraphServiceClient(request_adapter=adapter)

    def run(self, coro):
        return self.runner.run(coro)

    def close(self):
        self.run(self.http.aclose())
        self.run(self.credential.close())
        self.runner.close()


def free_port() -> int:
    """A port the system reports free now; something else may take it before it is used (see serve_on_a_free_port)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_on_a_free_port(command: Callable[[int], list[str]], attempts: int = 3) -> tuple[subprocess.Popen, str, int]:
    """`start_serve(command(port))` on a free port, on another one when the first was taken in between (the
    server says 'Address already in use'); returns the process, what it printed and the port."""
    for attempt in range(attempts):
        port = free_port()
        try:
            proc, printed = start_serve(command(port))
            return proc, printed, port
        except AssertionError as failure:
            if attempt == attempts - 1 or "in use" not in str(failure).lower():
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def first_start(binary: str, prefix: str, *options: str):
    """`tessera serve` on a new data folder and a free port with `options`, behind MSAL-friendly https://localhost;
    yields what its first start printed (tenant, client id and secret) with its URL, port, CA and data folder, and stops
    it afterwards. The server's output is drained so its pipe never fills."""
    data = Path(tempfile.mkdtemp(prefix=prefix))
    proc, printed, port = serve_on_a_free_port(lambda port: [binary, "serve", "--data", str(data), "--port", str(port), *options])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    field = lambda name: re.search(rf"{name}:\s+(\S+)", printed).group(1)  # noqa: E731
    try:
        yield {"url": f"https://localhost:{port}", "port": port, "tenant": field("tenant id"), "client": field("client id"),
               "secret": field("client secret"), "ca": str(data / "tls" / "ca.pem"), "data": data, "printed": printed}
    finally:
        stop_serve(proc, data)


def client_behind_proxy(server: dict, address: str):
    """MSAL's confidential client for the automation app of a `first_start` server, its requests arriving through the
    trusted proxy (127.0.0.1) from `address` (X-Forwarded-For)."""
    import msal

    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    session.headers["X-Forwarded-For"] = address
    return msal.ConfidentialClientApplication(server["client"], client_credential=server["secret"],
                                              authority=f"{server['url']}/{server['tenant']}", instance_discovery=False,
                                              http_client=session, token_cache=msal.TokenCache())


def wait_until_listening(proc: subprocess.Popen, name: str, seconds: float = 120) -> str:
    """Reads a started `tessera` command's output until it says 'listening on' and returns what it printed; fails (and
    stops it) when it exits first or takes longer than `seconds`."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"{name} stopped:\n" + "".join(lines))
        lines.append(line)
        if "listening on" in line:
            return "".join(lines)
    proc.kill()
    raise AssertionError(f"{name} did not start:\n" + "".join(lines))


def start_serve(command: list[str]) -> tuple[subprocess.Popen, str]:
    """Starts `tessera serve …` (the whole command line) and returns it with what it printed up to 'listening on'."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    return proc, wait_until_listening(proc, "tessera serve")


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def issue_test_certificate(folder: Path, ca_subject: str, san: str, extensions: str = "") -> None:
    """A throwaway P-256 CA (`ca.pem`, `ca-key.pem`) and a server certificate it signs (`leaf.pem`, `leaf-key.pem`) for
    `san` (openssl's subjectAltName syntax), valid two days, made with openssl in `folder`."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
            "-days", "2", "-subj", f"/CN={ca_subject}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf-key.pem", "-out", "leaf.csr",
            "-subj", "/CN=" + san.split(",")[0].split(":", 1)[1], cwd=folder)
    (folder / "ext.cnf").write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                                    "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" + extensions)
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "leaf.pem",
            "-days", "2", "-extfile", "ext.cnf", cwd=folder)


def stop_serve(proc: subprocess.Popen, data=None) -> None:
    """Stops a `tessera serve` started by `start_serve` (SIGTERM, then SIGKILL after 30 s) and removes its data folder."""
    import shutil
    import signal
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    if data is not None:
        shutil.rmtree(data, ignore_errors=True)


def self_signed_certificate(common_name: str):
    """A new RSA key and a self-signed certificate for it, valid from five minutes ago for two days, as a client
    registers one on its application (keyCredentials): the key and the certificate (cryptography's objects)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2)).sign(key, hashes.SHA256()))
    return key, cert
