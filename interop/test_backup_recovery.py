"""Difference reports and recovery jobs through Microsoft Graph, on a Tessera of its own (so the test can kill it):
a recovery interrupted by SIGKILL is taken up again when the server starts, and finishes; the Graph SDK creates
and reads the jobs."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from support import serve_on_a_free_port

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
PREVIEW = "#microsoft.graph.entraRecoveryServices.recoveryPreviewJob"
RECOVERY = "#microsoft.graph.entraRecoveryServices.recoveryJob"


class Server:
    def __init__(self):
        self.data = Path(tempfile.mkdtemp(prefix="tessera-recovery-"))
        self.url = ""
        self.proc = None
        self.printed = ""

    def start(self):
        # A free port at each start: a restart need not get the old one back.
        self.proc, printed, port = serve_on_a_free_port(lambda port: [BINARY, "serve", "--http", "--data", str(self.data), "--port", str(port)])
        self.url = f"http://localhost:{port}"
        self.printed += printed
        # Keep reading its output so it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stdout], daemon=True).start()

    def field(self, name: str) -> str:
        return re.search(rf"{name}:\s+(\S+)", self.printed).group(1)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def server():
    s = Server()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def token(server) -> str:
    return requests.post(f"{server.url}/{server.field('tenant id')}/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": server.field("client id"), "client_secret": server.field("client secret"),
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]


def graph(server, method, path, **kw):
    return requests.request(method, f"{server.url}/v1.0/{path}", headers={"Authorization": f"Bearer {token(server)}"}, **kw)


def wait_for(server, job_id, statuses=("successful", "failed", "abandoned"), timeout=120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = graph(server, "GET", f"directory/recovery/jobs/{job_id}").json()
        if job.get("status") in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {statuses}")


def snapshot_now(server) -> dict:
    run = subprocess.run([BINARY, "backup", "snapshot", "--now", "--data", str(server.data), "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    import json
    return json.loads(run.stdout)[0]


def test_a_difference_report_then_a_recovery_through_the_graph_sdk(server):
    import asyncio

    from msgraph.generated.models.entra_recovery_services.recovery_job_entity_names_filter import RecoveryJobEntityNamesFilter
    from msgraph.generated.models.entra_recovery_services.recovery_preview_job import RecoveryPreviewJob
    from msgraph.generated.models.entra_recovery_services.resource_type_name import ResourceTypeName
    import datetime

    domain = server.field("administrator").split("@")[1]
    nick = "rec1"
    user = graph(server, "POST", "users", json={"accountEnabled": True, "displayName": "Rec One", "mailNickname": nick, "jobTitle": "Analyst",
                                                "userPrincipalName": f"{nick}@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}}).json()
    snapshot = snapshot_now(server)
    assert graph(server, "PATCH", f"users/{user['id']}", json={"jobTitle": "Director"}).status_code == 204

    client = _sdk_client(server)

    async def preview():
        body = RecoveryPreviewJob(odata_type=PREVIEW, target_state_date_time=datetime.datetime.fromisoformat(snapshot["createdDateTime"].replace("Z", "+00:00")),
                                  filtering_criteria=RecoveryJobEntityNamesFilter(odata_type="#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter",
                                                                                  entity_types=[ResourceTypeName.User]))
        return await client.directory.recovery.jobs.post(body)

    created = asyncio.run(preview())
    assert created.id and created.status.value in ("calculating", "successful")
    done = wait_for(server, created.id)
    assert done["status"] == "successful" and done["totalChangedObjectsCalculated"] >= 1
    changes = graph(server, "GET", f"directory/recovery/jobs/{created.id}/microsoft.graph.entraRecoveryServices.getChanges()").json()["value"]
    mine = next(c for c in changes if c["id"] == user["id"])
    assert mine["recoveryAction"] == "update" and mine["entityTypeName"] == "user"
    assert {"name": "jobTitle", "oldValue": "Analyst", "newValue": "Director"} in mine["changedProperties"]
    # Only one job at a time per tenant is the rule; a finished one does not count.
    job = graph(server, "POST", "directory/recovery/jobs", json={
        "@odata.type": RECOVERY, "targetStateDateTime": snapshot["createdDateTime"],
        "filteringCriteria": {"@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNameAndIdsFilter",
                              "filterValues": [{"entityType": "user", "entityIds": [user["id"]]}]}})
    assert job.status_code == 201, job.text
    finished = wait_for(server, job.json()["id"])
    assert finished["status"] == "successful" and finished["totalObjectsModified"] == 1 and finished["totalFailedChanges"] == 0
    assert graph(server, "GET", f"users/{user['id']}?$select=jobTitle").json()["jobTitle"] == "Analyst"
    # The change is in the audit log under the job.
    audits = graph(server, "GET", "auditLogs/directoryAudits").json()["value"]
    assert any(a["initiatedBy"].get("app", {}).get("displayName", "").startswith("Backup and Recovery job") for a in audits)
    # Bad input: a Graph error, nothing started.
    bad = graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": RECOVERY, "targetStateDateTime": "1999-01-01T00:00:00Z"})
    assert bad.status_code == 400 and "No snapshot" in bad.json()["error"]["message"]


def test_a_recovery_killed_mid_way_is_taken_up_at_restart_and_finishes(server):
    domain = server.field("administrator").split("@")[1]
    ids = []
    for i in range(400):
        r = graph(server, "POST", "users", json={"accountEnabled": True, "displayName": f"Bulk {i:04d}", "mailNickname": f"bulk{i}",
                                                 "userPrincipalName": f"bulk{i}@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    snapshot = snapshot_now(server)
    for user_id in ids:
        assert graph(server, "DELETE", f"users/{user_id}").status_code == 204
    job = graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": RECOVERY, "snapshotId": snapshot["id"]}).json()
    running = wait_for(server, job["id"], statuses=("running", "successful"))
    assert running["status"] == "running", "the recovery finished before it could be interrupted"
    # A second job while one runs is refused.
    second = graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": PREVIEW, "snapshotId": snapshot["id"]})
    assert second.status_code == 409, second.text
    server.kill()
    server.start()
    finished = wait_for(server, job["id"])
    assert finished["status"] == "successful" and finished.get("tesseraResumedDateTime"), finished
    restored = [graph(server, "GET", f"users/{user_id}?$select=id").status_code for user_id in ids]
    assert restored.count(200) == len(ids)
    # Nothing is left to recover, and every snapshot is still sound.
    report = graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": PREVIEW, "snapshotId": snapshot["id"],
                                                                    "filteringCriteria": {"@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter", "entityTypes": ["user"]}}).json()
    assert wait_for(server, report["id"])["totalChangedObjectsCalculated"] == 0
    verify = subprocess.run([BINARY, "backup", "verify", "--data", str(server.data)], capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0 and "sound" in verify.stdout, verify.stdout + verify.stderr


def test_the_command_line_previews_restores_and_exports(server):
    domain = server.field("administrator").split("@")[1]
    user = graph(server, "POST", "users", json={"accountEnabled": True, "displayName": "Cli One", "mailNickname": "cli1", "department": "Ops",
                                                "userPrincipalName": f"cli1@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}}).json()
    snapshot = snapshot_now(server)
    assert graph(server, "PATCH", f"users/{user['id']}", json={"department": "Sales"}).status_code == 204
    base = [BINARY, "backup", "restore", "--data", str(server.data), "--snapshot", snapshot["id"], "--type", "user", "--id", user["id"]]
    import json
    dry = subprocess.run(base + ["--dry-run", "--json"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert [c["id"] for c in planned] == [user["id"]]
    assert {"name": "department", "oldValue": "Ops", "newValue": "Sales"} in planned[0]["changedProperties"]
    assert graph(server, "GET", f"users/{user['id']}?$select=department").json()["department"] == "Sales"  # a dry run writes nothing
    done = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "1 applied, 0 failed" in done.stdout, done.stdout + done.stderr
    assert graph(server, "GET", f"users/{user['id']}?$select=department").json()["department"] == "Ops"
    out = server.data / "export.json"
    exported = subprocess.run([BINARY, "backup", "export", snapshot["id"], "--output", str(out), "--data", str(server.data)],
                              capture_output=True, text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(out.read_text())
    mine = next(o for o in document["objects"] if o["id"] == user["id"])
    assert mine["body"]["department"] == "Ops" and mine["kind"] == "user" and len(mine["sha256"]) == 64
    # A snapshot that does not exist is a clear error.
    missing = subprocess.run(base[:5] + ["--snapshot", "00000000-0000-0000-0000-000000000000"], capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "does not exist" in (missing.stdout + missing.stderr)


def test_backups_can_be_taken_out_of_the_tenants_plan(server):
    snapshot = snapshot_now(server)
    off = subprocess.run([BINARY, "backup", "disable", "--data", str(server.data)], capture_output=True, text=True, timeout=120)
    assert off.returncode == 0, off.stderr
    try:
        refused = graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": PREVIEW, "snapshotId": snapshot["id"]})
        assert refused.status_code == 403 and "not part of this tenant's plan" in refused.json()["error"]["message"], refused.text
        # What was taken stays readable.
        assert any(s["id"] == snapshot["id"] for s in graph(server, "GET", "directory/recovery/snapshots").json()["value"])
    finally:
        on = subprocess.run([BINARY, "backup", "enable", "--data", str(server.data)], capture_output=True, text=True, timeout=120)
        assert on.returncode == 0, on.stderr
    assert graph(server, "POST", "directory/recovery/jobs", json={"@odata.type": PREVIEW, "snapshotId": snapshot["id"]}).status_code == 201


def _sdk_client(server):
    from kiota_abstractions.authentication import AccessTokenProvider, AllowedHostsValidator, BaseBearerTokenAuthenticationProvider
    from kiota_http.httpx_request_adapter import HttpxRequestAdapter
    from msgraph import GraphServiceClient

    class Static(AccessTokenProvider):
        async def get_authorization_token(self, uri, additional_authentication_context=None):
            return token(server)

        def get_allowed_hosts_validator(self):
            return AllowedHostsValidator(["localhost"])

    adapter = HttpxRequestAdapter(BaseBearerTokenAuthenticationProvider(Static()))
    adapter.base_url = f"{server.url}/v1.0"
    return GraphServiceClient(request_adapter=adapter)


def test_conditional_access_policies_and_named_locations_come_back_through_the_graph_sdk(server):
    """The SDK writes a named location and a policy that uses it; someone weakens the policy to report-only and
    deletes a second location; a recovery job limited to those two types, started through the SDK, puts both back."""
    import asyncio

    from msgraph.generated.models.authentication_strength_policy import AuthenticationStrengthPolicy
    from msgraph.generated.models.conditional_access_applications import ConditionalAccessApplications
    from msgraph.generated.models.conditional_access_condition_set import ConditionalAccessConditionSet
    from msgraph.generated.models.conditional_access_grant_controls import ConditionalAccessGrantControls
    from msgraph.generated.models.conditional_access_locations import ConditionalAccessLocations
    from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
    from msgraph.generated.models.conditional_access_policy_state import ConditionalAccessPolicyState
    from msgraph.generated.models.conditional_access_users import ConditionalAccessUsers
    from msgraph.generated.models.country_named_location import CountryNamedLocation
    from msgraph.generated.models.entra_recovery_services.recovery_job import RecoveryJob
    from msgraph.generated.models.entra_recovery_services.recovery_job_entity_names_filter import RecoveryJobEntityNamesFilter
    from msgraph.generated.models.entra_recovery_services.resource_type_name import ResourceTypeName
    from msgraph.generated.models.i_pv4_cidr_range import IPv4CidrRange
    from msgraph.generated.models.ip_named_location import IpNamedLocation
    import datetime

    client = _sdk_client(server)
    ca = client.identity.conditional_access
    loop = asyncio.new_event_loop()  # one loop for the client's connection pool
    run = loop.run_until_complete

    async def setup():
        office = await ca.named_locations.post(IpNamedLocation(odata_type="#microsoft.graph.ipNamedLocation", display_name="Office",
                                                                ip_ranges=[IPv4CidrRange(odata_type="#microsoft.graph.iPv4CidrRange", cidr_address="192.0.2.0/24")],
                                                                is_trusted=True))
        nz = await ca.named_locations.post(CountryNamedLocation(odata_type="#microsoft.graph.countryNamedLocation", display_name="New Zealand",
                                                                 countries_and_regions=["NZ"]))
        policy = await ca.policies.post(ConditionalAccessPolicy(
            display_name="Phishing-resistant sign-in away from the office", state=ConditionalAccessPolicyState.Enabled,
            conditions=ConditionalAccessConditionSet(
                users=ConditionalAccessUsers(include_users=["All"]),
                applications=ConditionalAccessApplications(include_applications=["All"]),
                locations=ConditionalAccessLocations(include_locations=["All"], exclude_locations=[office.id])),
            grant_controls=ConditionalAccessGrantControls(operator="OR", authentication_strength=AuthenticationStrengthPolicy(id="00000000-0000-0000-0000-000000000004"))))
        return office, nz, policy

    office, nz, policy = run(setup())
    assert isinstance(office, IpNamedLocation) and office.ip_ranges[0].cidr_address == "192.0.2.0/24" and office.is_trusted
    assert isinstance(nz, CountryNamedLocation) and nz.countries_and_regions == ["NZ"]
    assert policy.id and policy.grant_controls.authentication_strength.id == "00000000-0000-0000-0000-000000000004"
    snapshot = snapshot_now(server)

    async def weaken():
        await ca.policies.by_conditional_access_policy_id(policy.id).patch(ConditionalAccessPolicy(state=ConditionalAccessPolicyState.EnabledForReportingButNotEnforced))
        await ca.named_locations.by_named_location_id(nz.id).delete()
        return await ca.policies.by_conditional_access_policy_id(policy.id).get(), await ca.named_locations.get()

    weakened, locations = run(weaken())
    assert weakened.state == ConditionalAccessPolicyState.EnabledForReportingButNotEnforced
    assert [l.id for l in locations.value] == [office.id]

    async def recover():
        return await client.directory.recovery.jobs.post(RecoveryJob(
            odata_type=RECOVERY, target_state_date_time=datetime.datetime.fromisoformat(snapshot["createdDateTime"].replace("Z", "+00:00")),
            filtering_criteria=RecoveryJobEntityNamesFilter(odata_type="#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter",
                                                            entity_types=[ResourceTypeName.ConditionalAccessPolicy, ResourceTypeName.NamedLocationPolicy])))

    job = run(recover())
    finished = wait_for(server, job.id)
    assert finished["status"] == "successful" and finished["totalObjectsModified"] == 2 and finished["totalFailedChanges"] == 0, finished

    async def read_back():
        return await ca.policies.by_conditional_access_policy_id(policy.id).get(), await ca.named_locations.by_named_location_id(nz.id).get()

    restored_policy, restored_nz = run(read_back())
    assert restored_policy.state == ConditionalAccessPolicyState.Enabled
    assert isinstance(restored_nz, CountryNamedLocation) and restored_nz.countries_and_regions == ["NZ"]
    # A bad policy is refused through the SDK with Graph's error.
    from kiota_abstractions.api_error import APIError
    try:
        run(ca.policies.post(ConditionalAccessPolicy(display_name="No one", state=ConditionalAccessPolicyState.Enabled,
                                                              conditions=ConditionalAccessConditionSet(applications=ConditionalAccessApplications(include_applications=["All"])),
                                                              grant_controls=ConditionalAccessGrantControls(operator="OR", built_in_controls=[]))))
        raise AssertionError("a policy without users was accepted")
    except APIError as error:
        assert error.response_status_code == 400
    loop.close()


def test_jobs_are_created_under_their_snapshot_as_microsoft_documents(server):
    """POST /directory/recovery/snapshots/{id}/recoveryPreviewJobs and …/recoveryJobs with the documentation's own
    request bodies (none at all; an entity-names filter): 202 Accepted and a Location naming the job, which the
    Graph SDK then reads with its own models."""
    import asyncio

    from msgraph.generated.models.entra_recovery_services.recovery_job import RecoveryJob
    from msgraph.generated.models.entra_recovery_services.recovery_status import RecoveryStatus
    from msgraph.generated.models.entra_recovery_services.recovery_preview_job import RecoveryPreviewJob

    domain = server.field("administrator").split("@")[1]
    user = graph(server, "POST", "users", json={"accountEnabled": True, "displayName": "Relo One", "mailNickname": "relo1", "jobTitle": "Analyst",
                                                "userPrincipalName": f"relo1@{domain}", "passwordProfile": {"password": "Xy!9Xy!9Xy!9"}}).json()
    snapshot = snapshot_now(server)
    assert graph(server, "PATCH", f"users/{user['id']}", json={"jobTitle": "Director"}).status_code == 204
    collection = f"{server.url}/v1.0/directory/recovery/snapshots/{snapshot['id']}"

    # Example 1 of "Create recoveryPreviewJob": no body.
    accepted = requests.post(f"{collection}/recoveryPreviewJobs", headers={"Authorization": f"Bearer {token(server)}"})
    assert accepted.status_code == 202, accepted.text
    location = accepted.headers["Location"]
    assert location.startswith(f"{collection}/recoveryPreviewJobs/"), location
    preview_id = location.rsplit("/", 1)[1]
    assert wait_for(server, preview_id)["status"] == "successful"
    client = _sdk_client(server)
    loop = asyncio.new_event_loop()  # one loop for the client's connection pool
    by_snapshot = client.directory.recovery.snapshots.by_snapshot_id(snapshot["id"])

    async def read_preview():
        return await by_snapshot.recovery_preview_jobs.by_recovery_preview_job_id(preview_id).get()

    preview = loop.run_until_complete(read_preview())
    assert isinstance(preview, RecoveryPreviewJob) and preview.id == preview_id and preview.status == RecoveryStatus.Successful
    assert preview.total_changed_objects_calculated >= 1

    # Example 2 of "Create recoveryJob": scoped to users.
    accepted = requests.post(f"{collection}/recoveryJobs", headers={"Authorization": f"Bearer {token(server)}"}, json={
        "filteringCriteria": {"@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNamesFilter", "entityTypes": ["user"]}})
    assert accepted.status_code == 202, accepted.text
    recovery_id = accepted.headers["Location"].rsplit("/", 1)[1]
    assert accepted.headers["Location"] == f"{collection}/recoveryJobs/{recovery_id}"
    assert wait_for(server, recovery_id)["status"] == "successful"

    async def read_recovery():
        return await by_snapshot.recovery_jobs.by_recovery_job_id(recovery_id).get()

    recovery = loop.run_until_complete(read_recovery())
    loop.close()
    assert isinstance(recovery, RecoveryJob) and recovery.status == RecoveryStatus.Successful and recovery.total_objects_modified >= 1
    assert graph(server, "GET", f"users/{user['id']}?$select=jobTitle").json()["jobTitle"] == "Analyst"
    # Bad input: Graph's error, and nothing started.
    before = len(graph(server, "GET", "directory/recovery/jobs").json()["value"])
    bad = requests.post(f"{collection}/recoveryJobs", headers={"Authorization": f"Bearer {token(server)}"}, json={"snapshotId": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "Request_BadRequest", bad.text
    assert len(graph(server, "GET", "directory/recovery/jobs").json()["value"]) == before
