"""Backup and Recovery through Microsoft Graph: the snapshots `tessera serve` takes each day (and at start, when
today's is missing), listed and read through the official Graph SDK's `client.directory.recovery`, and refused
as read-only through plain REST."""
from __future__ import annotations

import time


def _snapshots(graph) -> list[dict]:
    deadline = time.monotonic() + 30
    while True:
        r = graph.get("directory/recovery/snapshots")
        assert r.status_code == 200, r.text
        if r.json()["value"] or time.monotonic() > deadline:
            return r.json()["value"]
        time.sleep(0.5)  # the start-up snapshot runs beside the first requests


def test_the_daily_snapshot_is_listed_through_the_graph_sdk(sdk, graph):
    assert _snapshots(graph), "serve took no snapshot at start"
    page = sdk.run(sdk.client.directory.recovery.snapshots.get())
    assert page.value, "no snapshots through the SDK"
    newest = page.value[0]
    assert newest.id and newest.created_date_time is not None and newest.total_changed_objects >= 1
    one = sdk.run(sdk.client.directory.recovery.snapshots.by_snapshot_id(newest.id).get())
    assert one.id == newest.id and one.total_changed_objects == newest.total_changed_objects


def test_snapshots_are_read_only_and_tenant_scoped(graph, graph_b):
    mine = _snapshots(graph)
    theirs = _snapshots(graph_b)
    assert mine and theirs and {s["id"] for s in mine}.isdisjoint({s["id"] for s in theirs})
    # Another tenant's snapshot is not found here.
    other = graph.get(f"directory/recovery/snapshots/{theirs[0]['id']}")
    assert other.status_code == 404 and other.json()["error"]["code"] == "Request_ResourceNotFound", other.text
    # Nobody can create, change or delete a snapshot through the API.
    for method in ("POST", "PATCH", "DELETE"):
        path = "directory/recovery/snapshots" + ("" if method == "POST" else f"/{mine[0]['id']}")
        r = graph.request(method, path, json={})
        assert r.status_code == 405, (method, r.text)
    assert _snapshots(graph) == mine
