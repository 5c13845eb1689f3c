"""Conditional Access for workload identities, enforced at the token endpoint: MSAL's client credentials for an app
whose service principal a policy allows only from a named location. The server trusts 127.0.0.1 as a reverse proxy, so
the test says where the client is with X-Forwarded-For (issue 14's proof, first part)."""
from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path

import msal
import pytest
import requests

from support import serve_on_a_free_port, stop_serve

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
GRAPH = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def server():
    data = Path(tempfile.mkdtemp(prefix="tessera-ca-"))
    proc, printed, port = serve_on_a_free_port(lambda port: [
        BINARY, "serve", "--data", str(data), "--port", str(port), "--trusted-proxy", "127.0.0.1"])
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    field = lambda name: re.search(rf"{name}:\s+(\S+)", printed).group(1)  # noqa: E731
    try:
        yield {"url": f"https://localhost:{port}", "tenant": field("tenant id"), "client": field("client id"),
               "secret": field("client secret"), "ca": str(data / "tls" / "ca.pem")}
    finally:
        stop_serve(proc, data)


def app_from(server, address: str) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    session.headers["X-Forwarded-For"] = address
    return msal.ConfidentialClientApplication(server["client"], client_credential=server["secret"],
                                              authority=f"{server['url']}/{server['tenant']}", instance_discovery=False,
                                              http_client=session, token_cache=msal.TokenCache())


def test_a_service_principal_is_refused_outside_its_named_location(server):
    token = app_from(server, "203.0.113.10").acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in token, token
    graph_session = requests.Session()
    graph_session.verify, graph_session.trust_env = server["ca"], False
    graph_session.headers["Authorization"] = f"Bearer {token['access_token']}"
    graph = f"{server['url']}/v1.0"
    office = graph_session.post(f"{graph}/identity/conditionalAccess/namedLocations", json={
        "@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Data centre",
        "ipRanges": [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "203.0.113.0/24"}]})
    assert office.status_code == 201, office.text
    sp = graph_session.get(f"{graph}/servicePrincipals", params={"$filter": f"appId eq '{server['client']}'"}).json()["value"][0]
    policy = graph_session.post(f"{graph}/identity/conditionalAccess/policies", json={
        "displayName": "Automation only from the data centre", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": [sp["id"]]},
                       "applications": {"includeApplications": ["All"]},
                       "locations": {"includeLocations": ["All"], "excludeLocations": [office.json()["id"]]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}})
    assert policy.status_code == 201, policy.text
    # From elsewhere MSAL surfaces Entra's error; from the data centre a token comes.
    refused = app_from(server, "198.51.100.23").acquire_token_for_client(scopes=[GRAPH])
    assert refused.get("error") == "invalid_grant" and 53003 in refused.get("error_codes", []), refused
    allowed = app_from(server, "203.0.113.11").acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in allowed, allowed
