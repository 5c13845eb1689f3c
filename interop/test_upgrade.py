"""Upgrading a data folder made by the release before (issue 22).

interop/fixtures/upgrade-3271a39/ holds the SQLite database that release's own `tessera serve` made (commit 3271a39, the
last to pass the clean-checkout test command before the signing key ring; scripts/make-upgrade-fixture says exactly how)
and manifest.json, what it made: users, groups with members, an application with a client secret, access tokens it
issued and its signing key's kid. This release, on a copy of it:
  - `tessera migrate --check` lists the one step that release lacks, exits 3 and changes nothing;
  - `serve` applies it at start and says so; every object that release made is there, its token still works (the server's
    clock is put back to when the fixture was made: the token was good for an hour then), the application's secret still
    gets a token, signed with the same key (kid unchanged), and the key ring it wrote keeps the current key where that
    release reads it, so it could still run beside this one;
  - then `migrate --check` exits 0.

SQLite only, whatever TESSERA_INTEROP_DATABASE says: the fixture is an SQLite data folder.
"""
from __future__ import annotations

import base64
import json
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from support import Session, free_port, serve_on_a_free_port, stop_serve
from test_durability import BINARY

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "upgrade-3271a39"
GRAPH = "https://graph.microsoft.com/.default"


def migrate(data: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([BINARY, "migrate", "--data", str(data), *options], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def recorded_steps(database: Path) -> list[int]:
    with sqlite3.connect(database) as con:
        return [row[0] for row in con.execute("SELECT version FROM schema_migrations ORDER BY version")]


def kid(token: str) -> str:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]


@pytest.fixture
def upgraded_copy():
    folder = Path(tempfile.mkdtemp(prefix="tessera-upgrade-"))
    data = folder / "data"
    data.mkdir(mode=0o700)
    shutil.copyfile(FIXTURE / "tessera.sqlite", data / "tessera.sqlite")
    yield data, json.loads((FIXTURE / "manifest.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)


# The steps after the release before's schema (it recorded 1–13), as `tessera migrate` lists them.
PENDING = ["14  each migration step recorded with its summary",
           "15  Backup and Recovery's jobs in a table of their own",
           "16  identity providers' client secrets out of their objects, in a tenant setting",
           "17  an index of deleted objects",
           "18  property indexes limited to the kinds queried by each property",
           "19  filter-only property indexes hold no entry for a missing value"]
LATEST = 13 + len(PENDING)


def test_a_data_folder_of_the_release_before_upgrades(upgraded_copy):
    data, made = upgraded_copy
    database = data / "tessera.sqlite"
    before = recorded_steps(database)
    assert before == list(range(1, 14)), before

    check = migrate(data, "--check")
    assert check.returncode == 3, f"exit {check.returncode}\n{check.stdout}\n{check.stderr}"
    lines = check.stdout.splitlines()
    assert lines[0] == f"{len(PENDING)} migration steps are pending:", check.stdout
    assert len(lines) > len(PENDING) and all(line.strip().startswith(step) for line, step in zip(lines[1:], PENDING)), check.stdout
    assert recorded_steps(database) == before, "--check changed nothing"

    # The server's time is when the fixture was made (plus two minutes): its tokens were good for an hour from then.
    clock = data.parent / "clock"
    clock.write_text(str(made["madeAt"] + 120 - time.time()))
    proc, printed, port = serve_on_a_free_port(
        lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port), "--test-clock-offset-file", str(clock),
                      # The URL the release before served on stays a public URL (its tokens' issuer), as in a real upgrade.
                      "--public-url", f"https://localhost:{port}", "--public-url", made["publicURL"]])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    try:
        assert "Applied migration step 14: each migration step recorded" in printed, printed
        assert "created its first tenant" not in printed, "the fixture's tenant was found"
        base, tenant = f"https://localhost:{port}", made["tenant"]
        http = Session(str(data / "tls" / "ca.pem"))
        assert http.get(f"{base}/readyz").status_code == 200

        keys = http.get(f"{base}/{tenant}/discovery/v2.0/keys").json()["keys"]
        assert keys[0]["kid"] == made["signingKeyKid"], "the key that signed before the upgrade signs after it"

        old = {"Authorization": f"Bearer {made['automationApp']['token']}"}
        for uid in made["users"].values():
            r = http.get(f"{base}/v1.0/users/{uid}", headers=old)
            assert r.status_code == 200, f"user {uid}: {r.status_code} {r.text}"
        for name, gid in made["groups"].items():
            r = http.get(f"{base}/v1.0/groups/{gid}/members", headers=old)
            assert r.status_code == 200, r.text
            assert sorted(m["id"] for m in r.json()["value"]) == sorted(made["groupMembers"][name])
        app = made["application"]
        r = http.get(f"{base}/v1.0/applications/{app['id']}", headers=old)
        assert r.status_code == 200 and r.json()["appId"] == app["appId"], r.text
        assert http.get(f"{base}/v1.0/servicePrincipals/{app['servicePrincipalId']}", headers=old).status_code == 200

        # The application's secret, made by the release before, still gets a token; signed by the same key.
        r = http.post(f"{base}/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["appId"], "client_secret": app["secret"], "scope": GRAPH})
        assert r.status_code == 200, r.text
        assert kid(r.json()["access_token"]) == made["signingKeyKid"] == kid(app["token"])
        r = http.post(f"{base}/{tenant}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["appId"], "client_secret": "not the secret", "scope": GRAPH})
        assert r.status_code in (400, 401), "a wrong secret is still refused"
        # A write on the upgraded database.
        created = http.post(f"{base}/v1.0/groups", headers=old, json={
            "displayName": "After the upgrade", "mailEnabled": False, "mailNickname": "after", "securityEnabled": True})
        assert created.status_code == 201, created.text
    finally:
        stop_serve(proc)

    assert recorded_steps(database) == list(range(1, LATEST + 1))
    # The ring this release wrote keeps the current key where the release before reads it (SigningKey.load then).
    with sqlite3.connect(database) as con:
        (value,) = con.execute("SELECT value FROM settings WHERE tenant = '_deployment' AND key = 'signingKey'").fetchone()
    ring = json.loads(value)
    assert ring["kid"] == ring["current"]["kid"] == made["signingKeyKid"]
    assert ring["pem"] == ring["current"]["pem"] and ring["next"]["kid"] != ring["kid"]

    after = migrate(data, "--check")
    assert after.returncode == 0, f"exit {after.returncode}\n{after.stdout}\n{after.stderr}"
    assert after.stdout.strip() == f"The database schema is up to date (migration steps up to {LATEST}).", after.stdout


def test_a_schema_newer_than_this_build_is_refused_or_run_on(upgraded_copy):
    """A newer Tessera's step recorded as only adding: this build runs on it; one needing a newer reader: `migrate`
    exits 4 and `serve` refuses to start, saying why, changing nothing."""
    data, _ = upgraded_copy
    database = data / "tessera.sqlite"
    applied = migrate(data)
    assert applied.returncode == 0 and applied.stdout.splitlines()[0] == f"Applied {len(PENDING)} migration steps:", applied.stdout
    with sqlite3.connect(database) as con:
        con.execute("INSERT INTO schema_migrations (version, summary, minimum_reader) VALUES (1001, 'a column a later release adds', NULL)")
    check = migrate(data, "--check")
    assert check.returncode == 0, check.stdout
    assert "1001  a column a later release adds (this one can still run on it)" in check.stdout

    with sqlite3.connect(database) as con:
        con.execute("INSERT INTO schema_migrations (version, summary, minimum_reader) VALUES (1002, 'an old column dropped', 1001)")
    check = migrate(data, "--check")
    assert check.returncode == 4, check.stdout
    assert "1002  an old column dropped (needs a Tessera that knows step 1001: this one must not run on it)" in check.stdout
    assert migrate(data).returncode == 4
    serve = subprocess.run([BINARY, "serve", "--data", str(data), "--port", str(free_port())], capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    assert serve.returncode != 0
    assert "the database's schema is newer than this Tessera" in serve.stdout + serve.stderr, serve.stdout + serve.stderr
    assert recorded_steps(database) == list(range(1, LATEST + 1)) + [1001, 1002]
