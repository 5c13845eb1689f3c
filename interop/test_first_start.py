"""The README's run command on an empty data folder: `tessera serve` creates a tenant, prints how to reach it
once, serves HTTPS with the CA it generated, refuses TLS older than 1.2, and keeps its data across restarts."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import msal
import pytest
import requests

from support import serve_on_a_free_port

from conftest import REPO_ROOT

BINARY = os.environ.get("TESSERA_BIN", str(REPO_ROOT / ".build" / "debug" / "tessera"))


def _serve(data: Path) -> tuple[subprocess.Popen, list[str], int]:
    """Starts `tessera serve` on a free port and returns it with the lines it printed up to 'listening' and the port."""
    proc, printed, port = serve_on_a_free_port(lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port)])
    return proc, printed.splitlines(keepends=True), port


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def first_start():
    data = Path(tempfile.mkdtemp(prefix="tessera-first-start-"))
    proc, lines, port = _serve(data)
    try:
        yield data, port, "".join(lines)
    finally:
        _stop(proc)
        shutil.rmtree(data, ignore_errors=True)


def _field(text: str, name: str) -> str:
    found = re.search(rf"{name}:\s+(\S+)", text)
    assert found, f"'{name}' not printed:\n{text}"
    return found.group(1)


def test_first_start_prints_a_tenant_that_msal_can_use(first_start):
    data, port, printed = first_start
    tenant, client, secret = _field(printed, "tenant id"), _field(printed, "client id"), _field(printed, "client secret")
    assert (data / "tls" / "ca.pem").exists()
    session = requests.Session()
    session.verify, session.trust_env = str(data / "tls" / "ca.pem"), False
    app = msal.ConfidentialClientApplication(client, client_credential=secret, authority=f"https://127.0.0.1:{port}/{tenant}",
                                             instance_discovery=False, http_client=session)
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    users = session.get(f"https://127.0.0.1:{port}/v1.0/users",
                        headers={"Authorization": f"Bearer {result['access_token']}"}).json()["value"]
    assert [u["userPrincipalName"] for u in users] == ["admin@tessera.local"]


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_tls_older_than_1_2_is_refused(first_start, version):
    _, port, _ = first_start
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            with context.wrap_socket(raw, server_hostname="localhost"):
                pass
    assert "PROTOCOL_VERSION" in str(refused.value).upper() or "VERSION" in str(refused.value).upper()


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_tls_1_2_and_1_3_are_accepted(first_start, version):
    data, port, _ = first_start
    context = ssl.create_default_context(cafile=str(data / "tls" / "ca.pem"))
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == version.replace("_", ".")


def test_a_restart_keeps_the_tenant_and_prints_no_new_secret(first_start):
    data, _, printed = first_start
    proc, lines, port = _serve(data)  # a second server over the same data folder
    try:
        assert "client secret" not in "".join(lines) and "access pass" not in "".join(lines)
        tenant = _field(printed, "tenant id")
        meta = requests.get(f"https://127.0.0.1:{port}/{tenant}/v2.0/.well-known/openid-configuration",
                            verify=str(data / "tls" / "ca.pem")).json()
        assert meta["issuer"] == f"https://127.0.0.1:{port}/{tenant}/v2.0"
    finally:
        _stop(proc)


def test_first_start_prints_a_one_time_access_pass_for_the_administrator(first_start):
    data, port, printed = first_start
    passcode = _field(printed, "access pass")
    assert len(passcode) == 12 and "one use" in printed
    tenant, client, secret = _field(printed, "tenant id"), _field(printed, "client id"), _field(printed, "client secret")
    session = requests.Session()
    session.verify, session.trust_env = str(data / "tls" / "ca.pem"), False
    token = session.post(f"https://127.0.0.1:{port}/{tenant}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": client, "client_secret": secret,
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    admin = _field(printed, "administrator")
    methods = session.get(f"https://127.0.0.1:{port}/v1.0/users/{admin}/authentication/temporaryAccessPassMethods",
                          headers={"Authorization": f"Bearer {token}"}).json()["value"]
    assert len(methods) == 1 and methods[0]["isUsableOnce"] is True and methods[0]["isUsable"] is True
    assert methods[0]["lifetimeInMinutes"] == 480 and methods[0]["temporaryAccessPass"] is None
