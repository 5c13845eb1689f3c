"""What an operator sees: /metrics read with Prometheus' own text parser, and `--log-format json` lines that a
client's request-id finds, with no credential in them."""
from __future__ import annotations

import json
import os
import re
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from support import serve_on_a_free_port, stop_serve

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")


@pytest.fixture(scope="module")
def server():
    data = Path(tempfile.mkdtemp(prefix="tessera-observability-"))
    proc, printed, port = serve_on_a_free_port(lambda port: [
        BINARY, "serve", "--http", "--data", str(data), "--port", str(port), "--log-format", "json", "--trusted-proxy", "127.0.0.1"])
    lines: list[str] = printed.splitlines()
    threading.Thread(target=lambda: [lines.append(line.rstrip("\n")) for line in proc.stdout], daemon=True).start()
    field = lambda name: re.search(rf"{name}:\s+(\S+)", printed).group(1)  # noqa: E731
    try:
        yield {"url": f"http://localhost:{port}", "tenant": field("tenant id"), "client": field("client id"),
               "secret": field("client secret"), "lines": lines, "tap": field("access pass"), "admin": field("administrator")}
    finally:
        stop_serve(proc, data)


def token(server) -> requests.Response:
    return requests.post(f"{server['url']}/{server['tenant']}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": server["client"], "client_secret": server["secret"],
        "scope": "https://graph.microsoft.com/.default"})


def samples(server) -> dict[str, list]:
    response = requests.get(f"{server['url']}/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.text[:200]
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def test_metrics_parse_as_prometheus_text_and_count_what_happened(server):
    access = token(server).json()["access_token"]
    assert requests.get(f"{server['url']}/v1.0/users", headers={"Authorization": f"Bearer {access}"}).status_code == 200
    assert requests.get(f"{server['url']}/v1.0/users").status_code == 401
    wrong = requests.post(f"{server['url']}/{server['tenant']}/login/tap", json={"username": server["admin"], "temporaryAccessPass": "0" * 8},
                          headers={"Origin": server["url"]})
    assert wrong.status_code == 400
    found = samples(server)

    def value(name: str, **labels) -> float:
        return sum(s.value for s in found.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("tessera_http_requests_total", route="/{tenant}/oauth2/v2.0/token", method="POST", status="200") >= 1
    assert value("tessera_http_requests_total", route="/v1.0/users", method="GET", status="200") >= 1
    assert value("tessera_http_requests_total", route="/v1.0/users", method="GET", status="401") >= 1
    assert value("tessera_http_request_duration_seconds_count", route="/v1.0/users", method="GET") >= 2
    assert value("tessera_tokens_issued_total", grant="client_credentials") >= 1
    assert value("tessera_sign_ins_total", method="Temporary Access Pass", result="failure") == 1
    assert value("tessera_store_transaction_duration_seconds_count", kind="read") > 0
    assert value("tessera_store_transaction_duration_seconds_count", kind="write") > 0
    # Ids never become label values: the users' collection is one route, whatever id follows it.
    routes = {s.labels["route"] for s in found["tessera_http_requests_total"]}
    assert not any(re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", route) for route in routes), routes


def test_metrics_are_not_served_to_the_internet(server):
    # Through the trusted proxy, on behalf of a client elsewhere: not found.
    response = requests.get(f"{server['url']}/metrics", headers={"X-Forwarded-For": "203.0.113.8"})
    assert response.status_code == 404


def test_json_log_lines_carry_the_request_id_and_no_credential(server):
    response = token(server)
    request_id = response.headers["request-id"]
    failed = requests.get(f"{server['url']}/v1.0/users", headers={"Authorization": "Bearer not-a-token", "Cookie": "tessera=secret"})
    assert failed.status_code == 401
    failed_id = failed.headers["request-id"]
    assert failed.json()["error"]["innerError"]["request-id"] == failed_id
    deadline = time.monotonic() + 10
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = [json.loads(line) for line in list(server["lines"]) if line.startswith("{")]
        if any(r.get("request-id") == failed_id for r in records):
            break
        time.sleep(0.1)
    mine = [r for r in records if r.get("request-id") == request_id]
    assert len(mine) == 1, records[-5:]
    assert mine[0]["route"] == "/{tenant}/oauth2/v2.0/token" and mine[0]["status"] == "200" and mine[0]["tenant"] == server["tenant"]
    assert {"time", "level", "logger", "message"} <= mine[0].keys()
    assert [r["status"] for r in records if r.get("request-id") == failed_id] == ["401"]
    # The first start prints the new tenant's secrets once, on purpose; the log itself never holds one.
    everything = "\n".join(line for line in server["lines"] if line.startswith("{"))
    for credential in (server["secret"], "not-a-token", "tessera=secret", server["tap"]):
        assert credential not in everything
