"""Country named locations, enforced at the token endpoint with MSAL's client credentials: the server loads Tor's geoip
files (Debian's tor-geoipdb, the IPFire Location database) with --country-database and trusts 127.0.0.1 as a reverse
proxy, so the test says where the client is with X-Forwarded-For: a policy blocking the Netherlands refuses the app
from RIPE NCC's own addresses and not from Google's, and includeUnknownCountriesAndRegions takes in a private address,
which no country holds (issue 14, named locations)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests

from support import client_behind_proxy, first_start, serve_on_a_free_port, start_serve, stop_serve

REPO = Path(__file__).resolve().parents[1]
BINARY = os.environ.get("TESSERA_BIN") or str(REPO / ".build" / "debug" / "tessera")
GRAPH = "https://graph.microsoft.com/.default"


def country_database() -> str:
    """Where scripts/test put Tor's geoip files (TESSERA_TEST_COUNTRY_DB), else Debian's tor-geoipdb, else the venv."""
    for candidate in (os.environ.get("TESSERA_TEST_COUNTRY_DB"), "/usr/share/tor", str(REPO / "interop/.venv/share/tor-geoipdb")):
        if candidate and Path(candidate, "geoip").is_file():
            return candidate
    raise AssertionError("no IP-to-country database: run scripts/test, which extracts Debian's tor-geoipdb")


@pytest.fixture(scope="module")
def server():
    with first_start(BINARY, "tessera-country-", "--trusted-proxy", "127.0.0.1", "--country-database", country_database()) as started:
        yield started




def refused(result: dict) -> bool:
    return result.get("error") == "invalid_grant" and 53003 in result.get("error_codes", [])


def test_the_server_says_which_database_it_loaded(server):
    line = next(l for l in server["printed"].splitlines() if "IP-to-country database loaded" in l)
    assert re.search(r"generated=2\d\d\d-\d\d-\d\dT", line), line
    assert int(re.search(r"ipv4Ranges=(\d+)", line).group(1)) > 100_000, line
    assert int(re.search(r"ipv6Ranges=(\d+)", line).group(1)) > 100_000, line


def test_a_policy_blocking_a_country_refuses_the_app_from_there(server):
    token = client_behind_proxy(server, "8.8.8.8").acquire_token_for_client(scopes=[GRAPH])
    assert "access_token" in token, token
    graph = requests.Session()
    graph.verify, graph.trust_env = server["ca"], False
    graph.headers["Authorization"] = f"Bearer {token['access_token']}"
    base = f"{server['url']}/v1.0"
    # As Microsoft's "Create namedLocation" example writes a countryNamedLocation.
    location = graph.post(f"{base}/identity/conditionalAccess/namedLocations", json={
        "@odata.type": "#microsoft.graph.countryNamedLocation", "displayName": "Named location with unknown countries and regions",
        "countriesAndRegions": ["NL"], "includeUnknownCountriesAndRegions": False})
    assert location.status_code == 201, location.text
    sp = graph.get(f"{base}/servicePrincipals", params={"$filter": f"appId eq '{server['client']}'"}).json()["value"][0]
    policy = graph.post(f"{base}/identity/conditionalAccess/policies", json={
        "displayName": "No automation from the Netherlands", "state": "enabled",
        "conditions": {"users": {"includeUsers": ["None"]}, "clientApplications": {"includeServicePrincipals": [sp["id"]]},
                       "applications": {"includeApplications": ["All"]},
                       "locations": {"includeLocations": [location.json()["id"]]}},
        "grantControls": {"operator": "OR", "builtInControls": ["block"]}})
    assert policy.status_code == 201, policy.text

    assert refused(client_behind_proxy(server, "193.0.0.10").acquire_token_for_client(scopes=[GRAPH]))  # RIPE NCC, NL
    assert refused(client_behind_proxy(server, "2001:67c:2e8::2").acquire_token_for_client(scopes=[GRAPH]))
    assert "access_token" in client_behind_proxy(server, "8.8.8.8").acquire_token_for_client(scopes=[GRAPH])  # Google, US
    # A private address is in no country: outside the location until it includes unknown countries and regions.
    assert "access_token" in client_behind_proxy(server, "192.168.7.7").acquire_token_for_client(scopes=[GRAPH])
    patched = graph.patch(f"{base}/identity/conditionalAccess/namedLocations/{location.json()['id']}", json={
        "@odata.type": "#microsoft.graph.countryNamedLocation", "includeUnknownCountriesAndRegions": True})
    assert patched.status_code == 204, patched.text
    assert refused(client_behind_proxy(server, "192.168.7.7").acquire_token_for_client(scopes=[GRAPH]))
    assert "access_token" in client_behind_proxy(server, "8.8.4.4").acquire_token_for_client(scopes=[GRAPH])


def test_a_database_that_cannot_be_read_stops_the_server_at_start(tmp_path):
    bad = tmp_path / "geoip"
    bad.write_text("# Generated: Thu, 25 Jun 2026 04:33:59 GMT\n16777216,16777471,AU\n8.8.8.0,8.8.8.255\n")
    with pytest.raises(AssertionError) as stopped:
        start_serve([BINARY, "serve", "--data", str(tmp_path / "data"), "--port", "1", "--country-database", str(bad)])
    assert f"--country-database: line 3 of {bad}: expected FIRST,LAST,CC" in str(stopped.value)


def test_a_database_more_than_a_year_old_is_loaded_with_a_warning(tmp_path):
    old = tmp_path / "geoip"
    old.write_text("# Generated: Thu, 01 Jan 2015 00:00:00 GMT\n134744064,134744319,US\n")
    proc, printed, _ = serve_on_a_free_port(lambda port: [
        BINARY, "serve", "--data", str(tmp_path / "data"), "--port", str(port), "--country-database", str(old)])
    try:
        assert "generated=2015-01-01T00:00:00Z ipv4Ranges=1 ipv6Ranges=0" in printed, printed
        assert "The IP-to-country database is more than a year old" in printed, printed
    finally:
        stop_serve(proc)
