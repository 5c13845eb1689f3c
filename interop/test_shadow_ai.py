"""Shadow-AI discovery from imported traffic logs (issue 17), against a running Tessera.

The same morning's traffic is logged twice: by a Squid proxy (native access.log) and by a firewall speaking CEF.
Each log is imported with `tessera traffic import` (the Squid one into Contoso, the CEF one into Fabrikam), and
Graph beta's traffic log and discovery report must show the same apps, users and verdicts for both.

The installed Microsoft Graph Python SDK is msgraph-sdk (v1.0 only; msgraph-beta-sdk is not installed), and
/networkAccess is a beta API, so these calls are plain HTTP with an app token, as the SDK would send them.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from support import Graph, Tenant, unique

REPO_ROOT = Path(__file__).resolve().parent.parent


def _binary() -> str:
    return os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera")


def _db_args() -> list[str]:
    database = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
    return [] if database in ("", "sqlite") else ["--database", database]


def squid_log(start: int, domain: str) -> str:
    return "\n".join([
        f"{start}.100    245 10.0.0.5 TCP_TUNNEL/200 5230 CONNECT api.openai.com:443 admin@{domain} HIER_DIRECT/104.18.7.192 -",
        f"{start + 60}.200   1020 10.0.0.6 TCP_MISS/200 48210 POST http://chat.deepseek.com/api/v0/chat/completion bob HIER_DIRECT/1.2.3.4 application/json",
        f"{start + 61}.000     12 10.0.0.6 TCP_MISS/200 900 GET http://www.example.com/ bob HIER_DIRECT/93.184.215.14 text/html",
        "this line is not squid",
        f"{start + 120}.500     80 10.0.0.5 TCP_TUNNEL/200 7000 CONNECT claude.ai:443 admin@{domain} HIER_DIRECT/160.79.104.10 -",
        f"{start + 180}.000     33 10.0.0.9 TCP_DENIED/403 3900 CONNECT poe.com:443 mallory HIER_NONE/- text/html",
    ]) + "\n"


def cef_log(start: int, domain: str) -> str:
    ms = start * 1000
    head = "<134>Dec  6 09:00:00 fw01 CEF:0|Contoso|Firewall|1.0|web|Traffic|3|"
    return "\n".join([
        f"{head}rt={ms + 100} src=10.0.0.5 dhost=api.openai.com dpt=443 suser=admin@{domain} in=5230 act=allow",
        f"{head}rt={ms + 60_200} src=10.0.0.6 dhost=chat.deepseek.com request=http://chat.deepseek.com/api/v0/chat/completion "
        f"requestMethod=POST suser=bob in=48210 act=allow",
        f"{head}rt={ms + 61_000} src=10.0.0.6 dhost=www.example.com suser=bob act=allow",
        "<134>Dec  6 09:01:02 fw01 CEF:0|Contoso|Firewall|1.0|web|Broken",
        f"{head}rt={ms + 120_500} src=10.0.0.5 dhost=claude.ai dpt=443 suser=admin@{domain} in=7000 act=allow",
        f"{head}rt={ms + 180_000} src=10.0.0.9 dhost=poe.com dpt=443 suser=mallory act=blocked",
    ]) + "\n"


def import_log(tessera, tenant: Tenant, fmt: str, text: str, tmp_path: Path) -> subprocess.CompletedProcess:
    log = tmp_path / f"{fmt}-{unique()}.log"
    log.write_text(text)
    data = Path(tessera.ca).parent.parent
    cmd = [_binary(), "traffic", "import", "--data", str(data), *_db_args(), "--tenant", tenant.tenant_id,
           "--format", fmt, "--json", str(log)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def reader(tessera, tenant: Tenant, graph: Graph) -> Graph:
    """Beta Graph with a token of an app granted NetworkAccess.ReadWrite.All."""
    app, sp = graph.create_app(unique("traffic-reader-"))
    graph.grant(sp["id"], "NetworkAccess.ReadWrite.All")
    secret = graph.add_password(app["id"])
    r = tessera.request_token(tenant.tenant_id, app["appId"], secret)
    assert r.status_code == 200, r.text
    return Graph(tessera, r.json()["access_token"], version="beta")


@pytest.fixture(scope="module")
def discovered(tessera, tenant_a, tenant_b, graph, graph_b, tmp_path_factory):
    start = int(time.time()) - 3600
    tmp = tmp_path_factory.mktemp("logs")
    squid = import_log(tessera, tenant_a, "squid", squid_log(start, tenant_a.domain), tmp)
    cef = import_log(tessera, tenant_b, "cef", cef_log(start, tenant_b.domain), tmp)
    return {"squid": (squid, reader(tessera, tenant_a, graph)), "cef": (cef, reader(tessera, tenant_b, graph_b))}


def test_malformed_lines_are_reported_with_their_numbers(discovered):
    for fmt, (proc, _) in discovered.items():
        assert f":4: " in proc.stderr, (fmt, proc.stderr)
        assert '"malformed":1' in proc.stdout and '"recorded":4' in proc.stdout, (fmt, proc.stdout)


def summary(g: Graph) -> list[tuple]:
    report = g.ok("GET", "networkAccess/reports/generativeAIApps")
    return [(a["appId"], a["userCount"], a["requestCount"], a["blockedCount"], a["promptCount"]) for a in report["value"]]


def test_a_squid_log_and_a_cef_log_discover_the_same_apps(discovered):
    squid, cef = summary(discovered["squid"][1]), summary(discovered["cef"][1])
    assert squid == cef
    assert {a[0] for a in squid} == {"openai-api", "deepseek-chat", "anthropic-claude", "poe"}
    assert ("deepseek-chat", 1, 1, 0, 1) in squid and ("poe", 1, 1, 1, 0) in squid


def test_traffic_log_pages_and_filters_as_graph_documents(discovered, tenant_a):
    g = discovered["squid"][1]
    first = g.ok("GET", "networkAccess/logs/traffic", params={"$top": "3"})
    assert first["@odata.context"].endswith("/beta/networkAccess/logs/$metadata#traffic")
    assert len(first["value"]) == 3
    rest = g.all_pages(first["@odata.nextLink"])
    records = first["value"] + rest
    assert [r["destinationFQDN"] for r in records] == ["poe.com", "claude.ai", "chat.deepseek.com", "api.openai.com"]
    assert len({r["transactionId"] for r in records}) == 4
    openai = records[-1]
    assert openai["@odata.type"] == "#microsoft.graph.networkaccess.networkAccessTraffic"
    assert openai["userPrincipalName"] == tenant_a.admin_upn and openai["userId"]
    meta = openai["cloudApplicationMetadata"]
    assert meta["cloudApplicationCatalogId"] == "openai-api" and meta["name"] == "OpenAI API"
    assert "Generative AI" in meta["categories"] and 0 <= meta["riskScore"] <= 10
    mine = g.ok("GET", "networkAccess/logs/traffic", params={"$filter": f"userPrincipalName eq '{tenant_a.admin_upn}'"})
    assert {r["destinationFQDN"] for r in mine["value"]} == {"api.openai.com", "claude.ai"}
    blocked = g.ok("GET", "networkAccess/logs/traffic", params={"$filter": "action eq 'block'", "$select": "transactionId,action"})
    assert [set(r) - {"@odata.type"} for r in blocked["value"]] == [{"transactionId", "action"}]


def test_traffic_log_needs_network_access_permission(tessera, tenant_a):
    plain = Graph(tessera, tessera.token(tenant_a), version="beta")
    r = plain.request("GET", "networkAccess/logs/traffic")
    assert r.status_code == 403 and r.json()["error"]["code"] == "Authorization_RequestDenied"
