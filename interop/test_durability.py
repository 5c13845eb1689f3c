"""SQLite durability of a single node (issue 19), with the real `tessera serve` on a data folder of its own.

- kill -9 during writes: users are created through Graph from several threads; every id whose 201 arrived is
  recorded; serve is killed with SIGKILL mid-load and started again on the same folder, a few times. Every
  acknowledged user must be there afterwards, and nothing half-written: each user in the directory is readable by
  its id and by its userPrincipalName (the unique key points back at it), and the database passes integrity_check.
- a full disk: the data folder on a small tmpfs that a filler file fills. Writes then answer 507 insufficientStorage
  in Graph's error shape (logged, with no secret in the line), nothing half-written; once the filler is deleted,
  writes succeed again without a restart, every acknowledged user is there and integrity_check is ok.

These tests always use SQLite, whatever TESSERA_INTEROP_DATABASE says (PostgreSQL's durability is PostgreSQL's).
The full-disk test mounts a tmpfs, so it needs root (as scripts/test and CI run): it fails, it does not skip, when
it cannot mount.
"""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import REPO_ROOT, _create_tenant, _free_port, _stop, _tail, _wait_healthy
from support import DUPLICATE_UPN_MESSAGE, PASSWORD, Graph, Tessera, assert_graph_error

BINARY = os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")


class Node:
    """One `tessera serve` over an SQLite data folder, which outlives the process: start, kill -9, start again."""

    def __init__(self, data: Path, log: Path):
        self.data, self.log = data, log
        self.proc: subprocess.Popen | None = None
        self.base_url = ""
        self.tenant = _create_tenant(BINARY, data, [], "Durable", f"durable-{uuid.uuid4().hex[:6]}.test")

    @property
    def ca(self) -> Path:
        return self.data / "tls" / "ca.pem"

    @property
    def database(self) -> Path:
        return self.data / "tessera.sqlite"

    def start(self) -> None:
        port = _free_port()
        self.base_url = f"https://127.0.0.1:{port}"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([BINARY, "serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", str(port)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_healthy(self.base_url, self.ca, self.proc, self.log)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "serve is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def graph(self) -> Graph:
        """Graph as the tenant's admin app, with a token from the node as it runs now."""
        tessera = Tessera(self.base_url, str(self.ca), self.tenant, self.tenant)
        return tessera.graph(self.tenant)

    def user(self, nick: str) -> dict:
        return {"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                "userPrincipalName": f"{nick}@{self.tenant.domain}",
                "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}}


class Writers:
    """Threads creating users through Graph on `node` until stopped; every 201 is recorded as acknowledged (id ->
    userPrincipalName) and every answer counted by status. A request the server never answered acknowledged nothing."""

    def __init__(self, node: Node, graph: Graph, prefix: str, threads: int = 6, timeout: float = 10):
        self.node, self.graph, self.prefix, self.timeout = node, graph, prefix, timeout
        self.acknowledged: dict[str, str] = {}
        self.answers: dict[int, int] = {}
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self._load, args=(w,), daemon=True) for w in range(threads)]

    def _load(self, worker: int) -> None:
        session = self.graph.tessera.session()
        session.headers["Authorization"] = f"Bearer {self.graph.token}"
        n = 0
        while not self.stopping.is_set():
            nick = f"{self.prefix}w{worker}n{n}x{uuid.uuid4().hex[:4]}"
            n += 1
            try:
                r = session.post(f"{self.node.base_url}/v1.0/users", json=self.node.user(nick), timeout=self.timeout)
            except requests.RequestException:
                continue  # the server is gone: nothing was acknowledged
            with self.lock:
                self.answers[r.status_code] = self.answers.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    body = r.json()
                    self.acknowledged[body["id"]] = body["userPrincipalName"]

    def start(self) -> "Writers":
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, count: int, seconds: float) -> None:
        """Returns once `count` users are acknowledged, or `seconds` have passed."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and len(self.snapshot()) < count:
            time.sleep(0.05)

    def snapshot(self) -> dict[str, str]:
        with self.lock:
            return dict(self.acknowledged)

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)


def integrity(database: Path) -> str:
    with contextlib.closing(sqlite3.connect(database)) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def check_directory(node: Node, acknowledged: dict[str, str]) -> int:
    """Every acknowledged user (id -> userPrincipalName) is there; every user is readable by id and by its UPN, which
    leads back to it (no object without its unique key, no key without its object). Returns how many users there are."""
    graph = node.graph()
    users = graph.all_pages("users", params={"$select": "id,userPrincipalName", "$top": "999"})
    by_id = {u["id"]: u["userPrincipalName"] for u in users}
    lost = {i: upn for i, upn in acknowledged.items() if by_id.get(i) != upn}
    assert not lost, f"{len(lost)} acknowledged users are missing after the crash: {list(lost.items())[:5]}"
    for user_id, upn in by_id.items():
        by_upn = graph.ok("GET", f"users/{upn}", params={"$select": "id"})
        assert by_upn["id"] == user_id, f"{upn} leads to {by_upn['id']}, not {user_id}"
        graph.ok("GET", f"users/{user_id}")
    # The unique key is held: the UPN of an acknowledged user cannot be taken again.
    some = next(iter(acknowledged.values()))
    err = assert_graph_error(graph.post("users", json=node.user(some.split("@")[0])), 400, "Request_BadRequest")
    assert err["message"] == DUPLICATE_UPN_MESSAGE, err
    return len(by_id)


@pytest.fixture
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="tessera-durability-"))
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_kill_9_during_writes_loses_nothing_acknowledged(workdir):
    data = workdir / "data"
    data.mkdir()
    node = Node(data, workdir / "server.log")
    acknowledged: dict[str, str] = {}
    rounds = 3
    try:
        for round_ in range(rounds):
            node.start()
            writers = Writers(node, node.graph(), f"k{round_}").start()
            # Kill once the load is well under way: at least 50 users acknowledged, or 20 s.
            writers.wait_for(50, 20)
            node.kill()
            writers.stop()
            assert set(writers.answers) <= {201}, f"round {round_}: answers other than 201 before the kill: {writers.answers}"
            assert len(writers.acknowledged) >= 50, f"round {round_}: only {len(writers.acknowledged)} users acknowledged"
            acknowledged.update(writers.acknowledged)

        node.start()
        total = check_directory(node, acknowledged)
        assert total >= len(acknowledged)
        print(f"kill -9 x{rounds}: {len(acknowledged)} users acknowledged, {total} in the directory after the last restart")
        node.stop()
        assert integrity(node.database) == "ok"
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nserver log:\n{_tail(node.log)}") from None
    finally:
        node.stop()


# ------------------------------------------------------------------------------------------ a full disk

@contextlib.contextmanager
def small_disk(folder: Path, size: str = "24m"):
    """A tmpfs of `size` at `folder`, unmounted (lazily, if something still holds it) however the test ends."""
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs at {folder} (the full-disk test needs root): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path) -> Path:
    """Writes a filler file until the disk refuses a single byte more."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 12, 1):
            block = b"\0" * chunk
            while True:
                try:
                    f.write(block)
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break
    return filler


def test_full_disk_answers_507_and_writes_resume_when_space_returns(workdir):
    with small_disk(workdir / "disk") as disk:
        data = disk / "data"
        data.mkdir()
        node = Node(data, workdir / "server.log")
        try:
            node.start()
            graph = node.graph()
            acknowledged: dict[str, str] = {}
            for n in range(20):
                created = graph.ok("POST", "users", 201, json=node.user(f"before{n}"))
                acknowledged[created["id"]] = created["userPrincipalName"]

            log_offset = node.log.stat().st_size
            filler = fill(disk)
            refused, answers = [], {}
            for n in range(3000):
                nick = f"full{n}"
                r = graph.post("users", json=node.user(nick))
                answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    acknowledged[r.json()["id"]] = r.json()["userPrincipalName"]
                    continue
                err = assert_graph_error(r, 507, "insufficientStorage")
                assert "storage is full" in err["message"], err
                refused.append(nick)
                if len(refused) >= 5:
                    break
            assert len(refused) >= 5, f"the full disk never refused a write: {answers}"
            # Concurrent writes share commits (SQLite's group commit): each still gets the full disk's answer, never a 500.
            burst: list[requests.Response] = []
            def write(worker: int) -> None:
                session = graph.tessera.session()
                session.headers["Authorization"] = f"Bearer {graph.token}"
                for n in range(5):
                    burst.append(session.post(f"{node.base_url}/v1.0/users", json=node.user(f"burst{worker}n{n}"), timeout=30))
            workers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=60)
            assert len(burst) == 20
            for r in burst:
                answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    acknowledged[r.json()["id"]] = r.json()["userPrincipalName"]
                else:
                    assert_graph_error(r, 507, "insufficientStorage")
            assert set(answers) <= {201, 507}, answers
            # Nothing of a refused user was kept: its UPN names nobody.
            for nick in refused:
                assert_graph_error(graph.get(f"users/{nick}@{node.tenant.domain}"), 404, "Request_ResourceNotFound")
            logged = node.log.read_bytes()[log_offset:].decode("utf-8", "replace")
            full_lines = [line for line in logged.splitlines() if "disk is full" in line]
            assert full_lines, f"no log line for the full disk:\n{logged[-3000:]}"
            assert len(full_lines) <= answers.get(507, 0) * 2, f"{len(full_lines)} log lines for {answers.get(507)} refusals"
            for secret in (node.tenant.client_secret, PASSWORD, graph.token):
                assert secret not in logged

            print(f"full disk: answers {answers}, {len(full_lines)} log lines, e.g. {full_lines[0]!r}")
            filler.unlink()
            # Space is back: the very next writes succeed, the refused users included, with no restart.
            for nick in refused:
                created = graph.ok("POST", "users", 201, json=node.user(nick))
                acknowledged[created["id"]] = created["userPrincipalName"]
            assert node.proc.poll() is None, "serve exited"
            check_directory(node, acknowledged)
            node.stop()
            assert integrity(node.database) == "ok"
        except AssertionError as failure:
            raise AssertionError(f"{failure}\nserver log:\n{_tail(node.log)}") from None
        finally:
            node.stop()


# ------------------------------------------------------------------------------------------ readiness during an outage

def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    assert found, "no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql-15)"
    return found[-1].parent


def pg_ctl(folder: Path, *args: str) -> None:
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    p = subprocess.run([*as_pg, str(pg_bin() / "pg_ctl"), "-D", str(folder / "data"), "-w", "-t", "60", *args],
                       capture_output=True, text=True, timeout=90)
    assert p.returncode == 0, f"pg_ctl {' '.join(args)}: {p.stdout}{p.stderr}"


def test_readiness_during_a_postgresql_outage(workdir):
    """A node on PostgreSQL (a throwaway server of this test's own) is ready; when the server stops, /readyz answers
    503 with Retry-After promptly while /healthz stays 200; once the server is back the node is ready and writes again."""
    os.chmod(workdir, 0o755)  # the postgres user must reach the cluster's folder
    pg, port = workdir / "pg", _free_port()
    up = subprocess.run([str(REPO_ROOT / "scripts" / "pg-up"), str(pg), str(port), "tessera_outage"], capture_output=True, text=True, timeout=180)
    assert up.returncode == 0, f"scripts/pg-up: {up.stdout}{up.stderr}"
    data = workdir / "data"
    data.mkdir()
    database = f"postgres://postgres@127.0.0.1:{port}/tessera_outage?sslmode=disable"
    log = workdir / "server.log"
    proc = None
    try:
        tenant = _create_tenant(BINARY, data, ["--database", database], "Outage", f"outage-{uuid.uuid4().hex[:6]}.test")
        serve_port = _free_port()
        base_url = f"https://127.0.0.1:{serve_port}"
        with open(log, "ab") as out:
            proc = subprocess.Popen([BINARY, "serve", "--data", str(data), "--host", "127.0.0.1", "--port", str(serve_port),
                                     "--database", database],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        ca = data / "tls" / "ca.pem"
        _wait_healthy(base_url, ca, proc, log)
        http = Tessera(base_url, str(ca), tenant, tenant).session()
        ready = http.get(f"{base_url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.text == "ok", ready.text
        graph = Tessera(base_url, str(ca), tenant, tenant).graph(tenant)

        pg_ctl(pg, "-m", "immediate", "stop")
        started = time.monotonic()
        unready = http.get(f"{base_url}/readyz", timeout=10)
        took = time.monotonic() - started
        err = assert_graph_error(unready, 503, "ServiceUnavailable")
        assert err["message"].startswith("Not ready: the database"), err
        assert unready.headers.get("Retry-After", "").isdigit(), unready.headers
        assert took < 5, f"/readyz took {took:.1f} s during the outage"
        assert http.get(f"{base_url}/healthz", timeout=10).status_code == 200

        pg_ctl(pg, "-l", str(pg / "server.log"), "-o", f"-p {port} -k {pg} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        back = time.monotonic()
        while True:
            if http.get(f"{base_url}/readyz", timeout=10).status_code == 200:
                break
            assert time.monotonic() - back < 30, "not ready 30 s after the database came back"
            time.sleep(0.2)
        recovered = time.monotonic() - back
        nick = f"after{uuid.uuid4().hex[:6]}"
        graph.ok("POST", "users", 201, json={"accountEnabled": True, "displayName": nick, "mailNickname": nick,
                                              "userPrincipalName": f"{nick}@{tenant.domain}",
                                              "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}})
        fresh = Tessera(base_url, str(ca), tenant, tenant).request_token(tenant.tenant_id, tenant.client_id, tenant.client_secret)
        assert fresh.status_code == 200, f"a token after the outage: {fresh.status_code} {fresh.text}"
        print(f"PostgreSQL outage: /readyz said 503 in {took:.2f} s; ready again {recovered:.2f} s after the server was back")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nserver log:\n{_tail(log)}") from None
    finally:
        if proc is not None:
            _stop(proc)
        subprocess.run([str(REPO_ROOT / "scripts" / "pg-down"), str(pg)], check=False, timeout=60)
