"""Directory sync from a real Samba Active Directory domain controller (scripts/ad-up; scripts/test starts one and
names its env file in TESSERA_TEST_AD_ENV), driven through `tessera sync …` and checked through Microsoft Graph on a
Tessera of the test's own: 1,000 users in OUs and 50 groups sync in; a change, a move, a disable, a delete and a
membership change arrive on the next delta; the takeover attack is quarantined while the rest of the run syncs, and
the remediation path completes the match; deleting 600 users stops at the threshold with nothing deleted."""
from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from support import serve_on_a_free_port

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")


def _ad_env() -> dict:
    path = os.environ.get("TESSERA_TEST_AD_ENV")
    assert path and os.path.exists(path), "no domain controller: run scripts/test, or scripts/ad-up DIR and set TESSERA_TEST_AD_ENV=DIR/env"
    env = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'")
    return env


class World:
    """A Tessera serving over HTTP, a tenant, and an OU of the domain controller that only this test writes."""

    def __init__(self):
        self.ad = _ad_env()
        self.data = Path(tempfile.mkdtemp(prefix="tessera-sync-"))
        created = subprocess.run([BINARY, "tenant", "create", "--data", str(self.data), "--name", "Contoso", "--domain", "contoso.test", "--json"],
                                 capture_output=True, text=True, timeout=120, check=True)
        self.tenant = json.loads(created.stdout)
        self.proc, _, self.port = serve_on_a_free_port(
            lambda port: [BINARY, "serve", "--http", "--data", str(self.data), "--port", str(port), "--sync-interval", "0"])
        self.url = f"http://localhost:{self.port}"
        import threading
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stdout], daemon=True).start()
        self.ou = f"OU=Interop{uuid.uuid4().hex[:8]},{self.ad['AD_BASE_DN']}"
        self.password_file = self.data / "bind.pw"
        self.password_file.write_text(self.ad["AD_BIND_PASSWORD"])
        self.password_file.chmod(0o600)

    def ldap(self, tool: str, ldif: str, *extra: str):
        run = subprocess.run([tool, "-x", "-c", "-H", self.ad["AD_LDAP_URI"], "-D", self.ad["AD_BIND_DN"], "-w", self.ad["AD_BIND_PASSWORD"], *extra],
                             input=ldif if ldif.endswith("\n") or not ldif else ldif + "\n", capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, run.stderr[-2000:]

    def tessera(self, *args: str) -> dict | list:
        run = subprocess.run([BINARY, *args, "--data", str(self.data), "--json"], capture_output=True, text=True, timeout=900)
        assert run.returncode == 0, (args, run.stdout[-2000:], run.stderr[-2000:])
        return json.loads(run.stdout)

    def token(self) -> str:
        return requests.post(f"{self.url}/{self.tenant['tenantId']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": self.tenant["clientId"], "client_secret": self.tenant["clientSecret"],
            "scope": "https://graph.microsoft.com/.default"}, timeout=60).json()["access_token"]

    def graph(self, method: str, path: str, **kw) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token()}", **kw.pop("headers", {})}
        return requests.request(method, f"{self.url}/v1.0/{path}", headers=headers, timeout=60, **kw)

    def user(self, upn: str) -> dict:
        r = self.graph("GET", f"users/{upn}?$select=id,userPrincipalName,displayName,jobTitle,accountEnabled,onPremisesSyncEnabled,"
                              "onPremisesImmutableId,onPremisesDistinguishedName,onPremisesSamAccountName,onPremisesSecurityIdentifier")
        return r.json() if r.status_code == 200 else {}

    def close(self):
        try:
            found = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.ad["AD_LDAP_URI"], "-D", self.ad["AD_BIND_DN"], "-w",
                                    self.ad["AD_BIND_PASSWORD"], "-b", self.ou, "dn"], capture_output=True, text=True, timeout=300)
            dns = [line[4:] for line in found.stdout.splitlines() if line.startswith("dn: ")]
            if dns:
                subprocess.run(["ldapdelete", "-x", "-c", "-H", self.ad["AD_LDAP_URI"], "-D", self.ad["AD_BIND_DN"], "-w", self.ad["AD_BIND_PASSWORD"]],
                               input="\n".join(sorted(dns, key=len, reverse=True)), capture_output=True, text=True, timeout=600)
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def world():
    w = World()
    try:
        yield w
    finally:
        w.close()


def test_a_thousand_users_and_fifty_groups_then_deltas_the_takeover_attack_remediation_and_the_deletion_threshold(world):
    w = world
    # The cloud Global Administrator carries an immutable id; an attacker with write access to AD gives a new user
    # an ms-DS-ConsistencyGuid with the same bytes.
    admin = w.user(w.tenant["adminUserPrincipalName"])
    anchor_bytes = secrets.token_bytes(16)
    anchor = base64.b64encode(anchor_bytes).decode()
    assert w.graph("PATCH", f"users/{admin['id']}", json={"onPremisesImmutableId": anchor}).status_code == 204

    ous = [f"OU=Site{i},{w.ou}" for i in range(4)]
    ldif = [f"dn: {w.ou}\nobjectClass: organizationalUnit\n"] + [f"dn: {ou}\nobjectClass: organizationalUnit\n" for ou in ous]
    users = []
    for i in range(1000):
        dn = f"CN=user{i:04d},{ous[i % 4]}"
        users.append(dn)
        ldif.append(f"dn: {dn}\nobjectClass: user\nsAMAccountName: i{w.ou[11:17]}{i:04d}\nuserPrincipalName: user{i:04d}@contoso.test\n"
                    f"displayName: User {i:04d}\ngivenName: User\nsn: N{i:04d}\ntitle: Engineer\ndepartment: Site{i % 4}\n"
                    f"mail: user{i:04d}@contoso.test\nproxyAddresses: SMTP:user{i:04d}@contoso.test\nuserAccountControl: 544\n")
    for g in range(50):
        members = "".join(f"member: {users[g * 20 + k]}\n" for k in range(20))
        ldif.append(f"dn: CN=group{g:02d},{w.ou}\nobjectClass: group\nsAMAccountName: g{w.ou[11:17]}{g:02d}\n{members}")
    ldif.append(f"dn: CN=mallory,{w.ou}\nobjectClass: user\nsAMAccountName: m{w.ou[11:17]}\nuserPrincipalName: mallory@contoso.test\n"
                f"userAccountControl: 544\nmS-DS-ConsistencyGuid:: {anchor}\n")
    w.ldap("ldapadd", "\n".join(ldif))

    w.tessera("sync", "connector", "add", "--name", "corp", "--ldap-url", w.ad["AD_LDAP_URI"], "--bind-dn", w.ad["AD_BIND_DN"],
              "--bind-password-file", str(w.password_file), "--base-dn", w.ou, "--ca-file", w.ad["AD_CA_FILE"])
    first = w.tessera("sync", "run")
    assert first["status"] == "success" and first["added"] == 1050 and first["quarantined"] == 1, {k: first[k] for k in first if k != "errors"}
    assert [e["code"] for e in first["errors"]] == ["InvalidHardMatch"]
    assert first["errors"][0]["sourceAnchor"] == anchor and first["errors"][0]["distinguishedName"].startswith("CN=mallory,")
    assert w.user(w.tenant["adminUserPrincipalName"]).get("onPremisesSyncEnabled") in (None, False)  # the takeover failed

    u7 = w.user("user0007@contoso.test")
    assert u7["onPremisesSyncEnabled"] is True and u7["jobTitle"] == "Engineer" and u7["onPremisesDistinguishedName"].startswith("CN=user0007,OU=Site3,")
    assert len(base64.b64decode(u7["onPremisesImmutableId"])) == 16 and u7["onPremisesSecurityIdentifier"].startswith("S-1-5-21-")
    refused = w.graph("PATCH", f"users/{u7['id']}", json={"jobTitle": "Hacker"})
    assert refused.status_code == 400 and "on-premises mastered" in refused.json()["error"]["message"], refused.text
    groups = w.graph("GET", "groups?$filter=startswith(displayName,'group')&$top=100").json()["value"]
    assert len(groups) == 50 and all(g.get("onPremisesSyncEnabled") for g in groups)
    g3 = next(g for g in groups if g["displayName"] == "group03")
    assert len(w.graph("GET", f"groups/{g3['id']}/members?$top=100").json()["value"]) == 20
    errors = w.tessera("sync", "errors")
    assert [e["code"] for e in errors] == ["InvalidHardMatch"]

    # Deltas: a change, a move, a disable, a delete and a membership change.
    w.ldap("ldapmodify", f"dn: {users[1]}\nchangetype: modify\nreplace: title\ntitle: Director\n-\n\n"
                         f"dn: {users[3]}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n-\n\n"
                         f"dn: CN=group03,{w.ou}\nchangetype: modify\ndelete: member\nmember: {users[60]}\n-\n")
    w.ldap("ldapmodrdn", "", "-r", "-s", ous[0], users[2], "CN=user0002")
    w.ldap("ldapdelete", users[4])
    delta = w.tessera("sync", "run")
    assert delta["status"] == "success" and not delta["full"] and delta["deleted"] == 1 and delta["updated"] >= 4, delta
    assert w.user("user0001@contoso.test")["jobTitle"] == "Director"
    assert w.user("user0002@contoso.test")["onPremisesDistinguishedName"].startswith(f"CN=user0002,{ous[0]}")
    assert w.user("user0003@contoso.test")["accountEnabled"] is False
    assert w.user("user0004@contoso.test") == {}
    assert len(w.graph("GET", f"groups/{g3['id']}/members?$top=100").json()["value"]) == 19

    # Before the deadline: which synced accounts hold a role? Give one a role, and the audit finds it.
    role = w.graph("POST", "roleManagement/directory/roleAssignments", json={
        "principalId": u7["id"], "roleDefinitionId": "fe930be7-5e62-47db-91af-98c3a49a38b1", "directoryScopeId": "/"})
    assert role.status_code == 201, role.text
    audit = w.tessera("sync", "audit-privileged")
    assert [a["userPrincipalName"] for a in audit] == ["user0007@contoso.test"] and audit[0]["roles"] == ["User Administrator"]

    # Remediation, as Entra documents it: remove the role from the cloud account, delete the quarantined object,
    # and the next cycle completes the match.
    assignments = w.graph("GET", f"roleManagement/directory/roleAssignments?$filter=principalId eq '{admin['id']}'").json()["value"]
    for assignment in assignments:
        assert w.graph("DELETE", f"roleManagement/directory/roleAssignments/{assignment['id']}").status_code == 204
    quarantined = w.tessera("sync", "quarantine", "list")
    assert len(quarantined) == 1
    w.tessera("sync", "quarantine", "delete", quarantined[0]["id"])
    remedied = w.tessera("sync", "run")
    assert remedied["status"] == "success" and remedied["quarantined"] == 0, remedied
    matched = w.user(admin["id"])
    assert matched["onPremisesSyncEnabled"] is True and matched["onPremisesImmutableId"] == anchor

    # Deleting 600 users in AD: the export stops before deleting anything.
    w.ldap("ldapdelete", "\n".join(users[100:700]))
    stopped = w.tessera("sync", "run")
    assert stopped["status"] == "stopped-deletion-threshold-exceeded" and stopped["deleted"] == 0, {k: stopped[k] for k in stopped if k != "errors"}
    assert w.user("user0100@contoso.test")["onPremisesSyncEnabled"] is True
    approved = w.tessera("sync", "approve-deletions", stopped["id"])
    assert approved["deleted"] == 600
    assert w.user("user0100@contoso.test") == {} and w.user("user0700@contoso.test")["onPremisesSyncEnabled"] is True
    # The switches through Graph.
    settings = w.graph("GET", "directory/onPremisesSynchronization").json()["value"][0]
    assert settings["configuration"]["accidentalDeletionPrevention"] == {"synchronizationPreventionType": "enabledForCount", "alertThreshold": 500}
