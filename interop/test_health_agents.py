"""Connect Health agents over TLS 1.2 or newer (issue 16): `tessera serve --health-listen` opens the health listener;
`tessera health agent` registers with a Hybrid Identity Administrator's token (an app's service principal holding the
role, its token from the token endpoint) and uploads over mutual TLS; OpenSSL's s_client shows TLS 1.0 and 1.1 refused
with the protocol_version alert (70), TLS 1.2 and 1.3 accepted with the agent's certificate and refused without one;
an agent below the minimum version gets 426; an agent silent for more than two hours (the server's clock moved through a
debug build's --test-clock-offset-file) raises "Health service data is not up to date", which its next upload clears;
a sync run stopped at the deletion threshold (a file connector) raises an alert that approving the deletions resolves;
an adds agent reports the running Samba domain controller's bind and search latency."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from support import Session, Tenant, Tessera, first_start, free_port

REPO = Path(__file__).resolve().parents[1]
BINARY = os.environ.get("TESSERA_BIN") or str(REPO / ".build" / "debug" / "tessera")
HYBRID_IDENTITY_ADMINISTRATOR = "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2"
STALE = "Health service data is not up to date"


@pytest.fixture(scope="module")
def server():
    clock = Path(tempfile.mkdtemp(prefix="tessera-health-clock-")) / "offset"
    clock.write_text("0")
    health_port = free_port()
    with first_start(BINARY, "tessera-health-", "--sync-interval", "0", "--health-listen", f"127.0.0.1:{health_port}",
                     "--test-clock-offset-file", str(clock)) as started:
        deadline = time.monotonic() + 30
        while True:  # the listener is a service of its own: it may bind a moment after the main port
            try:
                socket.create_connection(("127.0.0.1", health_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the health listener did not open its port"
                time.sleep(0.1)
        tenant = Tenant(started["tenant"], "", "", started["client"], started["secret"])
        started.update(clock=clock, health_port=health_port, tenant_record=tenant,
                       tessera=Tessera(started["url"], started["ca"], tenant, tenant), states=Path(tempfile.mkdtemp(prefix="tessera-agents-")))
        yield started


def token(server) -> str:
    """A fresh token for the automation app (not the cached one: tests move the server's clock past its expiry)."""
    response = server["tessera"].request_token(server["tenant"], server["client"], server["secret"])
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def graph(server, method: str, path: str, **kw) -> requests.Response:
    return Session(server["ca"]).request(method, f"{server['url']}/{path}", headers={"Authorization": f"Bearer {token(server)}"}, **kw)


def agent(server, role: str, *extra: str, state: str | None = None, token_text: str | None = None) -> subprocess.CompletedProcess:
    """`tessera health agent --once` with its state kept per role; registration uses `token_text` when given."""
    folder = server["states"] / (state or role)
    command = [BINARY, "health", "agent", "--role", role, "--server", server["url"], "--ca-file", server["ca"], "--state", str(folder), "--once"]
    if token_text is not None:
        token_file = server["states"] / f"{role}.token"
        token_file.write_text(token_text)
        token_file.chmod(0o600)
        command += ["--token-file", str(token_file)]
    return subprocess.run(command + list(extra), capture_output=True, text=True, timeout=120)


def sync_agent(server, **kw) -> subprocess.CompletedProcess:
    return agent(server, "sync", "--data", str(server["data"]), **kw)


def move_clock(server, seconds: float) -> None:
    server["clock"].write_text(str(float(server["clock"].read_text() or 0) + seconds))
    time.sleep(0.3)  # the server reads the file at most every 100 ms


def s_client(server, *options: str, request: str = "") -> str:
    """OpenSSL's s_client against the health listener; what it printed (both streams)."""
    done = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{server['health_port']}", "-servername", "localhost",
                           "-CAfile", server["ca"], "-ign_eof", *options], input=request, capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def metric(server, name: str, labels: str) -> float:
    text = Session(server["ca"]).get(f"{server['url']}/metrics").text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def registered(server):
    """The sync agent, registered once the app's service principal holds Hybrid Identity Administrator."""
    refused = sync_agent(server, token_text=token(server))
    assert refused.returncode != 0 and "registration refused (403)" in refused.stderr, refused.stderr
    sp = graph(server, "GET", f"v1.0/servicePrincipals(appId='{server['client']}')").json()["id"]
    assigned = graph(server, "POST", "v1.0/roleManagement/directory/roleAssignments",
                     json={"principalId": sp, "roleDefinitionId": HYBRID_IDENTITY_ADMINISTRATOR, "directoryScopeId": "/"})
    assert assigned.status_code == 201, assigned.text
    done = sync_agent(server, token_text=token(server))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered sync agent" in done.stdout and "uploaded to https://localhost:" in done.stdout, done.stdout
    return server["states"] / "sync"


def test_an_agent_registers_with_a_hybrid_identity_administrators_token_and_uploads_over_mutual_tls(server, registered):
    agents = graph(server, "GET", "beta/connectHealth/agents").json()["value"]
    assert [a["role"] for a in agents] == ["sync"]
    assert agents[0]["lastUploadDateTime"] and agents[0]["health"] == "Healthy" and agents[0]["agentVersion"] == "2.1.0"
    assert agents[0]["lastReport"]["sync"] == {"runs": [], "exportErrors": [], "quarantined": [], "deletionThresholdStops": []}
    # A later run needs no token: the certificate is the agent's credential.
    again = sync_agent(server)
    assert again.returncode == 0, again.stderr
    assert metric(server, "tessera_health_uploads_total", 'result="accepted"') >= 2


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_1_0_and_1_1_are_refused_with_the_protocol_version_alert(server, registered, version):
    before = metric(server, "tessera_health_tls_handshakes_refused_total", 'reason="protocol_version"')
    output = s_client(server, version, "-cipher", "DEFAULT@SECLEVEL=0", "-cert", str(registered / "agent.pem"),
                      "-key", str(registered / "agent-key.pem"))
    assert "alert protocol version" in output and "SSL alert number 70" in output, output
    assert metric(server, "tessera_health_tls_handshakes_refused_total", 'reason="protocol_version"') == before + 1


@pytest.mark.parametrize("version,protocol", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted_with_the_agents_certificate_and_refused_without(server, registered, version, protocol):
    request = "GET /upload HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    accepted = s_client(server, version, "-cert", str(registered / "agent.pem"), "-key", str(registered / "agent-key.pem"), request=request)
    assert f"Protocol  : {protocol}" in accepted or f"New, {protocol}" in accepted, accepted
    assert "HTTP/1.1 405" in accepted and "Agents upload with POST" in accepted, accepted
    # ECDHE with AES-GCM or ChaCha20 only.
    assert any(f"Cipher is {suite}" in accepted for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
               "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")), accepted
    refused = s_client(server, version, request=request)
    assert "HTTP/1.1" not in refused and "alert" in refused, refused


def test_a_tls_1_2_suite_without_ecdhe_and_aead_is_refused(server, registered):
    output = s_client(server, "-tls1_2", "-cipher", "AES128-SHA:AES256-SHA256", "-cert", str(registered / "agent.pem"),
                      "-key", str(registered / "agent-key.pem"), request="GET /upload HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert "HTTP/1.1" not in output and "handshake failure" in output, output


def test_an_agent_below_the_minimum_version_is_refused_with_an_upgrade_message(server, registered):
    upload_url = json.loads((registered / "agent.json").read_text())["uploadUrl"]
    session = Session(server["ca"])
    session.cert = (str(registered / "agent.pem"), str(registered / "agent-key.pem"))
    response = session.post(upload_url, json={"agentVersion": "1.9.0", "sync": {}})
    assert response.status_code == 426, response.text
    error = response.json()["error"]
    assert error["code"] == "AgentVersionNotSupported" and "Upgrade the agent" in error["message"]
    bad = session.post(upload_url, json={"agentVersion": "2.1.0", "adds": {"domainController": "dc", "reachable": False}})
    assert bad.status_code == 400 and "cannot upload 'adds'" in bad.json()["error"]["message"], bad.text


def test_a_silent_agent_raises_the_stale_alert_which_clears_when_it_reports_again(server, registered):
    move_clock(server, 2 * 3600 + 120)
    active = graph(server, "GET", "beta/connectHealth/alerts", params={"state": "active"}).json()["value"]
    assert [a["displayName"] for a in active] == [STALE], active
    assert active[0]["state"] == "Active" and active[0]["monitorRoleType"] == "AadSyncService"
    offline = subprocess.run([BINARY, "health", "alerts", "--json", "--active", "--data", str(server["data"]),
                              "--test-clock-offset-file", str(server["clock"])], capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0 and [a["alertId"] for a in json.loads(offline.stdout)] == [active[0]["alertId"]], offline.stdout + offline.stderr

    done = sync_agent(server)
    assert done.returncode == 0, done.stderr
    assert graph(server, "GET", "beta/connectHealth/alerts", params={"state": "active"}).json()["value"] == []
    history = graph(server, "GET", "beta/connectHealth/alerts").json()["value"]
    assert [(a["alertId"], a["state"]) for a in history] == [(active[0]["alertId"], "ResolvedByPositiveResult")], history


def tessera_cli(server, *args: str) -> dict:
    done = subprocess.run([BINARY, *args, "--data", str(server["data"]), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def ldif_user(n: int) -> str:
    guid = base64.b64encode(bytes([0xA5] * 15 + [n])).decode()
    return (f"dn: CN=health{n},OU=Staff,DC=corp,DC=example,DC=test\nobjectClass: top\nobjectClass: user\nobjectGUID:: {guid}\n"
            f"sAMAccountName: health{n}\nuserPrincipalName: health{n}@corp.example.test\ndisplayName: Health {n}\nuserAccountControl: 512\n")


def test_a_sync_run_stopped_at_the_deletion_threshold_raises_an_alert_that_approving_the_deletions_resolves(server, registered):
    directory = server["states"] / "corp.ldif"
    directory.write_text("\n".join(ldif_user(n) for n in range(3)))
    tessera_cli(server, "sync", "connector", "add", "--name", "file", "--ldif", str(directory), "--base-dn", "OU=Staff,DC=corp,DC=example,DC=test")
    tessera_cli(server, "sync", "configure", "--deletion-threshold", "1")
    assert tessera_cli(server, "sync", "run")["status"] == "success"
    directory.write_text("")  # all three gone from the directory: more deletions than the threshold allows
    stopped = tessera_cli(server, "sync", "run")
    assert stopped["status"] == "stopped-deletion-threshold-exceeded", stopped

    assert sync_agent(server).returncode == 0
    active = graph(server, "GET", "beta/connectHealth/alerts", params={"state": "active"}).json()["value"]
    assert [a["shortName"] for a in active] == ["ExportStoppedDeletionThresholdExceeded"], active
    assert stopped["id"] in active[0]["description"] and active[0]["level"] == "Error"
    page_runs = graph(server, "GET", "beta/connectHealth/agents").json()["value"][0]["lastReport"]["sync"]["runs"]
    assert [r["status"] for r in page_runs][-2:] == ["success", "stopped-deletion-threshold-exceeded"]

    assert tessera_cli(server, "sync", "approve-deletions", stopped["id"])["deleted"] == 3
    assert sync_agent(server).returncode == 0
    assert graph(server, "GET", "beta/connectHealth/alerts", params={"state": "active"}).json()["value"] == []
    resolved = [a for a in graph(server, "GET", "beta/connectHealth/alerts").json()["value"] if a["alertId"] == active[0]["alertId"]]
    assert resolved[0]["state"] == "ResolvedByPositiveResult" and resolved[0]["resolvedDate"], resolved


def _ad_env() -> dict:
    path = os.environ.get("TESSERA_TEST_AD_ENV")
    assert path and os.path.exists(path), "no domain controller: run scripts/test, or scripts/ad-up DIR and set TESSERA_TEST_AD_ENV=DIR/env"
    env = {}
    for line in Path(path).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            env[key] = value.strip("'")
    return env


def test_an_adds_agent_reports_the_domain_controllers_bind_and_search_latency(server, registered):
    ad = _ad_env()
    password = server["states"] / "bind.pw"
    password.write_text(ad["AD_BIND_PASSWORD"])
    password.chmod(0o600)
    done = agent(server, "adds", "--ldap-url", ad["AD_LDAPS_URI"], "--ldap-ca-file", ad["AD_CA_FILE"], "--bind-dn", ad["AD_BIND_DN"],
                 "--bind-password-file", str(password), "--base-dn", ad["AD_BASE_DN"], token_text=token(server))
    assert done.returncode == 0, done.stdout + done.stderr
    adds = [a for a in graph(server, "GET", "beta/connectHealth/agents").json()["value"] if a["role"] == "adds"]
    assert len(adds) == 1
    report = adds[0]["lastReport"]["adds"]
    assert report["domainController"] == ad["AD_LDAPS_URI"] and report["reachable"] is True, report
    assert 0 < report["bindMilliseconds"] < 15000 and 0 < report["searchMilliseconds"] < 15000, report
    assert adds[0]["health"] == "Healthy"
