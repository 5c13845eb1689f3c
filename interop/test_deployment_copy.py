"""A whole SQLite deployment copied while it serves, and run from the copy on a "new machine" (issue 19).

`tessera backup deployment --to DIR` writes a new data folder: a consistent copy of the database (SQLite's VACUUM INTO,
taken on a connection of its own while six threads keep creating users) and the data folder's tls/ material. The
original then stops for good, and `serve --data DIR` runs the copy on the same address, as a replacement machine
would: every user acknowledged before the copy began is there and whole, a token the original issued still
validates (the signing key came along), a client secret made on the original still authenticates, and a new write
works. The copy is private to its owner, and the command refuses a folder that is not empty and a PostgreSQL
deployment, saying what to do instead.

SQLite only, whatever TESSERA_INTEROP_DATABASE says (a PostgreSQL deployment is copied with PostgreSQL's tools).
"""
from __future__ import annotations

import json
import stat
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import _tail, _wait_healthy
from test_durability import BINARY, Node, Writers, check_directory, integrity


class SamePort(Node):
    """A node that serves on a port given to it: the copy takes over the original's address."""

    def __init__(self, data: Path, log: Path, tenant, port: int):
        self.data, self.log, self.tenant, self.port = data, log, tenant, port
        self.proc = None
        self.base_url = ""

    def start(self) -> None:
        self.base_url = f"https://127.0.0.1:{self.port}"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([BINARY, "serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)],
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        _wait_healthy(self.base_url, self.ca, self.proc, self.log)


def copy_deployment(data: Path, to: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([BINARY, "backup", "deployment", "--data", str(data), "--to", str(to), *extra],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture
def workdir():
    folder = Path(tempfile.mkdtemp(prefix="tessera-deployment-copy-"))
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_a_deployment_copied_while_it_serves_runs_elsewhere(workdir):
    data, copy = workdir / "data", workdir / "copy"
    data.mkdir()
    node = Node(data, workdir / "server.log")
    restored = None
    try:
        node.start()
        port = int(node.base_url.rsplit(":", 1)[1])
        graph = node.graph()
        app = graph.ok("POST", "applications", status=201, json={"displayName": "Daemon"})
        graph.ok("POST", "servicePrincipals", status=201, json={"appId": app["appId"]})
        secret = graph.ok("POST", f"applications/{app['id']}/addPassword", json={"passwordCredential": {"displayName": "kept"}})["secretText"]
        issued_before = graph.token

        writers = Writers(node, graph, "c", timeout=30).start()
        writers.wait_for(100, 60)
        before_copy = writers.snapshot()
        copied = copy_deployment(data, copy, "--json")
        time.sleep(0.5)  # writes go on after the copy too; they are the original's alone
        writers.stop()
        acknowledged, answers = writers.acknowledged, writers.answers
        assert copied.returncode == 0, f"exit {copied.returncode}\n{copied.stdout}\n{copied.stderr}"
        report = json.loads(copied.stdout.strip().splitlines()[-1])
        assert set(answers) == {201}, f"answers while copying: {answers}"
        assert len(before_copy) >= 100, f"only {len(before_copy)} users before the copy"
        assert report["tenants"] >= 1 and report["objects"] >= len(before_copy), report
        assert "tls/ca.pem" in report["files"] and "tls/server.pem" in report["files"], report

        # The copy is the owner's alone: it holds the deployment's keys.
        assert stat.S_IMODE((copy).stat().st_mode) == 0o700
        assert stat.S_IMODE((copy / "tessera.sqlite").stat().st_mode) == 0o600
        for name in report["files"]:
            assert stat.S_IMODE((copy / name).stat().st_mode) == 0o600, name
        assert integrity(copy / "tessera.sqlite") == "ok"

        node.stop()
        restored = SamePort(copy, workdir / "restored.log", node.tenant, port)
        restored.start()
        total = check_directory(restored, before_copy)
        print(f"copied while {len(acknowledged)} users were acknowledged ({len(before_copy)} before the copy began); "
              f"{total} users in the copy, {report['databaseBytes']} bytes")

        session = restored.graph().tessera.session()
        # A token the original issued before the copy validates on the copy: the signing key came along.
        old = session.get(f"{restored.base_url}/v1.0/users", params={"$top": "1"}, headers={"Authorization": f"Bearer {issued_before}"})
        assert old.status_code == 200, old.text
        # So did the client secret's digest, and the copy takes writes.
        token = restored.graph().tessera.request_token(node.tenant.tenant_id, app["appId"], secret)
        assert token.status_code == 200, token.text
        restored.graph().ok("POST", "users", status=201, json=restored.user(f"after{uuid.uuid4().hex[:6]}"))
    except AssertionError as failure:
        logs = _tail(node.log) + ("\nrestored:\n" + _tail(restored.log) if restored else "")
        raise AssertionError(f"{failure}\nserver logs:\n{logs}") from None
    finally:
        node.stop()
        if restored:
            restored.stop()


def test_a_copy_refuses_a_folder_in_use_and_a_postgresql_deployment(workdir):
    data, taken = workdir / "data", workdir / "taken"
    data.mkdir()
    Node(data, workdir / "server.log")  # a tenant, so there is a database to copy
    taken.mkdir()
    (taken / "keep.txt").write_text("someone's file")
    refused = copy_deployment(data, taken)
    assert refused.returncode != 0 and "not an empty folder" in refused.stderr, refused.stderr
    assert (taken / "keep.txt").read_text() == "someone's file" and not (taken / "tessera.sqlite").exists()

    postgres = subprocess.run([BINARY, "backup", "deployment", "--database", "postgres://tessera@127.0.0.1:1/tessera",
                               "--to", str(workdir / "pg")], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert postgres.returncode != 0 and "pg_basebackup" in postgres.stderr, postgres.stderr
    assert not (workdir / "pg").exists()

    missing = copy_deployment(workdir / "nothing-here", workdir / "out")
    assert missing.returncode != 0 and "no SQLite database" in missing.stderr, missing.stderr
