"""A Tessera cluster (issue 19): two `tessera serve` nodes on one PostgreSQL behind HAProxy, started by scripts/cluster-up
(its own throwaway PostgreSQL, whatever TESSERA_INTEROP_DATABASE says), stopped by scripts/cluster-down.

- Caches across nodes: a removed client secret, a Conditional Access policy that blocks a service principal, a user's
  revoked sessions and a disabled user are written through node 1; node 2, which used each of them just before, must
  refuse within the documented bound (the tenant record it caches lives at most 1 s). Each delay is measured and
  printed; the assertion is that the change takes effect (polled for up to 30 s), not a wall-clock bound.
- Graceful shutdown: a request whose body is still arriving when node 1 gets SIGTERM is answered (201) after the listener
  has closed; a recovery job node 1 is running when it stops is handed back (the job says so) and node 2 takes it up at
  once and finishes it; node 1 exits 0, long before the recovery alone would have let it. A recovery job of a node
  killed with -9 is taken up by the other node once the job's lease runs out (20 to 30 s later), not before.
- Rolling restart under load: Graph writes and reads through HAProxy from four threads while each node in turn gets
  SIGTERM and is started again; every acknowledged user is there afterwards, and every request that failed failed
  before any answer (connection refused or reset) or with a 503: nothing a client may not simply retry.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from conftest import REPO_ROOT, _create_tenant
from support import PASSWORD, Graph, Session, Tessera, assert_graph_error, unique
from test_passkeys_graph import YUBIKEY, b64u_decode, register

sys.path.insert(0, str(Path(__file__).resolve().parent / "webauthn"))
import softauthn  # noqa: E402

BINARY = os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")
RECOVERY = "#microsoft.graph.entraRecoveryServices.recoveryJob"
PATIENCE = 30.0  # seconds a change may take to be seen before the test calls it lost (the bound is 1 s)


class Node:
    def __init__(self, info: dict):
        self.url, self.port, self.folder = info["url"], info["port"], Path(info["folder"])

    @property
    def pid(self) -> int:
        return int((self.folder / "pid").read_text())

    def running(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except (ProcessLookupError, FileNotFoundError, ValueError):
            return False

    def terminate(self) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def wait_exit(self, timeout: float = 60) -> tuple[int, float]:
        """Waits for the node to exit; returns its exit status and how long that took."""
        started = time.monotonic()
        status = self.folder / "exit-status"
        while not status.exists() or not status.read_text().strip():
            assert time.monotonic() - started < timeout, f"{self.url} still running {timeout} s after SIGTERM"
            time.sleep(0.05)
        return int(status.read_text()), time.monotonic() - started

    def start(self) -> None:
        subprocess.run([str(self.folder / "start")], check=True, timeout=30)

    def wait_ready(self, ca: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.running(), f"{self.url} exited:\n{self.log_tail()}"
            try:
                if Session(ca).get(f"{self.url}/readyz", timeout=3).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.url} not ready after {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        text = (self.folder / "server.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


class Cluster:
    def __init__(self, folder: Path):
        self.folder = folder
        self.info = json.loads((folder / "cluster.json").read_text())
        self.ca, self.lb_url, self.database = self.info["ca"], self.info["lb_url"], self.info["database"]
        self.nodes = [Node(n) for n in self.info["nodes"]]
        self.tenant = _create_tenant(BINARY, Path(self.info["data"]), ["--database", self.database], "Cluster",
                                     f"cluster-{uuid.uuid4().hex[:6]}.test")

    def tessera(self, url: str) -> Tessera:
        return Tessera(url, self.ca, self.tenant, self.tenant)

    def graph(self, url: str) -> Graph:
        return self.tessera(url).graph(self.tenant)

    def logs(self) -> str:
        return "\n".join(f"--- node {i + 1} ({n.url}):\n{n.log_tail(25)}" for i, n in enumerate(self.nodes))


@pytest.fixture(scope="module")
def cluster():
    folder = Path(tempfile.mkdtemp(prefix="tessera-cluster-"))
    os.chmod(folder, 0o755)  # the postgres user must reach the database's folder
    target = folder / "c"
    up = subprocess.run([str(REPO_ROOT / "scripts" / "cluster-up"), str(target), "2", "--bin", BINARY],
                        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    try:
        assert up.returncode == 0, f"scripts/cluster-up exited {up.returncode}:\n{up.stdout}\n{up.stderr}"
        print(up.stdout)
        yield Cluster(target)
    finally:
        subprocess.run([str(REPO_ROOT / "scripts" / "cluster-down"), str(target)], capture_output=True, timeout=180)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def poll_until(check, what: str, patience: float = PATIENCE) -> float:
    """Calls check() until it returns True; returns the seconds that took (a first True counts as 0)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < patience, f"{what}: not seen after {patience} s"
        time.sleep(0.02)
    return time.monotonic() - started


# ------------------------------------------------------------------------------------------ a user's refresh token

def signed_in_refresh_token(cluster: Cluster, node_url: str, graph: Graph) -> tuple[dict, dict, str]:
    """A new user with a passkey signs in on `node_url` (python-fido2's software authenticator, the sign-in page's
    calls), a web app gets a code for them from /authorize and redeems it for a refresh token.
    Returns (user, app with its secret, refresh token)."""
    domain = cluster.tenant.domain
    user = graph.create_user(domain, unique("cl"))
    key = softauthn.SoftAuthenticator("ES256", aaguid=YUBIKEY)
    registered = register(graph, cluster.tessera(node_url), user["id"], key)
    assert registered.status_code == 201, registered.text
    redirect = "https://localhost/callback"
    app = graph.ok("POST", "applications", 201, json={"displayName": unique("web-"), "web": {"redirectUris": [redirect]}})
    graph.ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
    secret = graph.add_password(app["id"])

    browser = Session(cluster.ca)
    tenant = cluster.tenant.tenant_id
    options = browser.post(f"{node_url}/{tenant}/login/passkey/options", json={})
    assert options.status_code == 200, options.text
    options = options.json()
    assertion = key.get_assertion(b64u_decode(options["challenge"]), options["rpId"], node_url, counter=1,
                                  user_handle=user["id"].encode())
    finished = browser.post(f"{node_url}/{tenant}/login/passkey", json=assertion)
    assert finished.status_code == 200, finished.text
    authorize = browser.get(f"{node_url}/{tenant}/oauth2/v2.0/authorize?" + urlencode({
        "client_id": app["appId"], "response_type": "code", "redirect_uri": redirect, "scope": "openid offline_access",
        "state": "s"}), allow_redirects=False)
    assert authorize.status_code == 302, authorize.text
    query = parse_qs(urlsplit(authorize.headers["Location"]).query)
    assert "code" in query, authorize.headers["Location"]
    tokens = browser.post(f"{node_url}/{tenant}/oauth2/v2.0/token", data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect, "client_id": app["appId"],
        "client_secret": secret, "scope": "openid offline_access"})
    assert tokens.status_code == 200 and tokens.json().get("refresh_token"), tokens.text
    return user, {"appId": app["appId"], "secret": secret}, tokens.json()["refresh_token"]


class Refresher:
    """Refreshes one user's tokens at a node, following the rotation."""

    def __init__(self, cluster: Cluster, node_url: str, app: dict, token: str):
        self.http = Session(cluster.ca)
        self.url = f"{node_url}/{cluster.tenant.tenant_id}/oauth2/v2.0/token"
        self.app, self.token = app, token
        self.last: requests.Response | None = None

    def refresh(self) -> bool:
        """True while the refresh works."""
        self.last = self.http.post(self.url, data={"grant_type": "refresh_token", "refresh_token": self.token,
                                                   "client_id": self.app["appId"], "client_secret": self.app["secret"]})
        if self.last.status_code == 200:
            self.token = self.last.json()["refresh_token"]
            return True
        return False


# ------------------------------------------------------------------------------------------ the tests

def test_a_write_on_one_node_takes_effect_on_the_other(cluster):
    one, two = cluster.nodes[0].url, cluster.nodes[1].url
    graph_one = cluster.graph(one)
    delays: dict[str, float] = {}

    # A removed client secret: node 2 has just issued a token with it (its token cache holds the secret's digest).
    app, sp = graph_one.create_app(unique("secret-"))
    secret = graph_one.add_password(app["id"])
    key_id = next(c["keyId"] for c in graph_one.ok("GET", f"applications/{app['id']}")["passwordCredentials"])
    at_two = cluster.tessera(two)
    poll_until(lambda: at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).status_code == 200,
               "the new secret on node 2")
    assert at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).status_code == 200
    graph_one.ok("POST", f"applications/{app['id']}/removePassword", 204, json={"keyId": key_id})
    delays["removed client secret"] = poll_until(
        lambda: at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).status_code != 200,
        "the removed secret refused on node 2")
    refused = at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client", refused.text

    # A Conditional Access policy blocking a service principal: node 2 has compiled the tenant's policies just before.
    app, sp = graph_one.create_app(unique("blocked-"))
    secret = graph_one.add_password(app["id"])
    assert at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).status_code == 200
    graph_one.ok("POST", "identity/conditionalAccess/policies", 201, json={
        "displayName": unique("Block "), "state": "enabled",
        "conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": [sp["id"]]},
                       "applications": {"includeApplications": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}})
    delays["Conditional Access policy"] = poll_until(
        lambda: at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).status_code != 200,
        "the blocking policy on node 2")
    blocked = at_two.request_token(cluster.tenant.tenant_id, app["appId"], secret).json()
    assert blocked["error"] == "invalid_grant" and 53003 in blocked["error_codes"], blocked

    # A user's sessions revoked (revokeSignInSessions) on node 1: node 2 refreshed the user's token just before.
    user, web, token = signed_in_refresh_token(cluster, one, graph_one)
    at_two_user = Refresher(cluster, two, web, token)
    assert at_two_user.refresh(), at_two_user.last.text
    assert graph_one.ok("POST", f"users/{user['id']}/revokeSignInSessions")["value"] is True
    delays["revoked refresh token"] = poll_until(lambda: not at_two_user.refresh(), "the revoked refresh token on node 2")
    assert at_two_user.last.status_code == 400 and at_two_user.last.json()["error"] == "invalid_grant", at_two_user.last.text

    # A disabled user: node 2 refreshed the user's token just before.
    user, web, token = signed_in_refresh_token(cluster, one, graph_one)
    at_two_user = Refresher(cluster, two, web, token)
    assert at_two_user.refresh(), at_two_user.last.text
    graph_one.ok("PATCH", f"users/{user['id']}", 204, json={"accountEnabled": False})
    delays["disabled user"] = poll_until(lambda: not at_two_user.refresh(), "the disabled user on node 2")
    assert at_two_user.last.status_code == 400 and at_two_user.last.json()["error"] == "invalid_grant", at_two_user.last.text

    print("write on node 1, seen on node 2 after: " + ", ".join(f"{k} {v:.2f} s" for k, v in delays.items()))


def slow_post(url: str, ca: str, token: str, body: bytes, before: float, after: float, started: threading.Event) -> tuple[int, bytes]:
    """POSTs `body` sending its first half at once and the rest `after` seconds later; the request head has gone out by
    the time `started` is set. Returns the status and body of the answer."""
    parts = urlsplit(url)
    connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=ssl.create_default_context(cafile=ca), timeout=60)
    connection.putrequest("POST", parts.path)
    connection.putheader("Authorization", f"Bearer {token}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    half = len(body) // 2
    connection.send(body[:half])
    time.sleep(before)
    started.set()
    time.sleep(after)
    connection.send(body[half:])
    answer = connection.getresponse()
    return answer.status, answer.read()


def recovery_running_on_node_one(cluster) -> tuple[dict, list[str]]:
    """Users added after a snapshot, and a recovery to that snapshot (which soft-deletes them, 100 to a transaction)
    started on node 1 and seen running; returns the job and the users' ids."""
    graph_one = cluster.graph(cluster.nodes[0].url)
    domain = cluster.tenant.domain
    snapshot = subprocess.run([BINARY, "backup", "snapshot", "--now", "--tenant", cluster.tenant.tenant_id,
                               "--data", cluster.info["data"], "--database", cluster.database, "--json"],
                              capture_output=True, text=True, timeout=120)
    assert snapshot.returncode == 0, snapshot.stderr
    snapshot_id = json.loads(snapshot.stdout)[0]["id"]
    ids: list[str] = []
    lock = threading.Lock()

    def create(worker: int) -> None:
        graph = cluster.graph(cluster.nodes[worker % 2].url)
        for n in range(100):
            made = graph.create_user(domain, f"bulk{worker}n{n}x{uuid.uuid4().hex[:4]}")
            with lock:
                ids.append(made["id"])

    workers = [threading.Thread(target=create, args=(w,)) for w in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert len(ids) == 600

    job = graph_one.ok("POST", "directory/recovery/jobs", 201, json={"@odata.type": RECOVERY, "snapshotId": snapshot_id})
    deadline = time.monotonic() + 120
    while (status := graph_one.ok("GET", f"directory/recovery/jobs/{job['id']}")["status"]) not in ("running", "successful"):
        assert time.monotonic() < deadline, f"the job never ran: {status}"
        time.sleep(0.02)
    assert status == "running", "the recovery finished before node 1 could be stopped"
    return job, ids


def test_sigterm_finishes_what_is_in_flight_and_hands_back_a_recovery_job(cluster):
    one, two = cluster.nodes
    graph_one, graph_two = cluster.graph(one.url), cluster.graph(two.url)
    domain = cluster.tenant.domain
    job, ids = recovery_running_on_node_one(cluster)

    # A request whose body is still on its way when SIGTERM arrives: answered once it is whole, after the listener closed.
    started, answer = threading.Event(), {}
    nick = unique("inflight")
    body = json.dumps({"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": f"{nick}@{domain}",
                       "passwordProfile": {"password": PASSWORD}}).encode()
    sender = threading.Thread(target=lambda: answer.update(result=slow_post(
        f"{one.url}/v1.0/users", cluster.ca, graph_one.token, body, before=0.1, after=4.0, started=started)))
    sender.start()
    assert started.wait(30)
    one.terminate()
    terminated = time.monotonic()
    # Node 1 hands the job back at its next batch, as soon as it drains (its lease ends at once); node 2 looks for free
    # leases every second and takes the job up at once, while node 1 is still finishing the request in flight.
    while (current := graph_two.ok("GET", f"directory/recovery/jobs/{job['id']}")).get("tesseraResumedDateTime") is None:
        assert time.monotonic() - terminated < 30, f"no node took the job up: {current}\n{cluster.logs()}"
        time.sleep(0.05)
    taken_after = time.monotonic() - terminated
    assert current.get("tesseraHandedBackDateTime"), current
    sender.join(timeout=60)
    status_code, text = answer["result"]
    assert status_code == 201, f"the request in flight at SIGTERM got {status_code}: {text[:500]!r}"
    exit_status, _ = one.wait_exit()
    took = time.monotonic() - terminated
    assert exit_status == 0, f"node 1 exited {exit_status}:\n{one.log_tail()}"
    handed = [line for line in one.log_tail(200).splitlines() if "handed back at shutdown" in line]
    assert handed, f"node 1 did not hand the recovery back:\n{one.log_tail()}"
    deadline = time.monotonic() + 180
    while (current := graph_two.ok("GET", f"directory/recovery/jobs/{job['id']}"))["status"] != "successful":
        assert current["status"] in ("running", "initialized", "calculating"), current
        assert time.monotonic() < deadline, f"the job did not finish: {current}"
        time.sleep(0.1)
    assert "Taking up recovery job" in cluster.nodes[1].log_tail(400)
    # Every user added after the snapshot is gone (the one the request in flight made too: the resumed run works from
    # the directory as it is then).
    gone = [graph_two.get(f"users/{user_id}?$select=id").status_code for user_id in ids]
    assert gone.count(404) == len(ids), f"{gone.count(200)} of the users added after the snapshot are still there"

    one.start()
    one.wait_ready(cluster.ca)
    print(f"SIGTERM during a recovery: node 2 had taken the job up {taken_after:.2f} s after SIGTERM and finished it; node 1 "
          f"exited 0 {took:.1f} s after SIGTERM (its 2 s drain, then the request in flight, whose body ended 4 s after "
          f"SIGTERM, answered 201)")


def test_a_recovery_job_of_a_killed_node_is_taken_up_when_its_lease_runs_out(cluster):
    one, two = cluster.nodes
    graph_two = cluster.graph(two.url)
    job, ids = recovery_running_on_node_one(cluster)
    os.kill(one.pid, signal.SIGKILL)
    killed = time.monotonic()
    # Node 1 renewed the job's lease every 10 s to 30 s ahead: node 2, which looks every second, takes the job up once
    # the lease has run out (not before: at least 20 s of it were left when node 1 died), and finishes it.
    while (current := graph_two.ok("GET", f"directory/recovery/jobs/{job['id']}")).get("tesseraResumedDateTime") is None:
        assert time.monotonic() - killed < 120, f"no node took the job up: {current}\n{cluster.logs()}"
        time.sleep(0.2)
    taken_after = time.monotonic() - killed
    assert taken_after > 15, f"node 2 took the job up {taken_after:.1f} s after node 1 died, while its lease still held"
    assert not current.get("tesseraHandedBackDateTime"), current
    deadline = time.monotonic() + 180
    while (current := graph_two.ok("GET", f"directory/recovery/jobs/{job['id']}"))["status"] != "successful":
        assert current["status"] in ("running", "initialized", "calculating"), current
        assert time.monotonic() < deadline, f"the job did not finish: {current}"
        time.sleep(0.1)
    assert "its node stopped renewing its lease" in two.log_tail(400)
    gone = [graph_two.get(f"users/{user_id}?$select=id").status_code for user_id in ids]
    assert gone.count(404) == len(ids), f"{gone.count(200)} of the users added after the snapshot are still there"
    one.start()
    one.wait_ready(cluster.ca)
    print(f"kill -9 during a recovery: node 2 took the job up {taken_after:.1f} s later (the lease: 30 s from its last "
          f"renewal, renewed every 10 s) and finished it")


def test_a_rolling_restart_under_load_loses_no_acknowledged_write(cluster):
    lb = cluster.lb_url
    graph = cluster.graph(lb)
    domain = cluster.tenant.domain
    stop = threading.Event()
    lock = threading.Lock()
    acknowledged: dict[str, str] = {}
    counts = {"writes": 0, "reads": 0, "ok": 0, "503": 0, "refused or reset before an answer": 0}
    unexpected: list[str] = []

    def load(worker: int) -> None:
        session = Session(cluster.ca)
        session.headers["Authorization"] = f"Bearer {graph.token}"
        n = 0
        while not stop.is_set():
            n += 1
            write = n % 2 == 1
            try:
                if write:
                    nick = f"roll{worker}n{n}x{uuid.uuid4().hex[:4]}"
                    r = session.post(f"{lb}/v1.0/users", timeout=30, json={
                        "accountEnabled": True, "displayName": nick, "mailNickname": nick,
                        "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": PASSWORD}})
                else:
                    with lock:
                        known = list(acknowledged)[-20:]
                    if not known:
                        continue
                    r = session.get(f"{lb}/v1.0/users/{known[n % len(known)]}?$select=id", timeout=30)
            except requests.ConnectionError as error:
                with lock:
                    counts["refused or reset before an answer"] += 1
                continue
            with lock:
                counts["writes" if write else "reads"] += 1
                if r.status_code in (200, 201):
                    counts["ok"] += 1
                    if write:
                        acknowledged[r.json()["id"]] = r.json()["userPrincipalName"]
                elif r.status_code == 503:
                    counts["503"] += 1
                else:
                    unexpected.append(f"{r.status_code} {r.text[:300]}")

    workers = [threading.Thread(target=load, args=(w,), daemon=True) for w in range(4)]
    for w in workers:
        w.start()
    try:
        time.sleep(1.5)
        exits = []
        for node in cluster.nodes:
            node.terminate()
            exit_status, took = node.wait_exit()
            exits.append((exit_status, round(took, 1)))
            node.start()
            node.wait_ready(cluster.ca)
            time.sleep(1.5)  # HAProxy's two checks bring it back
        time.sleep(1.0)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=60)
    assert all(status == 0 for status, _ in exits), f"exit statuses and times: {exits}\n{cluster.logs()}"
    assert not unexpected, f"answers a client could not simply retry: {unexpected[:5]} (counts {counts})"
    assert len(acknowledged) >= 20, f"the load hardly ran: {counts}"
    # Every acknowledged user is there, read through both nodes.
    for node in cluster.nodes:
        at = cluster.graph(node.url)
        users = at.all_pages("users", params={"$select": "id,userPrincipalName", "$top": "999"})
        present = {u["id"]: u["userPrincipalName"] for u in users}
        lost = {i: upn for i, upn in acknowledged.items() if present.get(i) != upn}
        assert not lost, f"{len(lost)} acknowledged users missing at {node.url}: {list(lost.items())[:5]}"
    print(f"rolling restart of {len(cluster.nodes)} nodes under load: {counts}; {len(acknowledged)} acknowledged writes, "
          f"none lost; node exits (status, seconds after SIGTERM): {exits}")


def test_with_no_node_ready_the_balancer_answers_a_retryable_graph_503(cluster):
    """Every node unresponsive (stopped with SIGSTOP, as a node stuck or a database failing over looks to the health
    checks): HAProxy takes them all out and answers for them, as a node would, 503 with Retry-After and a Graph error,
    not its own HTML page; once they answer again, requests are served again."""
    graph = cluster.graph(cluster.lb_url)
    assert graph.get("users?$top=1").status_code == 200
    for node in cluster.nodes:
        os.kill(node.pid, signal.SIGSTOP)
    try:
        answer = None
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            answer = Session(cluster.ca).get(f"{cluster.lb_url}/v1.0/users", timeout=10)
            if answer.status_code == 503:
                break
            time.sleep(0.2)
        assert answer is not None and answer.status_code == 503, answer.text if answer is not None else "no answer"
        assert answer.headers.get("Retry-After", "").isdigit() and int(answer.headers["Retry-After"]) > 0
        assert_graph_error(answer, 503, "ServiceUnavailable")
    finally:
        for node in cluster.nodes:
            os.kill(node.pid, signal.SIGCONT)
    poll_until(lambda: graph.get("users?$top=1").status_code == 200, "the balancer serving again")
