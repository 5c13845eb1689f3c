"""Conditional Access for workload identities, enforced at the token endpoint: MSAL's client credentials for an app
whose service principal a policy allows only from a named location. The server trusts 127.0.0.1 as a reverse proxy, so
the test says where the client is with X-Forwarded-For (issue 14's proof, first part)."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from support import client_behind_proxy, Sdk, Tenant, Tessera, first_start

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
GRAPH = "https://graph.microsoft.com/.default"


@pytest.fixture(scope="module")
def server():
    with first_start(BINARY, "tessera-ca-", "--trusted-proxy", "127.0.0.1") as started:
        yield started




def test_a_service_principal_is_refused_outside_its_named_location(server):
    token = client_behind_proxy(server, "203.0.113.10").acquire_token_for_client(scopes=[GRAPH])
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
    refused = client_behind_proxy(server, "198.51.100.23").acquire_token_for_client(scopes=[GRAPH])
    assert refused.get("error") == "invalid_grant" and 53003 in refused.get("error_codes", []), refused
    allowed = client_behind_proxy(server, "203.0.113.11").acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in allowed, allowed


def graph_from(server, address: str) -> tuple[requests.Session, str]:
    token = client_behind_proxy(server, address).acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in token, token
    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    session.headers["Authorization"] = f"Bearer {token['access_token']}"
    return session, f"{server['url']}/v1.0"


def test_the_sign_in_log_says_which_policy_refused_and_the_sdk_filters_on_it(server):
    """Graph SDK: `signIns?$filter=conditionalAccessStatus eq 'failure'`, each record in the SDK's signIn model."""
    from msgraph.generated.audit_logs.sign_ins.sign_ins_request_builder import SignInsRequestBuilder
    from msgraph.generated.models.applied_conditional_access_policy_result import AppliedConditionalAccessPolicyResult
    from msgraph.generated.models.conditional_access_status import ConditionalAccessStatus

    refused = client_behind_proxy(server, "198.51.100.31").acquire_token_for_client(scopes=[GRAPH])
    assert 53003 in refused.get("error_codes", []), refused
    # The SDK's credential asks for its token straight from 127.0.0.1 (no forwarded address): put this machine in the
    # data centre.
    session, graph = graph_from(server, "203.0.113.12")
    centre = next(l for l in session.get(f"{graph}/identity/conditionalAccess/namedLocations").json()["value"]
                  if l["displayName"] == "Data centre")
    patched = session.patch(f"{graph}/identity/conditionalAccess/namedLocations/{centre['id']}", json={
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "ipRanges": centre["ipRanges"] + [{"@odata.type": "#microsoft.graph.iPv4CidrRange", "cidrAddress": "127.0.0.1/32"}]})
    assert patched.status_code == 204, patched.text
    tenant = Tenant(server["tenant"], "", "", server["client"], server["secret"])
    sdk = Sdk(Tessera(f"https://127.0.0.1:{server['port']}", server["ca"], tenant, tenant), tenant)
    try:
        config = SignInsRequestBuilder.SignInsRequestBuilderGetRequestConfiguration(
            query_parameters=SignInsRequestBuilder.SignInsRequestBuilderGetQueryParameters(
                filter="conditionalAccessStatus eq 'failure'"))
        page = sdk.run(sdk.client.audit_logs.sign_ins.get(request_configuration=config))
        assert page.value, "no failed sign-in listed"
        assert all(r.conditional_access_status == ConditionalAccessStatus.Failure for r in page.value)
        record = next(r for r in page.value if r.ip_address == "198.51.100.31")
        assert record.status.error_code == 53003 and record.app_id == server["client"]
        applied = [p for p in record.applied_conditional_access_policies if p.result == AppliedConditionalAccessPolicyResult.Failure]
        assert [p.display_name for p in applied] == ["Automation only from the data centre"]
        assert applied[0].enforced_grant_controls == ["block"]
    finally:
        sdk.close()


def test_break_glass_from_the_command_line_turns_a_lockout_into_report_only(server):
    """`tessera ca break-glass`: the tenant's automation is locked out (every token refused); the server's command line
    turns every enabled policy to report-only, audited, and the running server lets the next request through."""
    session, graph = graph_from(server, "203.0.113.13")
    sp = session.get(f"{graph}/servicePrincipals", params={"$filter": f"appId eq '{server['client']}'"}).json()["value"][0]
    lockout = session.post(f"{graph}/identity/conditionalAccess/policies", json={
        "displayName": "Automation never", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": [sp["id"]]},
                       "applications": {"includeApplications": ["All"]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}})
    assert lockout.status_code == 201, lockout.text
    refused = client_behind_proxy(server, "203.0.113.14").acquire_token_for_client(scopes=[GRAPH])
    assert 53003 in refused.get("error_codes", []), refused

    done = subprocess.run([BINARY, "ca", "break-glass", "--data", str(server["data"]), "--tenant", server["tenant"]],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Automation never" in done.stdout and "turned to report-only" in done.stdout, done.stdout

    # The running server sees the change within a second (it re-reads a tenant written by another process that often).
    deadline = time.monotonic() + 10
    while True:
        token = client_behind_proxy(server, "198.51.100.40").acquire_token_for_client(scopes=[GRAPH])
        if "access_token" in token or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "access_token" in token, token
    session, graph = graph_from(server, "198.51.100.40")  # from anywhere again: nothing is enforced
    policies = session.get(f"{graph}/identity/conditionalAccess/policies").json()["value"]
    assert policies and all(p["state"] != "enabled" for p in policies), policies
    assert {p["displayName"]: p["state"] for p in policies}["Automation never"] == "enabledForReportingButNotEnforced"
    audits = session.get(f"{graph}/auditLogs/directoryAudits",
                         params={"$filter": f"targetResources/any(t:t/id eq '{lockout.json()['id']}')"}).json()["value"]
    by_command_line = [a for a in audits if (a["initiatedBy"].get("app") or {}).get("displayName", "").startswith("Tessera command line")]
    assert by_command_line and by_command_line[0]["activityDisplayName"].startswith("Update"), audits
