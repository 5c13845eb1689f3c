"""An attacker on the port, against a running `tessera serve` over TLS: bodies that Graph refuses before reading,
silent and hoarded connections, a forged Host or X-Forwarded-For, and guessing a Temporary Access Pass.

The server here is started with short limits (a 2-second idle timeout, 20 connections per address) and trusts
127.0.0.1 as a reverse proxy, so a test can speak for several client addresses through X-Forwarded-For, while a
connection from 127.0.0.2 is an untrusted peer."""
from __future__ import annotations

import os
import re
import select
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from support import serve_on_a_free_port, stop_serve

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
IDLE = 2
PER_ADDRESS = 20
RATE = 5  # requests a second per Graph caller and per token client address, ten at once


def serve(*options: str):
    """`tessera serve` over TLS on a fresh data folder with `options`; its output drained. Returns the process, what it
    printed, its port and the folder."""
    data = Path(tempfile.mkdtemp(prefix="tessera-attacks-"))
    proc, printed, port = serve_on_a_free_port(lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port), *options])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, printed, port, data


@pytest.fixture(scope="module")
def server():
    proc, printed, port, data = serve("--idle-timeout", str(IDLE), "--max-connections-per-address", str(PER_ADDRESS),
                                      "--trusted-proxy", "127.0.0.1", "--graph-rate-limit", str(RATE), "--token-rate-limit", str(RATE))
    field = lambda name: re.search(rf"{name}:\s+(\S+)", printed).group(1)  # noqa: E731
    ca = str(data / "tls" / "ca.pem")
    base = f"https://localhost:{port}"
    session = requests.Session()
    session.verify, session.trust_env = ca, False
    token = session.post(f"{base}/{field('tenant id')}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": field("client id"), "client_secret": field("client secret"),
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    try:
        yield {"port": port, "base": base, "ca": ca, "pid": proc.pid, "tenant": field("tenant id"), "token": token,
               "admin": field("administrator"), "tap": field("access pass"), "session": session, "printed": printed}
    finally:
        stop_serve(proc, data)


def tls_socket(server, source: str = "127.0.0.1", timeout: float = 10) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=server["ca"])
    raw = socket.create_connection(("127.0.0.1", server["port"]), timeout=timeout, source_address=(source, 0))
    return context.wrap_socket(raw, server_hostname="localhost")


def status_of(sock: ssl.SSLSocket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    assert match, head[:200]
    return int(match.group(1))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `within` seconds, while the client stays silent."""
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, OSError) as error:
        return not isinstance(error, socket.timeout)


def test_graph_answers_an_unauthenticated_body_before_reading_it(server):
    # Headers promising 4 MB and no token: the answer comes at once, without the server waiting for (or holding) a byte.
    with tls_socket(server) as sock:
        sock.sendall(f"POST /v1.0/users HTTP/1.1\r\nHost: localhost:{server['port']}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 4000000\r\n\r\n".encode())
        sock.settimeout(5)
        assert status_of(sock) == 401


def test_unauthenticated_bodies_do_not_grow_memory(server):
    # Entra's issue: 1,000 such connections took the server from 42 MiB to 4.6 GiB. Here 18 connections each send a
    # whole 3.9 MB body without a token, at once; the server answers each from the headers and holds none of it.
    before = rss_kib(server["pid"])
    body = b"{" + b" " * (3_900_000 - 2) + b"}"
    statuses: list[int] = []

    def attack():
        with tls_socket(server, timeout=30) as sock:
            sock.sendall(f"POST /v1.0/users HTTP/1.1\r\nHost: localhost:{server['port']}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode())
            try:
                sock.sendall(body)
            except OSError:
                pass  # the server may close the connection once it has answered: that is the point
            statuses.append(status_of(sock))

    threads = [threading.Thread(target=attack) for _ in range(PER_ADDRESS - 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses and set(statuses) == {401}, statuses
    grown_mib = (rss_kib(server["pid"]) - before) / 1024
    assert grown_mib < 40, f"the server grew by {grown_mib:.0f} MiB for {len(statuses)} refused 3.9 MB bodies"


def test_anonymous_endpoints_refuse_a_large_body_from_its_headers(server):
    with tls_socket(server) as sock:
        sock.sendall(f"POST /{server['tenant']}/oauth2/v2.0/token HTTP/1.1\r\nHost: localhost:{server['port']}\r\n"
                     f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1048576\r\n\r\n".encode())
        sock.settimeout(5)
        assert status_of(sock) == 413


def test_silent_connections_are_closed(server):
    # No TLS handshake at all, a handshake and then nothing, and a request head that never ends.
    raw = socket.create_connection(("127.0.0.1", server["port"]), timeout=10)
    handshaken = tls_socket(server)
    trickle = tls_socket(server)
    trickle.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{server['port']}\r\nX-Slow: ".encode())
    try:
        for sock in (raw, handshaken, trickle):
            assert closed_by_server(sock, IDLE + 8), "a silent connection stayed open"
    finally:
        for sock in (raw, handshaken, trickle):
            sock.close()


@pytest.fixture(scope="module")
def patient_server():
    """A server whose idle timeout (60 s) outlasts the test, so that only the per-address limit closes connections."""
    proc, _, port, data = serve("--idle-timeout", "60", "--max-connections-per-address", str(PER_ADDRESS))
    try:
        yield {"port": port, "ca": str(data / "tls" / "ca.pem")}
    finally:
        stop_serve(proc, data)


def healthz(server, source: str = "127.0.0.1") -> int:
    with tls_socket(server, source=source) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: localhost:{server['port']}\r\n\r\n".encode())
        return status_of(sock)


def first_closed(socks: list[socket.socket], within: float) -> list[socket.socket]:
    """The sockets the server has closed (EOF or reset) once the first of them is, waiting at most `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        readable, _, _ = select.select(socks, [], [], max(0.0, deadline - time.monotonic()))
        closed = [sock for sock in readable if closed_by_server(sock, 0.1)]
        if closed:
            return closed
    return []


def test_one_address_cannot_hold_every_connection_and_the_server_recovers(patient_server):
    server = patient_server
    # One more connection than an address may hold: exactly one of them (whichever the server accepted last) is closed.
    hoard = [socket.create_connection(("127.0.0.1", server["port"]), timeout=10) for _ in range(PER_ADDRESS + 1)]
    try:
        closed = first_closed(hoard, 5)
        assert len(closed) == 1, f"{len(closed)} connections closed"
        held = [sock for sock in hoard if sock not in closed]
        # Another address is served meanwhile.
        assert healthz(server, source="127.0.0.2") == 200
        # Once the hoard lets go of some, the address is served again: wait (bounded) for the first answer.
        for sock in held[:5]:
            sock.close()
        deadline, status = time.monotonic() + 5, None
        while status != 200 and time.monotonic() < deadline:
            try:
                status = healthz(server)
            except (OSError, AssertionError):
                status = None
        assert status == 200
    finally:
        for sock in hoard:
            sock.close()


def test_a_forged_host_steers_no_url(server):
    session, port, tenant = server["session"], server["port"], server["tenant"]
    config = session.get(f"{server['base']}/{tenant}/v2.0/.well-known/openid-configuration").json()
    assert config["issuer"] == f"https://localhost:{port}/{tenant}/v2.0"
    forged = session.get(f"{server['base']}/{tenant}/v2.0/.well-known/openid-configuration", headers={"Host": "evil.example"})
    assert forged.status_code == 421 and forged.json()["error"]["code"] == "Request_MisdirectedRequest"
    # The address serve prints is a name a passkey can be bound to, never an IP address.
    assert f"token:         POST https://localhost:{port}/{tenant}/oauth2/v2.0/token" in server["printed"]


def test_security_headers(server):
    response = server["session"].get(f"{server['base']}/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Not on localhost: HSTS there would outlive this server and break every other local site.
    assert "Strict-Transport-Security" not in response.headers


def tap(server, username: str, passcode: str, client: str, source: str = "127.0.0.1") -> requests.Response:
    """A Temporary Access Pass attempt as the sign-in page makes it, sent by `source` on behalf of `client`."""
    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    adapter = requests.adapters.HTTPAdapter()
    adapter.init_poolmanager(1, 1, source_address=(source, 0))
    session.mount("https://", adapter)
    return session.post(f"{server['base']}/{server['tenant']}/login/tap", json={"username": username, "temporaryAccessPass": passcode},
                        headers={"X-Forwarded-For": client, "Origin": server["base"]})


def sign_ins(server, address: str) -> list[dict]:
    response = server["session"].get(f"{server['base']}/v1.0/auditLogs/signIns", headers={"Authorization": f"Bearer {server['token']}"},
                                     params={"$filter": f"ipAddress eq '{address}'", "$top": "999"})
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(server):
    # 127.0.0.1 is the configured proxy: whom it forwards for is the client. 127.0.0.2 is not: its header is ignored.
    assert tap(server, "nobody@nowhere.test", "00000000", client="198.51.100.20").status_code == 400
    assert tap(server, "nobody@nowhere.test", "00000000", client="198.51.100.21", source="127.0.0.2").status_code == 400
    assert len(sign_ins(server, "198.51.100.20")) == 1
    assert sign_ins(server, "198.51.100.21") == []
    assert len(sign_ins(server, "127.0.0.2")) >= 1


def test_smart_lockout_stops_the_guesser_not_the_user(server):
    attacker, user = "203.0.113.66", "198.51.100.7"
    for _ in range(10):
        response = tap(server, server["admin"], "12345678", client=attacker)
        assert response.status_code == 400 and "tap.invalid" in response.json()["error_codes"], response.text
    # Locked for the attacker's address: even the right pass is refused there, with Retry-After, and the lock is logged once.
    locked = tap(server, server["admin"], server["tap"], client=attacker)
    assert locked.status_code == 400 and "AADSTS50053" in locked.json()["error_codes"], locked.text
    assert int(locked.headers["Retry-After"]) > 0
    records = sign_ins(server, attacker)
    assert [r["status"]["errorCode"] for r in records].count(50053) == 1, records
    assert len(records) == 11
    # The real user, from their own address, still gets in with their pass.
    welcome = tap(server, server["admin"], server["tap"], client=user)
    assert welcome.status_code == 200 and welcome.json()["enrollmentToken"], welcome.text


def test_a_source_that_keeps_failing_is_throttled_and_writes_little(server):
    source = "203.0.113.99"
    statuses = []
    for attempt in range(60):
        statuses.append(tap(server, f"guess{attempt}@nowhere.test", "00000000", client=source).status_code)
    assert 429 in statuses, statuses
    throttled = tap(server, "another@nowhere.test", "00000000", client=source)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    # What the guessing wrote is bounded by the burst, not by how fast it guessed.
    assert len(sign_ins(server, source)) <= 31


def test_graph_and_the_token_endpoint_throttle_a_caller_with_retry_after(server):
    session, bearer = server["session"], {"Authorization": f"Bearer {server['token']}"}
    answers = [session.get(f"{server['base']}/v1.0/organization", headers=bearer) for _ in range(4 * RATE)]
    throttled = [r for r in answers if r.status_code == 429]
    assert throttled and all(r.status_code in (200, 429) for r in answers), [r.status_code for r in answers]
    assert throttled[0].json()["error"]["code"] == "TooManyRequests" and int(throttled[0].headers["Retry-After"]) >= 1
    tokens = [session.post(f"{server['base']}/{server['tenant']}/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
              for _ in range(4 * RATE)]
    assert 429 in [r.status_code for r in tokens] and all(r.status_code in (400, 429) for r in tokens)
    # Waiting as told is enough.
    time.sleep(int(throttled[-1].headers["Retry-After"]) + 1)
    assert session.get(f"{server['base']}/v1.0/organization", headers=bearer).status_code == 200
