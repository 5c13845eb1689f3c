"""scripts/soak against a node of its own (scripts/soak node): the ledger sees a kill -9 and restart as retryable failures
only, with nothing acknowledged lost and nothing duplicated; and it does see writes taken away behind its back.

Each test starts its own `tessera serve` (TESSERA_BIN or the debug build) in a temporary folder, on SQLite or on
TESSERA_INTEROP_DATABASE's PostgreSQL, and runs the soak for a short while with a fault command part-way through.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from conftest import REPO_ROOT, _create_tenant

SOAK = REPO_ROOT / "scripts" / "soak"
NODE = REPO_ROOT / "interop" / "soak" / "node.py"
BINARY = os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")
DATABASE = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
DB_ARGS = [] if DATABASE in ("", "sqlite") else ["--database", DATABASE]


@pytest.fixture
def node():
    folder = Path(tempfile.mkdtemp(prefix="tessera-soak-"))
    up = subprocess.run([sys.executable, str(NODE), "up", "--dir", str(folder), "--bin", BINARY, *DB_ARGS],
                        capture_output=True, text=True, timeout=150)
    assert up.returncode == 0, up.stdout + up.stderr
    yield folder, up.stdout.strip()
    subprocess.run([sys.executable, str(NODE), "down", "--dir", str(folder)], timeout=60)
    subprocess.run(["rm", "-rf", str(folder)], check=False)


def soak(folder: Path, url: str, *options: str) -> tuple[int, dict, str]:
    report = folder / "report.json"
    p = subprocess.run([str(SOAK), "--url", url, "--data", str(folder / "data"), *DB_ARGS, "--bin", BINARY,
                        "--json", str(report), *options],
                       capture_output=True, text=True, timeout=170, env={**os.environ, "TESSERA_BIN": BINARY})
    output = p.stdout + p.stderr
    assert report.exists(), output
    return p.returncode, json.loads(report.read_text()), output


def test_kill_9_and_restart_under_load_fails_only_retryably_and_loses_nothing(node):
    folder, url = node
    fault = f"{shlex.quote(sys.executable)} {shlex.quote(str(NODE))} kill9-restart --dir {shlex.quote(str(folder))}"
    code, report, output = soak(folder, url, "--minutes", "0.5", "--rate", "15", "--fault", "kill-node",
                                "--fault-command", fault)
    assert code == 0 and report["pass"], output
    ledger = report["ledger"]
    assert ledger["lost"] == 0 and ledger["duplicates"] == 0 and ledger["deltaMissed"] == 0, output
    assert ledger["acknowledged"]["users"] > 12 and ledger["acknowledged"]["memberships"] > 0, output
    assert report["nonRetryableErrors"] == 0, output
    assert all(k["errors"] == 0 for k in report["run"]["kinds"].values()), output
    # The node really died and came back: a new process, clients saw it (refused or broken connections), and recovered.
    fault_result = report["faultResult"]
    assert fault_result["exit"] == 0 and "restarted as" in fault_result["output"], fault_result
    assert fault_result["failedAttempts"] >= 1 and fault_result["recoverySeconds"] is not None, fault_result
    # Refused or broken connections while it was down, or a 503 with Retry-After while it was starting: nothing else.
    retryable = ("connection ", "timeout ", "HTTP 503 with Retry-After")
    assert all(reason.startswith(retryable) for reason in report["run"]["retryableReasons"]), report["run"]["retryableReasons"]
    assert report["snapshot"]["state"] == "succeeded" and report["sync"]["state"] == "Succeeded", output
    assert {"signin", "token", "read", "create_user", "create_group", "update_user", "add_member", "delta"} <= set(report["run"]["kinds"])


DESTROY = '''
import re, sys, requests
url, ca, tenant_id, client_id, secret = sys.argv[1:6]
s = requests.Session(); s.verify, s.trust_env = ca, False
token = s.post(f"{url}/{tenant_id}/oauth2/v2.0/token", data={"grant_type": "client_credentials", "client_id": client_id,
               "client_secret": secret, "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
s.headers["Authorization"] = f"Bearer {token}"
users = s.get(f"{url}/v1.0/users", params={"$select": "id,userPrincipalName", "$top": "999"}).json()["value"]
made = [u for u in users if re.match(r"soak[0-9a-f]{6}u[0-9]+@", u["userPrincipalName"])]
for u in made[:3]:
    assert s.delete(f"{url}/v1.0/users/{u['id']}").status_code == 204
groups = s.get(f"{url}/v1.0/groups", params={"$select": "mailNickname", "$top": "999"}).json()["value"]
nick = next(g["mailNickname"] for g in groups if re.match(r"soak[0-9a-f]{6}t[0-9]+$", g["mailNickname"] or ""))
assert s.post(f"{url}/v1.0/groups", json={"displayName": nick, "mailEnabled": False, "mailNickname": nick,
                                          "securityEnabled": True}).status_code == 201
print(f"deleted {len(made[:3])} users, copied group {nick}")
'''


def test_the_ledger_reports_acknowledged_writes_taken_away_and_duplicates(node):
    """A 'fault' that deletes three users the soak created and makes a second group with one of its markers: the
    soak must say 3 lost and 1 duplicate, and fail."""
    folder, url = node
    tenant = _create_tenant(BINARY, folder / "data", DB_ARGS, "Ledger", f"ledger-{uuid.uuid4().hex[:6]}.test")
    (folder / "tenant.json").write_text(json.dumps({"tenantId": tenant.tenant_id, "domain": tenant.domain,
                                                    "adminUserPrincipalName": tenant.admin_upn,
                                                    "clientId": tenant.client_id, "clientSecret": tenant.client_secret}))
    (folder / "destroy.py").write_text(DESTROY)
    fault = " ".join(shlex.quote(a) for a in [sys.executable, str(folder / "destroy.py"), url, str(folder / "data" / "tls" / "ca.pem"),
                                              tenant.tenant_id, tenant.client_id, tenant.client_secret])
    code, report, output = soak(folder, url, "--tenant-json", str(folder / "tenant.json"), "--minutes", "0.25", "--rate", "20",
                                "--fault-at", "0.6", "--fault", "kill-node", "--fault-command", fault, "--no-snapshot")
    assert report["faultResult"]["exit"] == 0 and "deleted 3 users" in report["faultResult"]["output"], report["faultResult"]
    assert code == 1 and not report["pass"], output
    assert report["ledger"]["lost"] >= 3 and report["ledger"]["duplicates"] == 1, report["ledger"]
    assert any("acknowledged users lost" in p for p in report["ledger"]["problems"]), report["ledger"]["problems"]
    assert "RESULT: FAIL" in output
