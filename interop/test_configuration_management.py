"""Tenant Configuration Management (Graph v1.0 /admin/configurationManagement) driven by the Microsoft Graph Python SDK.

A monitor over a Conditional Access policy and the authentication methods policy's FIDO2 method reports the changed
properties at its next run and marks them fixed when they are put back. The server's clock is moved to the next
six-hour slot through a debug build's `--test-clock-offset-file`, so nothing waits six hours.

msgraph-sdk 1.65 has the monitors, results, drifts, snapshot jobs and snapshots but not the createSnapshot action:
that one call goes over plain HTTP.
"""
from __future__ import annotations

import os
import ssl
import tempfile
import time
from pathlib import Path

import pytest

from support import GRAPH_SCOPE, Graph, Tenant, Tessera, first_start, unique

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
ROOT = "admin/configurationManagement"
FIDO2 = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/fido2"


@pytest.fixture(scope="module")
def server():
    clock = Path(tempfile.mkdtemp(prefix="tessera-tcm-clock-")) / "offset"
    clock.write_text("0")
    with first_start(BINARY, "tessera-tcm-", "--test-clock-offset-file", str(clock)) as started:
        started["clock"] = clock
        tenant = Tenant(started["tenant"], "", "", started["client"], started["secret"])
        started["tessera"] = Tessera(started["url"], started["ca"], tenant, tenant)
        yield started


def move_to_next_slot(server) -> None:
    """Moves the server's clock just past the next six-hour slot (00:00, 06:00, 12:00, 18:00 UTC)."""
    offset = float(server["clock"].read_text() or 0)
    now = time.time() + offset
    target = (now // 21600 + 1) * 21600 + 60
    server["clock"].write_text(str(offset + target - now))
    time.sleep(0.5)  # the server reads the file at most every 100 ms: no token is minted at the old time after this


def monitoring_app(server) -> Tenant:
    """A new app of the tenant granted ConfigurationMonitoring.ReadWrite.All and the policy permissions, as an
    administrator grants them (app role assignments on the Graph service principal)."""
    admin = fresh_graph(server, server["tessera"].tenant_a)
    app, sp = admin.create_app(unique("tcm-"))
    secret = admin.add_password(app["id"])
    for permission in ["ConfigurationMonitoring.ReadWrite.All", "Policy.ReadWrite.ConditionalAccess", "Policy.ReadWrite.AuthenticationMethod"]:
        admin.grant(sp["id"], permission)
    return Tenant(server["tessera"].tenant_a.tenant_id, "", "", app["appId"], secret)


def with_sdk(server, tenant: Tenant, work):
    """Runs `await work(client.admin.configuration_management)` with a new msgraph-sdk GraphServiceClient for `tenant`'s
    app on this server (https://localhost:PORT). A new client each time: the server's clock moves six hours between
    runs, and azure-identity would keep offering a token the server now sees as expired."""
    import asyncio

    import httpx
    from azure.identity.aio import ClientSecretCredential
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.graph_request_adapter import options as graph_options
    from msgraph_core import GraphClientFactory

    async def run():
        credential = ClientSecretCredential(tenant.tenant_id, tenant.client_id, tenant.client_secret, authority=server["url"],
                                            disable_instance_discovery=True, connection_verify=server["ca"])
        auth = AzureIdentityAuthenticationProvider(credential, scopes=[GRAPH_SCOPE], allowed_hosts=["localhost"])
        http = httpx.AsyncClient(verify=ssl.create_default_context(cafile=server["ca"]), trust_env=False,
                                 timeout=httpx.Timeout(60, connect=10))
        adapter = GraphRequestAdapter(auth, client=GraphClientFactory.create_with_default_middleware(client=http, options=graph_options))
        adapter.base_url = f"{server['url']}/v1.0"
        try:
            return await work(GraphServiceClient(request_adapter=adapter).admin.configuration_management)
        finally:
            await http.aclose()
            await credential.close()

    return asyncio.run(run())


def fresh_graph(server, tenant: Tenant) -> Graph:
    """Plain HTTP with a token issued now (by the server's clock)."""
    tessera: Tessera = server["tessera"]
    r = tessera.request_token(tenant.tenant_id, tenant.client_id, tenant.client_secret)
    assert r.status_code == 200, r.text
    return Graph(tessera, r.json()["access_token"])


def wait_for(predicate, what: str, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_monitor_reports_drift_and_its_fix(server):
    from msgraph.generated.models.baseline_resource import BaselineResource
    from msgraph.generated.models.configuration_baseline import ConfigurationBaseline
    from msgraph.generated.models.configuration_monitor import ConfigurationMonitor
    from msgraph.generated.models.drift_status import DriftStatus
    from msgraph.generated.models.open_complex_dictionary_type import OpenComplexDictionaryType

    app = monitoring_app(server)
    plain = fresh_graph(server, app)
    policy = plain.ok("POST", "identity/conditionalAccess/policies", 201, json={
        "displayName": "Require MFA for admins", "state": "enabledForReportingButNotEnforced",
        "conditions": {"users": {"includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]},
                       "applications": {"includeApplications": ["All"]}, "clientAppTypes": ["all"]},
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]}})

    async def create(cm):
        created = await cm.configuration_monitors.post(ConfigurationMonitor(
            display_name="Demo Monitor", description="Conditional Access and passkeys",
            baseline=ConfigurationBaseline(display_name="Demo Baseline", resources=[
                BaselineResource(display_name="Admin MFA policy", resource_type="microsoft.entra.conditionalAccessPolicy",
                                 properties=OpenComplexDictionaryType(additional_data={
                                     "DisplayName": "Require MFA for admins", "State": "enabledForReportingButNotEnforced",
                                     "BuiltInControls": ["mfa"], "Ensure": "Present"})),
                BaselineResource(display_name="Passkeys", resource_type="microsoft.entra.authenticationMethodPolicyFido2",
                                 properties=OpenComplexDictionaryType(additional_data={"Id": "Fido2", "IsSelfServiceRegistrationAllowed": True})),
            ])))
        assert created.id and created.monitor_run_frequency_in_hours == 6 and created.status.value == "active"
        baseline = await cm.configuration_monitors.by_configuration_monitor_id(created.id).baseline.get()
        assert [r.resource_type for r in baseline.resources] == ["microsoft.entra.conditionalaccesspolicy",
                                                                 "microsoft.entra.authenticationmethodpolicyfido2"]
        return created.id

    async def results(cm):
        return (await cm.configuration_monitoring_results.get()).value

    async def drifts(cm):
        return (await cm.configuration_drifts.get()).value

    monitor_id = with_sdk(server, app, create)
    # Nothing runs before the next six-hour slot.
    assert with_sdk(server, app, results) == []

    # Both resources drift: the policy is turned off and self-service passkey registration is closed.
    plain.ok("PATCH", f"identity/conditionalAccess/policies/{policy['id']}", 204, json={"state": "disabled"})
    plain.ok("PATCH", FIDO2, 204, json={"@odata.type": "#microsoft.graph.fido2AuthenticationMethodConfiguration",
                                        "isSelfServiceRegistrationAllowed": False})
    move_to_next_slot(server)
    wait_for(lambda: with_sdk(server, app, results), "the monitor's first run")
    found = with_sdk(server, app, drifts)
    assert {d.resource_type for d in found} == {"microsoft.entra.conditionalaccesspolicy", "microsoft.entra.authenticationmethodpolicyfido2"}
    assert all(d.status == DriftStatus.Active and d.monitor_id == monitor_id for d in found)
    by_type = {d.resource_type: d for d in found}
    policy_drift = by_type["microsoft.entra.conditionalaccesspolicy"]
    assert [(p.property_name, p.additional_data.get("currentValue"), p.additional_data.get("desiredValue"))
            for p in policy_drift.drifted_properties] == [("State", "disabled", "enabledForReportingButNotEnforced")]
    assert str(policy_drift.resource_instance_identifier.additional_data["Id"]) == policy["id"]
    passkeys = by_type["microsoft.entra.authenticationmethodpolicyfido2"].drifted_properties
    assert [(p.property_name, p.additional_data.get("currentValue")) for p in passkeys] == [("IsSelfServiceRegistrationAllowed", False)]

    # The policy is put back: at the next run its drift is fixed and the passkey drift stays.
    fresh_graph(server, app).ok("PATCH", f"identity/conditionalAccess/policies/{policy['id']}", 204,
                                json={"state": "enabledForReportingButNotEnforced"})
    move_to_next_slot(server)
    wait_for(lambda: len(with_sdk(server, app, results)) == 2, "the monitor's second run")
    after = {d.id: d for d in with_sdk(server, app, drifts)}
    assert after[policy_drift.id].status == DriftStatus.Fixed
    assert after[by_type["microsoft.entra.authenticationmethodpolicyfido2"].id].status == DriftStatus.Active
    assert [r.drifts_count for r in with_sdk(server, app, results)] == [2, 1]


def test_a_snapshot_job_and_its_snapshot(server):
    """createSnapshot over plain HTTP (msgraph-sdk 1.65 lacks the action), then the job and the snapshot through the SDK."""
    tessera: Tessera = server["tessera"]
    app = monitoring_app(server)
    plain = fresh_graph(server, app)
    job = plain.ok("POST", f"{ROOT}/configurationSnapshots/createSnapshot", 200, json={
        "displayName": "Snapshot Demo", "description": "This is Snapshot Description",
        "resources": ["microsoft.entra.conditionalaccesspolicy", "microsoft.entra.authenticationmethodpolicy"]})
    assert job["status"] == "notStarted" and job["completedDateTime"] == "0001-01-01T00:00:00Z"

    async def read_job(cm):
        return await cm.configuration_snapshot_jobs.by_configuration_snapshot_job_id(job["id"]).get()

    done = wait_for(lambda: (j := with_sdk(server, app, read_job)).status.value == "succeeded" and j, "the snapshot job")
    assert done.resource_location.startswith(f"{server['url']}/v1.0/{ROOT}/configurationSnapshots('")
    snapshot_id = done.resource_location.split("('")[1].rstrip("')")

    async def read_snapshot(cm):
        return await cm.configuration_snapshots.by_configuration_baseline_id(snapshot_id).get()

    snapshot = with_sdk(server, app, read_snapshot)
    assert snapshot.display_name == "Snapshot Demo"
    methods = [r for r in snapshot.resources if r.resource_type == "microsoft.entra.authenticationmethodpolicy"]
    assert methods and methods[0].properties.additional_data["PolicyMigrationState"] == "migrationComplete"
    # An unsupported resource type is Graph's 400, and no job is made.
    bad = plain.post(f"{ROOT}/configurationSnapshots/createSnapshot", json={"displayName": "S", "resources": ["microsoft.exchange.sharedmailbox"]})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("The resource type"), bad.text
    assert [j["id"] for j in plain.ok("GET", f"{ROOT}/configurationSnapshotJobs")["value"]] == [job["id"]]
    # The tenant's automation app was never granted ConfigurationMonitoring.*: refused.
    denied = fresh_graph(server, tessera.tenant_a).get(f"{ROOT}/configurationMonitors")
    assert denied.status_code == 403, denied.text
