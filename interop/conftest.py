"""Start a real Tessera and hand real Microsoft clients to the tests.

The session fixture creates two tenants with `tessera tenant create` (A: Contoso, B: Fabrikam), starts
`tessera serve` on a free port and waits for GET /healthz over HTTPS, trusting only the CA that Tessera
generated (DATA/tls/ca.pem). It stops the server with SIGTERM at the end.

Environment:
  TESSERA_BIN               server binary (default: .build/debug/tessera under the repository root)
  TESSERA_INTEROP_DATABASE  "sqlite" (default: Tessera's own SQLite in its data folder) or a postgres:// URL
  TESSERA_INTEROP_WORKDIR   folder for the data folder, server.log and server.pid (default: a new temp folder)
  TESSERA_INTEROP_URL       use a Tessera that is already running (e.g. https://127.0.0.1:8443) instead of
  TESSERA_INTEROP_DATA        starting one; TESSERA_INTEROP_DATA must then be its --data folder (the CA and
                              `tenant create` use it, with TESSERA_INTEROP_DATABASE as its --database)

The clients and checks the tests use are in support.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from support import Graph, Sdk, Session, Tenant, Tessera

# test_sync_streaming.py measures a 100,000-user sync on SQLite; the test command's PostgreSQL interop run does not
# collect it (the same sync takes ~12 minutes there with the debug build; the streaming is the same code for both).
collect_ignore = [] if os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite") in ("", "sqlite") else ["test_sync_streaming.py"]

REPO_ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------------ server lifecycle
_STATE: dict = {"log": None, "proc": None, "pidfile": None}
_LOG_OFFSET = pytest.StashKey[int]()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path | None, offset: int = 0, lines: int = 80) -> str:
    if not path or not path.exists():
        return "(no server log)"
    with open(path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:]) or "(nothing logged)"


def _parse_json_object(stdout: str) -> dict:
    try:
        return json.loads(stdout)
    except ValueError:
        for line in reversed(stdout.splitlines()):
            if line.strip().startswith("{"):
                return json.loads(line)
    raise AssertionError(f"no JSON object in the output of tenant create: {stdout!r}")


def _create_tenant(binary: str, data: Path, db_args: list[str], name: str, domain: str) -> Tenant:
    cmd = [binary, "tenant", "create", "--data", str(data), "--name", name, "--domain", domain, "--json", *db_args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return Tenant.from_json(_parse_json_object(p.stdout))


def _wait_healthy(base_url: str, ca: Path, proc: subprocess.Popen | None, log: Path | None, timeout=60.0):
    deadline, last = time.monotonic() + timeout, "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"tessera serve exited with {proc.returncode}:\n{_tail(log)}")
        if ca.exists():
            try:
                r = Session(str(ca)).get(f"{base_url}/healthz", timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
        time.sleep(0.25)
    raise AssertionError(f"{base_url}/healthz not ready after {timeout}s (last: {last}):\n{_tail(log)}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def tessera(request):
    binary = os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")
    database = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
    db_args = [] if database in ("", "sqlite") else ["--database", database]
    suffix = uuid.uuid4().hex[:6]  # unique domains: a reused PostgreSQL database may hold earlier runs
    names = (("Contoso", f"contoso-{suffix}.test"), ("Fabrikam", f"fabrikam-{suffix}.test"))

    attach_url = os.environ.get("TESSERA_INTEROP_URL")
    if attach_url:
        data = Path(os.environ["TESSERA_INTEROP_DATA"])
        tenants = [_create_tenant(binary, data, db_args, *n) for n in names]
        _wait_healthy(attach_url.rstrip("/"), data / "tls" / "ca.pem", None, None, timeout=10)
        yield Tessera(attach_url, str(data / "tls" / "ca.pem"), *tenants)
        return

    assert os.access(binary, os.X_OK), f"no Tessera binary at {binary} (run swift build, or set TESSERA_BIN)"
    own_workdir = not os.environ.get("TESSERA_INTEROP_WORKDIR")
    workdir = Path(os.environ.get("TESSERA_INTEROP_WORKDIR") or tempfile.mkdtemp(prefix="tessera-interop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data, log, pidfile = workdir / "data", workdir / "server.log", workdir / "server.pid"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir()
    _STATE["log"] = log
    tenants = [_create_tenant(binary, data, db_args, *n) for n in names]

    proc = None
    for attempt in range(2):  # a second try only if the free port was taken in between
        port = _free_port()
        base_url = f"https://127.0.0.1:{port}"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [binary, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(port), *db_args,
                 # the test PKI's attestation root (interop/webauthn/testpki), for profiles that enforce attestation
                 "--attestation-roots", str(Path(__file__).resolve().parent / "webauthn" / "testpki" / "attestation-root.pem")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        pidfile.write_text(str(proc.pid))
        _STATE.update(proc=proc, pidfile=pidfile)
        try:
            _wait_healthy(base_url, data / "tls" / "ca.pem", proc, log)
            break
        except AssertionError:
            _stop(proc)
            pidfile.unlink(missing_ok=True)
            if attempt == 1 or "in use" not in _tail(log, lines=20).lower():
                raise
    try:
        yield Tessera(base_url, str(data / "tls" / "ca.pem"), *tenants)
    finally:
        _stop(proc)
        pidfile.unlink(missing_ok=True)
        _STATE["proc"] = None
        if own_workdir and request.session.testsfailed == 0:
            shutil.rmtree(workdir, ignore_errors=True)
            _STATE["log"] = None


@pytest.fixture(scope="session")
def tenant_a(tessera) -> Tenant:
    return tessera.tenant_a


@pytest.fixture(scope="session")
def tenant_b(tessera) -> Tenant:
    return tessera.tenant_b


@pytest.fixture(scope="session")
def graph(tessera, tenant_a) -> Graph:
    """Graph v1.0 as tenant A's admin app (all eight permissions)."""
    return tessera.graph(tenant_a)


@pytest.fixture(scope="session")
def graph_b(tessera, tenant_b) -> Graph:
    return tessera.graph(tenant_b)



@pytest.fixture(scope="session")
def sdk(tessera, tenant_a):
    s = Sdk(tessera, tenant_a)
    # Warm-up: the first parsed User imports ~1,300 generated modules (4-9 s); pay it once, here.
    from kiota_abstractions.base_request_configuration import RequestConfiguration
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    qp = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=1)
    s.run(s.client.users.get(request_configuration=RequestConfiguration(query_parameters=qp)))
    yield s
    s.close()


# ------------------------------------------------------------------------------------------ reporting hooks
def _on_sigterm(signum, frame):
    # Raising KeyboardInterrupt here is not enough: it can land in a weakref callback and be swallowed.
    # Stop the server ourselves, then die of SIGTERM as if no handler had been installed.
    proc = _STATE.get("proc")
    if proc is not None:
        _stop(proc)
        _STATE["pidfile"].unlink(missing_ok=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def pytest_configure(config):
    signal.signal(signal.SIGTERM, _on_sigterm)
    logging.getLogger("azure").setLevel(logging.WARNING)  # its per-request header dumps drown the useful lines


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    log = _STATE["log"]
    item.stash[_LOG_OFFSET] = log.stat().st_size if log and log.exists() else 0


def _failure_folder() -> Path:
    """Where a failed browser test's page goes: beside the server log the suite keeps, else the work folder."""
    log = _STATE["log"]
    base = log.parent if log else Path(os.environ.get("TESSERA_INTEROP_WORKDIR") or tempfile.gettempdir())
    folder = base / "failures"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _keep_the_page(item) -> list[str]:
    """Saves, for each browser the failed test used, the page as it was at the failure: a screenshot, the HTML
    and the browser's console log. Returns what was written (or why nothing could be)."""
    kept = []
    for name, driver in item.funcargs.items():
        if not (hasattr(driver, "save_screenshot") and hasattr(driver, "page_source")):
            continue
        # interop/test_x.py::test_y[param] and the fixture's name -> test_x-test_y_param_-browser
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", f"{Path(item.fspath).stem}-{item.name}-{name}")[-150:]
        png, html, console_txt = (_failure_folder() / (stem + suffix) for suffix in (".png", ".html", ".console.txt"))
        try:
            kept.append(f"url: {driver.current_url}")
            driver.save_screenshot(str(png))
            html.write_text(driver.page_source)
            kept += [str(png), str(html)]
            console = "\n".join(f"{e.get('level')} {e.get('message')}" for e in driver.get_log("browser"))
            if console:
                console_txt.write_text(console)
                kept.append(str(console_txt))
        except Exception as error:  # a browser that crashed: say so, and keep the test's own failure in front
            kept.append(f"could not save the page of '{name}': {error!r}")
    return kept


@pytest.fixture(scope="module")
def origin(tessera) -> str:
    """The interop server, addressed as localhost (WebAuthn refuses IP addresses as relying-party ids)."""
    return tessera.base_url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def browser(tessera):
    """Chromium trusting exactly the interop server's certificate (by its key's hash), for the modules that sign in with
    a passkey at `origin` (a module may define its own `browser` instead)."""
    from browser import chromium  # selenium only for the modules that use a browser

    leaf = x509.load_pem_x509_certificate((Path(tessera.ca).parent / "server.pem").read_bytes())
    spki = leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with chromium(f"--ignore-certificate-errors-spki-list={base64.b64encode(hashlib.sha256(spki).digest()).decode()}") as driver:
        yield driver


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when == "call":
        kept = _keep_the_page(item)  # before teardown, while the browser still shows the page
        if kept:
            report.sections.append(("the browser at the failure", "\n".join(kept)))
    if report.failed and _STATE["log"]:
        offset = item.stash.get(_LOG_OFFSET, 0) if call.when == "call" else 0
        report.sections.append(("tessera server log during this test", _tail(_STATE["log"], offset, 60)))


def pytest_terminal_summary(terminalreporter):
    if _STATE["log"] and terminalreporter.stats.get("failed"):
        terminalreporter.write_line(f"tessera server log: {_STATE['log']}")
