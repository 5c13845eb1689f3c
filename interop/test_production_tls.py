"""Tessera at its own host name with the organisation's certificate (`serve --tls-cert/--tls-key`), and behind nginx.

A test CA made with openssl in the test's folder issues certificates for login.contoso.test, a name this machine does
not know: Python resolves it to 127.0.0.5 here (a patched getaddrinfo, so SNI and hostname checks still see the name),
Chromium through --host-resolver-rules. Proved: a passkey registered and used in Chromium at that name; a certificate
renewed on disk (key first, as certbot may) reaching the next handshake while a kept connection goes on; serve refusing
a certificate for another name, a key that is not the certificate's and an expired certificate, saying why; and nginx
in front terminating TLS with Tessera on plain http, believed only from nginx's address.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from support import free_port, issue_test_certificate, openssl, serve_on_a_free_port, stop_serve

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
NAME = "login.contoso.test"
ADDRESS = "127.0.0.5"    # where login.contoso.test "resolves": Tessera's TLS listener, and nginx's
NGINX_SOURCE = "127.0.0.6"  # the address nginx connects to Tessera from: the only trusted proxy
CLIENT = "127.0.0.9"     # a browser's address, as nginx sees it


@contextlib.contextmanager
def resolving(name: str, address: str):
    """`name` resolves to `address` in this process (requests, MSAL, ssl), as if DNS said so."""
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        return real(address if host == name else host, *args, **kwargs)
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = real


def issue(folder: Path, stem: str, san: str, key: str = "ec", days: str = "2") -> tuple[Path, Path]:
    """`stem.pem` and `stem-key.pem`: a certificate for `san` from the test CA in `folder` with a new key (`ec`: P-256,
    `rsa`: RSA 2048); `days` -1 makes one that has already expired."""
    key_options = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", "rsa:2048"]
    openssl("req", *key_options, "-nodes", "-keyout", f"{stem}-key.pem", "-out", f"{stem}.csr", "-subj", f"/CN={NAME}", cwd=folder)
    (folder / f"{stem}.cnf").write_text(f"subjectAltName={san}\nbasicConstraints=critical,CA:FALSE\n"
                                        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{stem}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", f"{stem}.pem",
            "-days", days, "-extfile", f"{stem}.cnf", cwd=folder)
    return folder / f"{stem}.pem", folder / f"{stem}-key.pem"


def spki_hash(certificate: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64 of the SHA-256 of the key's SPKI."""
    der = subprocess.run(["openssl", "x509", "-in", str(certificate), "-pubkey", "-noout"], capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=der, capture_output=True, check=True).stdout
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@pytest.fixture(scope="module")
def pki():
    """The test CA and a certificate for login.contoso.test (ECDSA P-256), in a folder of the test's."""
    folder = Path(tempfile.mkdtemp(prefix="tessera-pki-"))
    issue_test_certificate(folder, "Contoso Test CA", f"DNS:{NAME}")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def serve(*options: str, port_option: bool = True):
    """`tessera serve` on a fresh data folder; its output kept in a list (a thread drains the pipe). Returns the
    process, what it printed up to 'listening on', its port, the folder and the list of later lines."""
    data = Path(tempfile.mkdtemp(prefix="tessera-production-"))
    proc, printed, port = serve_on_a_free_port(
        lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port),
                      *[o.replace("{port}", str(port)) for o in options]])
    later: list[str] = []
    threading.Thread(target=lambda: [later.append(line) for line in proc.stdout], daemon=True).start()
    return proc, printed, port, data, later


def field(printed: str, name: str) -> str:
    return re.search(rf"{name}:\s+(\S+)", printed).group(1)


def client_token(session: requests.Session, base: str, printed: str) -> str:
    r = session.post(f"{base}/{field(printed, 'tenant id')}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": field(printed, "client id"),
        "client_secret": field(printed, "client secret"), "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def session(ca: Path, source: str | None = None) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = str(ca), False
    if source:
        adapter = requests.adapters.HTTPAdapter()
        adapter.init_poolmanager(1, 1, source_address=(source, 0))
        s.mount("https://", adapter)
    return s


@pytest.fixture(scope="module")
def direct(pki):
    """Tessera on 127.0.0.5 with the test CA's certificate for login.contoso.test, its canonical public URL."""
    proc, printed, port, data, _ = serve("--host", ADDRESS, "--public-url", f"https://{NAME}:{{port}}",
                                         "--tls-cert", str(pki / "leaf.pem"), "--tls-key", str(pki / "leaf-key.pem"))
    base = f"https://{NAME}:{port}"
    with resolving(NAME, ADDRESS):
        token = client_token(session(pki / "ca.pem"), base, printed)
        try:
            yield {"base": base, "printed": printed, "token": token, "tenant": field(printed, "tenant id"),
                   "admin": field(printed, "administrator")}
        finally:
            stop_serve(proc, data)


def test_the_organisations_certificate_at_its_own_name(pki, direct):
    with resolving(NAME, ADDRESS):
        s = session(pki / "ca.pem")
        config = s.get(f"{direct['base']}/{direct['tenant']}/v2.0/.well-known/openid-configuration")
        assert config.status_code == 200, config.text
        assert config.json()["issuer"] == f"{direct['base']}/{direct['tenant']}/v2.0"
        assert claims(direct["token"])["iss"] == f"{direct['base']}/{direct['tenant']}/v2.0"
        assert config.headers.get("Strict-Transport-Security") == "max-age=31536000"
    # Served for the name: a client asking for another name at the same address is refused by its own TLS check.
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with socket.create_connection((ADDRESS, int(direct["base"].rsplit(":", 1)[1])), timeout=10) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            context.wrap_socket(raw, server_hostname="localhost")
    assert "TLS: trust" not in direct["printed"]  # no local CA to trust: the organisation's certificate is served


def passkey_round_trip(pki: Path, base: str, tenant: str, token: str, admin: str, nick: str) -> None:
    """A user made through Graph at `base`, a passkey registered for them in Chromium on the tenant's sign-in page
    there, and a sign-in with it; the browser reaches login.contoso.test at 127.0.0.5 and trusts the test leaf's key."""
    from browser import REGISTER, SIGN_IN, add_authenticator, chromium, remove_authenticator

    with resolving(NAME, ADDRESS):
        domain = admin.split("@")[1]
        user = session(pki / "ca.pem").post(f"{base}/v1.0/users", headers={"Authorization": f"Bearer {token}"}, json={
            "accountEnabled": True, "displayName": nick, "mailNickname": nick,
            "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}})
        assert user.status_code == 201, user.text
        user = user.json()
    with chromium(f"--host-resolver-rules=MAP {NAME} {ADDRESS}",
                  f"--ignore-certificate-errors-spki-list={spki_hash(pki / 'leaf.pem')}") as driver:
        driver.get(f"{base}/{tenant}/login")
        assert "Sign in with a passkey" in driver.page_source
        aid = add_authenticator(driver)
        try:
            registered = driver.execute_async_script(REGISTER, user["id"], token)
            assert registered.get("status") == 201, registered
            credentials = driver.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": aid})["credentials"]
            assert [c["rpId"] for c in credentials] == [NAME]  # the relying party is the configured host
            signed_in = driver.execute_async_script(SIGN_IN)
            assert signed_in.get("userPrincipalName") == user["userPrincipalName"], signed_in
            assert signed_in["amr"] == ["fido", "mfa"]
        finally:
            remove_authenticator(driver, aid)


def test_a_passkey_registers_and_signs_in_in_chromium_at_the_host_name(pki, direct):
    passkey_round_trip(pki, direct["base"], direct["tenant"], direct["token"], direct["admin"], "production")


def test_the_first_administrator_onboards_at_the_host_name_and_opens_the_admin_center(pki, direct):
    """The README's last step: at https://login.contoso.test the first administrator uses the access pass serve printed
    to create a passkey (for that name) on the sign-in page, and the admin center opens with it."""
    from browser import USE_ACCESS_PASS, add_authenticator, chromium, remove_authenticator, wait_for_text

    base, tenant, admin = direct["base"], direct["tenant"], direct["admin"]
    with chromium(f"--host-resolver-rules=MAP {NAME} {ADDRESS}",
                  f"--ignore-certificate-errors-spki-list={spki_hash(pki / 'leaf.pem')}") as driver:
        driver.get(f"{base}/{tenant}/login")
        aid = add_authenticator(driver)
        try:
            driver.find_element("id", "username").send_keys(admin)
            driver.find_element("id", "onboarding").click()
            driver.find_element("id", "tap").send_keys(field(direct["printed"], "access pass"))
            created = driver.execute_async_script(USE_ACCESS_PASS)
            assert created.get("passkeyType") == "deviceBound", created
            credentials = driver.execute_cdp_cmd("WebAuthn.getCredentials", {"authenticatorId": aid})["credentials"]
            assert [c["rpId"] for c in credentials] == [NAME]
            driver.get(f"{base}/admin")
            wait_for_text(driver, "New user")
            assert admin in driver.page_source and driver.current_url.startswith(f"{base}/admin/")
        finally:
            remove_authenticator(driver, aid)


def handshake(ca: Path, port: int) -> bytes:
    """The certificate a new TLS connection to login.contoso.test:port is shown (checked against the test CA)."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((ADDRESS, port), timeout=10) as raw, context.wrap_socket(raw, server_hostname=NAME) as tls:
        return tls.getpeercert(binary_form=True)


def der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n")


def test_a_renewed_certificate_reaches_the_next_handshake_and_open_connections_go_on(pki):
    live = pki / "live"
    live.mkdir()
    shutil.copy(pki / "leaf.pem", live / "fullchain.pem")
    shutil.copy(pki / "leaf-key.pem", live / "privkey.pem")
    proc, printed, port, data, later = serve("--host", ADDRESS, "--public-url", f"https://{NAME}:{{port}}", "--tls-reload-interval", "1",
                                             "--tls-cert", str(live / "fullchain.pem"), "--tls-key", str(live / "privkey.pem"))
    try:
        with resolving(NAME, ADDRESS):
            kept = http.client.HTTPSConnection(NAME, port, context=ssl.create_default_context(cafile=str(pki / "ca.pem")), timeout=10)
            kept.request("GET", "/healthz")
            first = kept.getresponse()
            assert first.status == 200
            first.read()
            kept_socket = kept.sock
            assert kept_socket.getpeercert(binary_form=True) == der(pki / "leaf.pem")

            # The renewal (an RSA key this time) lands key first: that pair does not match, and is not served.
            renewed, renewed_key = issue(pki, "renewed", f"DNS:{NAME}", key="rsa")
            shutil.copy(renewed_key, live / "privkey.pem")
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not any("still serving the previous certificate" in line for line in later) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert any("does not match" in line and "still serving the previous certificate" in line for line in later), "".join(later)
            assert handshake(pki / "ca.pem", port) == der(pki / "leaf.pem")

            # Then the certificate: the next check (every second here) serves the pair to new connections.
            shutil.copy(renewed, live / "fullchain.pem")
            deadline = time.monotonic() + 15
            while handshake(pki / "ca.pem", port) != der(renewed) and time.monotonic() < deadline:
                time.sleep(0.2)
            assert handshake(pki / "ca.pem", port) == der(renewed)
            assert any("TLS certificate replaced" in line for line in later), "".join(later)

            # The connection opened before goes on, on its own handshake.
            kept.request("GET", "/healthz")
            response = kept.getresponse()
            assert response.status == 200
            response.read()
            assert kept.sock is kept_socket
            assert kept.sock.getpeercert(binary_form=True) == der(pki / "leaf.pem")
            kept.close()
            assert proc.poll() is None  # SIGHUP reloads; it does not stop the server
    finally:
        stop_serve(proc, data)


def test_a_full_chain_with_an_rsa_key_is_served_whole(pki):
    """certbot's fullchain.pem: the server's certificate (an RSA key here), then the intermediate that signed it. A client
    that trusts only the root verifies the name, which it cannot when the file holds the server's certificate alone."""
    folder = pki / "chain"
    folder.mkdir()
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "intermediate-key.pem",
            "-out", "intermediate.csr", "-subj", "/CN=Contoso Test Intermediate", cwd=folder)
    (folder / "intermediate.cnf").write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("x509", "-req", "-in", "intermediate.csr", "-CA", "../ca.pem", "-CAkey", "../ca-key.pem", "-CAcreateserial",
            "-out", "intermediate.pem", "-days", "2", "-extfile", "intermediate.cnf", cwd=folder)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "privkey.pem", "-out", "leaf.csr", "-subj", f"/CN={NAME}", cwd=folder)
    (folder / "leaf.cnf").write_text(f"subjectAltName=DNS:{NAME}\nbasicConstraints=critical,CA:FALSE\n"
                                     "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "intermediate.pem", "-CAkey", "intermediate-key.pem", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "leaf.cnf", cwd=folder)
    (folder / "fullchain.pem").write_text((folder / "cert.pem").read_text() + (folder / "intermediate.pem").read_text())
    for chain, whole in ((folder / "fullchain.pem", True), (folder / "cert.pem", False)):
        proc, printed, port, data, _ = serve("--host", ADDRESS, "--public-url", f"https://{NAME}:{{port}}",
                                             "--tls-cert", str(chain), "--tls-key", str(folder / "privkey.pem"))
        try:
            if whole:
                assert handshake(pki / "ca.pem", port) == der(folder / "cert.pem")
                with resolving(NAME, ADDRESS):
                    assert session(pki / "ca.pem").get(f"https://{NAME}:{port}/healthz").text == "ok"
            else:
                with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
                    handshake(pki / "ca.pem", port)
        finally:
            stop_serve(proc, data)


def test_sighup_alone_reloads_the_certificate(pki):
    """With --tls-reload-interval 0 nothing reads the files again but SIGHUP (certbot's deploy hook, `systemctl reload`):
    a renewal on disk is not served until the signal, then the next handshake has it and the server goes on."""
    live = pki / "hup"
    live.mkdir()
    shutil.copy(pki / "leaf.pem", live / "fullchain.pem")
    shutil.copy(pki / "leaf-key.pem", live / "privkey.pem")
    proc, printed, port, data, later = serve("--host", ADDRESS, "--public-url", f"https://{NAME}:{{port}}", "--tls-reload-interval", "0",
                                             "--tls-cert", str(live / "fullchain.pem"), "--tls-key", str(live / "privkey.pem"))
    try:
        assert f"TLS: serving {live / 'fullchain.pem'} (read again only on SIGHUP)" in printed, printed
        renewed, renewed_key = issue(pki, "renewed-hup", f"DNS:{NAME}")
        shutil.copy(renewed_key, live / "privkey.pem")
        shutil.copy(renewed, live / "fullchain.pem")
        time.sleep(2)
        assert handshake(pki / "ca.pem", port) == der(pki / "leaf.pem"), "the files were read again without SIGHUP"
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while handshake(pki / "ca.pem", port) != der(renewed) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert handshake(pki / "ca.pem", port) == der(renewed)
        assert any("SIGHUP: reading the TLS certificate files again" in line for line in later), "".join(later)
        assert proc.poll() is None
    finally:
        stop_serve(proc, data)


@pytest.mark.parametrize("options", [(), ("--http",)], ids=["local-ca", "http"])
def test_sighup_without_a_certificate_of_its_own_does_not_stop_the_server(options):
    """`systemctl reload tessera` (the unit's ExecReload sends SIGHUP) on a server with the generated certificate, or on
    plain http behind a proxy: nothing to read again, said in the log; the server goes on (the signal's default would
    have ended it)."""
    proc, printed, port, data, later = serve(*options)
    try:
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any("SIGHUP: nothing to read again" in line for line in later) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("SIGHUP: nothing to read again (no --tls-cert)" in line for line in later), "".join(later)
        assert proc.poll() is None
        scheme = "http" if options else "https"
        answer = requests.get(f"{scheme}://localhost:{port}/healthz", verify=str(data / "tls" / "ca.pem") if not options else True, timeout=10)
        assert answer.status_code == 200 and answer.text == "ok", answer.text
    finally:
        stop_serve(proc, data)


def refused(*options: str) -> str:
    """What `tessera serve` says when it refuses to start with `options` (it must exit, not listen)."""
    data = Path(tempfile.mkdtemp(prefix="tessera-refused-"))
    try:
        done = subprocess.run([BINARY, "serve", "--data", str(data), "--host", ADDRESS, "--port", str(free_port()), *options],
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode != 0, done.stdout
        assert "listening on" not in done.stdout
        return done.stderr + done.stdout
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_serve_refuses_a_certificate_it_cannot_serve_and_says_why(pki):
    url = f"https://{NAME}"
    other, other_key = issue(pki, "other", "DNS:login.fabrikam.test")
    said = refused("--public-url", url, "--tls-cert", str(other), "--tls-key", str(other_key))
    assert f"cannot be served for {url}: the certificate does not cover {NAME}: it names DNS:login.fabrikam.test" in said, said

    said = refused("--public-url", url, "--tls-cert", str(pki / "leaf.pem"), "--tls-key", str(other_key))
    assert f"the key in {other_key} does not match the certificate in {pki / 'leaf.pem'}" in said, said

    expired, expired_key = issue(pki, "expired", f"DNS:{NAME}", days="-1")
    said = refused("--public-url", url, "--tls-cert", str(expired), "--tls-key", str(expired_key))
    assert "the certificate expired on " in said, said

    # Without --public-url the canonical name is localhost, which this certificate is not for.
    said = refused("--tls-cert", str(pki / "leaf.pem"), "--tls-key", str(pki / "leaf-key.pem"))
    assert f"the certificate does not cover localhost: it names DNS:{NAME}" in said, said

    said = refused("--tls-cert", str(pki / "leaf.pem"))
    assert "--tls-cert and --tls-key go together" in said, said
    # Plain http to other machines needs saying so; behind a proxy with https names, the proxy must be named.
    said = refused("--http", "--host", "0.0.0.0")
    assert "would serve plain http to other machines" in said, said
    said = refused("--http", "--host", "127.0.0.1", "--public-url", url)
    assert "name it with --trusted-proxy (Tessera believes only its X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host headers" in said, said
    said = refused("--http", "--host", "127.0.0.1", "--public-url", url, "--forwarded-headers", "forwarded")
    assert "Tessera believes only its Forwarded header (RFC 7239: for=, proto= and host=)" in said, said


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {address}:{port} ssl;
        server_name {name};
        ssl_certificate {certificate};
        ssl_certificate_key {key};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind {source};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            {forwarding}
        }}
    }}
}}
"""
# How nginx passes on the client's scheme, host and address: the X-Forwarded headers (Tessera's default), or RFC 7239
# Forwarded alone with Host set to a name Tessera does not serve (so only host= can make the request one it answers).
X_FORWARDED = """proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"""
FORWARDED = """proxy_set_header Host tessera.internal;
            proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$http_host\\"";"""


@pytest.fixture(scope="module")
def behind_nginx(pki):
    """Tessera on plain http at 127.0.0.1, trusting only 127.0.0.6, and nginx (Debian's) on 127.0.0.5 terminating TLS
    with the test CA's certificate for login.contoso.test and forwarding from 127.0.0.6."""
    yield from nginx_in_front(pki, X_FORWARDED)


@pytest.fixture(scope="module")
def behind_nginx_forwarded(pki):
    """As behind_nginx, nginx saying the client's scheme, host and address in RFC 7239 Forwarded only."""
    yield from nginx_in_front(pki, FORWARDED, "--forwarded-headers", "forwarded")


def nginx_in_front(pki, forwarding: str, *options: str):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.access(nginx, os.X_OK), "Debian's nginx is not installed (scripts/test installs it)"
    public = free_port()
    proc, printed, port, data, _ = serve("--http", "--host", "127.0.0.1", "--public-url", f"https://{NAME}:{public}",
                                         "--trusted-proxy", NGINX_SOURCE, *options)
    folder = Path(tempfile.mkdtemp(prefix="tessera-nginx-"))
    folder.chmod(0o755)
    (folder / "nginx.conf").write_text(NGINX_CONF.format(dir=folder, address=ADDRESS, port=public, name=NAME, upstream=port,
                                                         source=NGINX_SOURCE, certificate=pki / "leaf.pem", key=pki / "leaf-key.pem",
                                                         forwarding=forwarding))
    test = subprocess.run([nginx, "-t", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log")],
                          capture_output=True, text=True)
    assert test.returncode == 0, test.stderr
    server = subprocess.Popen([nginx, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", str(folder / "error.log"),
                               "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((ADDRESS, public), timeout=1):
            break
        assert server.poll() is None, server.stderr.read()
        time.sleep(0.1)
    try:
        yield {"base": f"https://{NAME}:{public}", "tessera": f"http://127.0.0.1:{port}", "printed": printed,
               "tenant": field(printed, "tenant id"), "admin": field(printed, "administrator"), "folder": folder}
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        stop_serve(proc, data)
        shutil.rmtree(folder, ignore_errors=True)


def sign_ins_from(s: requests.Session, base: str, token: str, address: str) -> list[dict]:
    """The sign-in log's entries from `address`."""
    r = s.get(f"{base}/v1.0/auditLogs/signIns", headers={"Authorization": f"Bearer {token}"},
              params={"$filter": f"ipAddress eq '{address}'", "$top": "999"})
    assert r.status_code == 200, r.text
    return r.json()["value"]


def test_behind_nginx_the_issuer_is_the_public_url(pki, behind_nginx):
    base, tenant = behind_nginx["base"], behind_nginx["tenant"]
    with resolving(NAME, ADDRESS):
        s = session(pki / "ca.pem")
        config = s.get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration")
        assert config.status_code == 200, config.text
        assert config.json()["issuer"] == f"{base}/{tenant}/v2.0"
        assert config.json()["token_endpoint"] == f"{base}/{tenant}/oauth2/v2.0/token"
        assert config.headers.get("Strict-Transport-Security") == "max-age=31536000"  # https, as the client used it
        token = client_token(s, base, behind_nginx["printed"])
        assert claims(token)["iss"] == f"{base}/{tenant}/v2.0"
        users = s.get(f"{base}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200, users.text
        assert users.json()["@odata.context"].startswith(f"{base}/v1.0/")

        # MSAL, as an app would use it, through nginx.
        import msal
        app = msal.ConfidentialClientApplication(field(behind_nginx["printed"], "client id"),
                                                 client_credential=field(behind_nginx["printed"], "client secret"),
                                                 authority=f"{base}/{tenant}", instance_discovery=False, http_client=session(pki / "ca.pem"))
        result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
        assert "access_token" in result, result
        assert claims(result["access_token"])["iss"] == f"{base}/{tenant}/v2.0"


def test_behind_nginx_a_passkey_registers_and_signs_in_in_chromium(pki, behind_nginx):
    with resolving(NAME, ADDRESS):
        token = client_token(session(pki / "ca.pem"), behind_nginx["base"], behind_nginx["printed"])
    passkey_round_trip(pki, behind_nginx["base"], behind_nginx["tenant"], token, behind_nginx["admin"], "proxied")


def test_behind_nginx_only_nginx_is_believed(pki, behind_nginx):
    base, tenant, admin = behind_nginx["base"], behind_nginx["tenant"], behind_nginx["admin"]
    with resolving(NAME, ADDRESS):
        # A client at 127.0.0.9 that claims to be 198.51.100.50: nginx adds the address it saw, Tessera takes that.
        attempt = session(pki / "ca.pem", source=CLIENT).post(
            f"{base}/{tenant}/login/tap", json={"username": admin, "temporaryAccessPass": "00000000"},
            headers={"X-Forwarded-For": "198.51.100.50", "Origin": base})
        assert attempt.status_code == 400, attempt.text
        s = session(pki / "ca.pem")
        token = client_token(s, base, behind_nginx["printed"])

        def sign_ins(address: str) -> list[dict]:
            return sign_ins_from(s, base, token, address)
        assert [entry["userPrincipalName"] for entry in sign_ins(CLIENT)] == [admin]
        assert sign_ins("198.51.100.50") == [] and sign_ins(NGINX_SOURCE) == []

    # Around nginx, straight to Tessera's plain http port: the same headers from an untrusted peer are not believed,
    # so the request is for http://login.contoso.test, a name Tessera does not answer to.
    direct = requests.get(f"{behind_nginx['tessera']}/{tenant}/v2.0/.well-known/openid-configuration",
                          headers={"Host": base.split("//")[1], "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.51"})
    assert direct.status_code == 421, direct.text
    assert "Strict-Transport-Security" not in direct.headers


def test_behind_nginx_with_forwarded_only_its_forwarded_header_is_believed(pki, behind_nginx_forwarded):
    """nginx sends RFC 7239 Forwarded (for=, proto=, host=) and a Host Tessera does not serve: the issuer is the public
    URL (host= and proto=), the sign-in log has the client's address (for=); a client's own Forwarded and X-Forwarded-*
    change nothing, and around nginx the same Forwarded from an untrusted peer is 421."""
    proxied = behind_nginx_forwarded
    base, tenant, admin = proxied["base"], proxied["tenant"], proxied["admin"]
    with resolving(NAME, ADDRESS):
        s = session(pki / "ca.pem")
        metadata = s.get(f"{base}/{tenant}/v2.0/.well-known/openid-configuration")
        assert metadata.status_code == 200, metadata.text
        assert metadata.json()["issuer"] == f"{base}/{tenant}/v2.0"
        attempt = session(pki / "ca.pem", source=CLIENT).post(
            f"{base}/{tenant}/login/tap", json={"username": admin, "temporaryAccessPass": "00000000"},
            headers={"Forwarded": "for=198.51.100.60;host=evil.example", "X-Forwarded-For": "198.51.100.61", "Origin": base})
        assert attempt.status_code == 400, attempt.text
        token = client_token(s, base, proxied["printed"])

        def sign_ins(address: str) -> list[dict]:
            return sign_ins_from(s, base, token, address)
        assert [entry["userPrincipalName"] for entry in sign_ins(CLIENT)] == [admin]
        assert sign_ins("198.51.100.60") == [] and sign_ins("198.51.100.61") == [] and sign_ins(NGINX_SOURCE) == []

    direct = requests.get(f"{proxied['tessera']}/{tenant}/v2.0/.well-known/openid-configuration",
                          headers={"Forwarded": f"for=198.51.100.62;proto=https;host=\"{base.split('//')[1]}\""})
    assert direct.status_code == 421, direct.text
