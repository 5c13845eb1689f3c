"""Streaming staging (issue 15): an initial sync of 100,000 users from an LDIF file connector stays under 300 MB.

`tessera sync run` imports the file into the staging area page by page and exports each page before it reads the next,
so its memory is bounded by the page, not by the directory. The bound is 300 MB of peak resident memory for the whole
`tessera sync run` process (the debug build the test command runs). Before staging was streamed (9f8f1ee), the same run
held every staged object at once: a 100,000-user import peaked at ~637 MB (BENCHMARKS.md), so a run that builds the
whole directory in memory again fails here (one page of 1,000,000 entries instead of 1,000: 641 MB); the streamed
run peaks at about half the bound (141 MB).

The file has the shape `scripts/bench-sync-ldif` generates (ten OUs under one base; objectGUID, sAMAccountName,
userPrincipalName, mail, proxyAddresses, department, title). The run uses the session's data folder and SQLite database
with a tenant of its own; the peak is the child's own `ru_maxrss`, read with `os.wait4` when it exits. Graph's `$count`
then finds every user. The connector is removed at the end, so the session server's sync cycle never reads the
(deleted) file.

It runs in the SQLite interop run only: with the debug build the run takes about 2.5 minutes on SQLite and about
12 minutes on PostgreSQL (session 35, a loaded 2-core machine; peak 93 MB there), which the test command's time does not
allow. The streaming is the same code on both databases (the staging pages are read and exported the same way).
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from support import Tenant

USERS = 100_000
PEAK_RSS_LIMIT_MB = 300
BASE_DN = "OU=Bench,DC=corp,DC=example,DC=test"

pytestmark = [pytest.mark.timeout(900)]  # conftest.py collects this module in the SQLite interop run only


def _binary() -> str:
    return os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parent.parent / ".build" / "debug" / "tessera")


def _db_args() -> list[str]:
    database = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
    return [] if database in ("", "sqlite") else ["--database", database]


def _cli(data: Path, *args: str) -> dict:
    done = subprocess.run([_binary(), *args, "--data", str(data), *_db_args(), "--json"], capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_ldif(path: Path, users: int, domain: str) -> None:
    """`users` users in ten OUs, as scripts/bench-sync-ldif writes them (with the tenant's domain in their names)."""
    with open(path, "w") as out:
        for i in range(users):
            guid = base64.b64encode(uuid.UUID(int=(i * 0x9E3779B97F4A7C15 + 0x1234567) % (1 << 128)).bytes).decode()
            out.write(f"dn: CN=b{i:06d},OU=S{i % 10},{BASE_DN}\nobjectClass: user\nobjectGUID:: {guid}\nsAMAccountName: b{i:06d}\n"
                      f"userPrincipalName: b{i:06d}@{domain}\ndisplayName: Bench {i:06d}\ngivenName: Bench\nsn: U{i:06d}\ntitle: Engineer\n"
                      f"department: D{i % 50}\nmail: b{i:06d}@{domain}\nproxyAddresses: SMTP:b{i:06d}@{domain}\nuserAccountControl: 544\n\n")


def run_measured(command: list[str], output: Path, timeout: float) -> tuple[int, float, float]:
    """Runs `command` (its output to `output`) and returns its exit status, its peak resident memory in MB (the child's
    own ru_maxrss, not that of any other child of this process) and how many seconds it took."""
    started = time.monotonic()
    with open(output, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return proc.returncode, usage.ru_maxrss / 1024, time.monotonic() - started


def test_an_initial_sync_of_100000_users_from_an_ldif_file_stays_under_300_mb(tessera, tmp_path):
    data = Path(tessera.ca).parent.parent
    domain = f"stream-{uuid.uuid4().hex[:6]}.test"
    created = _cli(data, "tenant", "create", "--name", "Streaming", "--domain", domain)
    tenant = Tenant.from_json(created)
    ldif = tmp_path / "users.ldif"
    write_ldif(ldif, USERS, domain)
    _cli(data, "sync", "connector", "add", "--tenant", tenant.tenant_id, "--name", "file", "--ldif", str(ldif), "--base-dn", BASE_DN)
    try:
        log = tmp_path / "sync-run.out"
        status, peak_mb, seconds = run_measured(
            [_binary(), "sync", "run", "--data", str(data), *_db_args(), "--tenant", tenant.tenant_id, "--json"], log, timeout=840)
        output = log.read_text()
        assert status == 0, output[-4000:]
        run = json.loads(output.strip().splitlines()[-1])
        run = run[0] if isinstance(run, list) else run
        print(f"tessera sync run: {USERS} users in {seconds:.1f} s, peak RSS {peak_mb:.0f} MB")
        assert run["status"] == "success" and run["errors"] == [], run
        assert run["imported"] == USERS and run["added"] == USERS, run
        assert peak_mb <= PEAK_RSS_LIMIT_MB, f"tessera sync run peaked at {peak_mb:.0f} MB for {USERS} users ({seconds:.0f} s)"

        graph = tessera.graph(tenant)
        count = graph.request("GET", "users/$count", headers={"ConsistencyLevel": "eventual"})
        assert count.status_code == 200, count.text
        assert int(count.text) == USERS + 1, count.text  # and the tenant's administrator
        synced = graph.ok("GET", "users", params={"$filter": f"userPrincipalName eq 'b099999@{domain}'",
                                                  "$select": "displayName,department,onPremisesSyncEnabled"})["value"]
        assert [(u["displayName"], u["department"], u["onPremisesSyncEnabled"]) for u in synced] == [("Bench 099999", "D49", True)], synced
    finally:
        _cli(data, "sync", "connector", "remove", "--tenant", tenant.tenant_id, "file")
        ldif.unlink(missing_ok=True)
