"""Cross-tenant synchronization between two Tessera deployments (issue 18), driven by the Microsoft Graph Python SDK.

The source is the first tenant of a second `tessera serve` (its own data folder, `--identity-provider-ca` = the interop
server's CA, so it can reach it over TLS); the target is tenant A of the interop server. Configured as Microsoft's
"Configure cross-tenant synchronization using Microsoft Graph" does it: the target allows inbound user synchronization
from the source (`identitySynchronization`) and automatic redemption; in the source, the configuration application
from the gallery template, an Azure2Azure job, its secrets (CompanyId = the target; for a target on another deployment,
BaseAddress and the SecretToken the target granted with `tessera sync cross-tenant grant`), groups assigned, start.
The target's users and groups are then read with the SDK; changes and removals arrive on the next run."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration

from support import Graph, Sdk, Session, Tenant, Tessera, first_start, unique

TEMPLATE = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"  # Microsoft's cross-tenant synchronization configuration template


def _binary() -> str:
    return os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parent.parent / ".build" / "debug" / "tessera")


def _db_args() -> list[str]:
    database = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
    return [] if database in ("", "sqlite") else ["--database", database]


@pytest.fixture(scope="module")
def source(tessera):
    """The second deployment (the source), reached at 127.0.0.1, with its first tenant's automation app."""
    with first_start(_binary(), "tessera-sync-source-", "--identity-provider-ca", tessera.ca) as server:
        base = f"https://127.0.0.1:{server['port']}"
        first = Tenant(server["tenant"], "", "", server["client"], server["secret"])
        domains = Tessera(base, server["ca"], first, first).graph(first).ok("GET", "domains")["value"]
        tenant = dataclasses.replace(first, domain=next(d["id"] for d in domains if d.get("isInitial") or d.get("isDefault")))
        deployment = Tessera(base, server["ca"], tenant, tenant)
        graph = deployment.graph(tenant)
        sdk = Sdk(deployment, tenant)
        try:
            yield {"tenant": tenant, "graph": graph, "sdk": sdk, "server": server}
        finally:
            sdk.close()


def _grant(tessera: Tessera, target: Tenant, source_tenant: str) -> str:
    """The credential the target tenant grants the source tenant (tessera sync cross-tenant grant on the target's data)."""
    data = Path(tessera.ca).parent.parent
    cmd = [_binary(), "sync", "cross-tenant", "grant", "--data", str(data), *_db_args(), "--tenant", target.tenant_id,
           "--source", source_tenant, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    granted = json.loads(p.stdout.strip().splitlines()[-1])
    assert granted["sourceTenantId"] == source_tenant and "." in granted["credential"]
    return granted["credential"]


def test_users_and_groups_sync_into_another_deployment(tessera, tenant_a, graph, sdk, source):
    from msgraph.generated.application_templates.item.instantiate.instantiate_post_request_body import InstantiatePostRequestBody
    from msgraph.generated.models.app_role_assignment import AppRoleAssignment
    from msgraph.generated.models.synchronization_job import SynchronizationJob
    from msgraph.generated.models.synchronization_job_restart_criteria import SynchronizationJobRestartCriteria
    from msgraph.generated.models.synchronization_job_restart_scope import SynchronizationJobRestartScope
    from msgraph.generated.models.synchronization_secret import SynchronizationSecret
    from msgraph.generated.models.synchronization_secret_key_string_value_pair import SynchronizationSecretKeyStringValuePair
    from msgraph.generated.models.synchronization_status_code import SynchronizationStatusCode
    from msgraph.generated.service_principals.item.synchronization.jobs.item.restart.restart_post_request_body import RestartPostRequestBody
    from msgraph.generated.service_principals.item.synchronization.secrets.secrets_put_request_body import SecretsPutRequestBody
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    src, src_graph, src_sdk = source["tenant"], source["graph"], source["sdk"]
    client = src_sdk.client

    # In the source: people in two security groups (and one user in neither).
    people = [src_graph.create_user(src.domain, unique("sync"), department="Sales") for _ in range(12)]
    outsider = src_graph.create_user(src.domain, unique("out"))
    groups = [src_graph.create_group(unique("team")) for _ in range(2)]
    for i, person in enumerate(people):
        src_graph.ok("POST", f"groups/{groups[i % 2]['id']}/members/$ref", 204,
                     json={"@odata.id": f"{src_graph.base}/directoryObjects/{person['id']}"})

    # The configuration application and its job, with the SDK.
    made = src_sdk.run(client.application_templates.by_application_template_id(TEMPLATE).instantiate.post(
        InstantiatePostRequestBody(display_name=f"To {tenant_a.domain}")))
    sp = made.service_principal
    assert sp.app_role_assignment_required is True and sp.app_roles and sp.app_roles[0].display_name == "msiam_access"
    sync = client.service_principals.by_service_principal_id(sp.id).synchronization
    job = src_sdk.run(sync.jobs.post(SynchronizationJob(template_id="Azure2Azure")))
    assert job.template_id == "Azure2Azure" and job.status.code == SynchronizationStatusCode.Paused
    jobs = sync.jobs.by_synchronization_job_id(job.id)
    for group in groups:
        src_sdk.run(client.service_principals.by_service_principal_id(sp.id).app_role_assigned_to.post(AppRoleAssignment(
            principal_id=group["id"], resource_id=sp.id, app_role_id=sp.app_roles[0].id)))

    def secrets(**pairs):
        src_sdk.run(sync.secrets.put(SecretsPutRequestBody(value=[
            SynchronizationSecretKeyStringValuePair(key=key, value=value) for key, value in pairs.items()])))

    # Without the target's consent to inbound sync (and without its credential) nothing arrives.
    credential = _grant(tessera, tenant_a, src.tenant_id)
    secrets(**{SynchronizationSecret.AuthenticationType: "SyncPolicy", SynchronizationSecret.CompanyId: tenant_a.tenant_id,
               SynchronizationSecret.BaseAddress: tessera.base_url, SynchronizationSecret.SecretToken: credential,
               SynchronizationSecret.SyncAll: "false"})
    graph.ok("POST", "policies/crossTenantAccessPolicy/partners", 201, json={"tenantId": src.tenant_id})
    src_sdk.run(jobs.start.post())
    refused = src_sdk.run(jobs.get())
    assert refused.status.code == SynchronizationStatusCode.Quarantine, refused.status
    assert refused.status.quarantine.error.code == "AzureDirectoryB2BManagementPolicyCheckFailure"
    suffix = f"_{src.domain}#EXT#@"
    params = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        filter=f"endswith(userPrincipalName, '{suffix}{tenant_a.domain}')", select=["id", "displayName", "userType", "userPrincipalName",
                                                                                   "externalUserState", "accountEnabled", "identities"],
        count=True, top=999)
    eventual = RequestConfiguration(query_parameters=params, headers={"ConsistencyLevel": "eventual"})
    assert not sdk.run(sdk.client.users.get(request_configuration=eventual)).value

    # The target allows it (Microsoft's steps 2 and 3); the next run brings everyone in scope.
    graph.ok("PUT", f"policies/crossTenantAccessPolicy/partners/{src.tenant_id}/identitySynchronization", 204,
             json={"displayName": "Source", "userSyncInbound": {"isSyncAllowed": True}})
    graph.ok("PATCH", f"policies/crossTenantAccessPolicy/partners/{src.tenant_id}", 204,
             json={"automaticUserConsentSettings": {"inboundAllowed": True}})
    src_sdk.run(jobs.restart.post(RestartPostRequestBody(criteria=SynchronizationJobRestartCriteria(
        reset_scope=SynchronizationJobRestartScope.Full))))
    ran = src_sdk.run(jobs.get())
    assert ran.status.code == SynchronizationStatusCode.Active and ran.status.last_execution.state == "Succeeded", ran.status

    arrived = {u.user_principal_name.split("_")[0]: u for u in sdk.run(sdk.client.users.get(request_configuration=eventual)).value}
    nick = lambda user: user["userPrincipalName"].split("@")[0]  # noqa: E731
    assert set(arrived) == {nick(p) for p in people}, sorted(arrived)
    first = arrived[nick(people[0])]
    assert first.user_type == "Member" and first.display_name == people[0]["displayName"]
    assert first.identities[0].issuer == f"https://127.0.0.1:{source['server']['port']}/{src.tenant_id}/v2.0"
    assert first.identities[0].issuer_assigned_id == people[0]["id"]
    target_groups = {g["displayName"]: g for g in graph.ok("GET", "groups", params={"$filter": f"startswith(displayName, 'team')"})["value"]}
    for i, group in enumerate(groups):
        synced = target_groups[group["displayName"]]
        members = {m["id"] for m in graph.ok("GET", f"groups/{synced['id']}/members")["value"]}
        assert members == {arrived[nick(p)].id for j, p in enumerate(people) if j % 2 == i}

    # At home: a rename, and a deletion; the next run brings both.
    src_graph.ok("PATCH", f"users/{people[1]['id']}", 204, json={"displayName": "Renamed at home"})
    src_graph.ok("DELETE", f"users/{people[2]['id']}", 204)
    src_sdk.run(jobs.restart.post(RestartPostRequestBody(criteria=SynchronizationJobRestartCriteria(
        reset_scope=SynchronizationJobRestartScope.Full))))
    after = {u.user_principal_name.split("_")[0]: u for u in sdk.run(sdk.client.users.get(request_configuration=eventual)).value}
    assert after[nick(people[1])].display_name == "Renamed at home"
    assert nick(people[2]) not in after and nick(outsider) not in after
    deleted = graph.ok("GET", "directory/deletedItems/microsoft.graph.user")["value"]
    assert arrived[nick(people[2])].id in {d["id"] for d in deleted}

    # The source's provisioning log says what each run did.
    logs = src_sdk.run(client.audit_logs.provisioning.get()).value
    assert any(entry.provisioning_action == "create" and entry.provisioning_status_info.status == "success" for entry in logs)
    assert any(entry.source_identity.id == people[2]["id"] and entry.provisioning_action == "delete" for entry in logs)
    assert any(getattr(entry.provisioning_status_info.error_information, "error_code", None) == "AzureDirectoryB2BManagementPolicyCheckFailure"
               for entry in logs)
