"""Hybrid join through Kerberos against the real Samba AD DC (scripts/ad-up; TESSERA_TEST_AD_ENV names its env file):
`tessera hybrid kerberos enable` makes the service account and SCP through a sync connector; a computer account made
with samba-tool takes a TGT from its keytab with MIT's `kinit -k` and registers with `curl --negotiate` (and with a
SPNEGO token from MIT's GSSAPI through Debian's python3-gssapi); the device is in Graph at once with trustType ServerAd.
Each refusal Entra names is reproduced with real tickets: a ticket for another SPN, the old key after a rotation's grace
period, a replayed authenticator, a computer disabled in AD after it took its ticket, and an expired ticket."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from support import serve_on_a_free_port

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's python3-gssapi (MIT GSSAPI) lives there, not in the venv

GSS_TOKEN = r"""
import base64, sys
import gssapi
name = gssapi.Name(sys.argv[1], gssapi.NameType.hostbased_service)
spnego = gssapi.OID.from_int_seq("1.3.6.1.5.5.2")
flags = gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.out_of_sequence_detection
print(base64.b64encode(gssapi.SecurityContext(name=name, usage="initiate", mech=spnego, flags=flags).step()).decode())
"""


def _ad_env() -> dict:
    path = os.environ.get("TESSERA_TEST_AD_ENV")
    assert path and os.path.exists(path), "no domain controller: run scripts/test, or scripts/ad-up DIR and set TESSERA_TEST_AD_ENV=DIR/env"
    env = {}
    for line in Path(path).read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'")
    return env


class Computer:
    """A domain computer made with samba-tool, with its keytab and a credential cache of its own."""

    def __init__(self, world: "World", name: str):
        self.world, self.name = world, name
        self.folder = world.data / name
        self.folder.mkdir()
        world.samba("computer", "create", name)
        world.samba("user", "setpassword", f"{name}$", f"--newpassword=Aa1!{uuid.uuid4().hex}")
        world.samba("user", "enable", f"{name}$")
        self.keytab = self.folder / "keytab"
        world.samba("domain", "exportkeytab", str(self.keytab), f"--principal={name}$")
        self.env = {**os.environ, "KRB5_CONFIG": str(world.krb5_conf), "KRB5CCNAME": f"FILE:{self.folder / 'ccache'}",
                    "KRB5RCACHENAME": "none:"}
        run = subprocess.run(["kinit", "-k", "-t", str(self.keytab), f"{name}$@{world.realm}"], env=self.env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr

    def token(self, host: str | None = None) -> str:
        """A fresh SPNEGO token (a new authenticator) for adrs/<host> from MIT's GSSAPI."""
        run = subprocess.run([SYSTEM_PYTHON, "-c", GSS_TOKEN, f"adrs@{host or self.world.host}"], env=self.env,
                             capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    def curl_register(self) -> tuple[int, dict]:
        """The whole registration in one `curl --negotiate` call: 401 with `WWW-Authenticate: Negotiate`, then the
        ticket, as curl does it for any SPNEGO-protected URL."""
        w = self.world
        body = self.folder / "join.json"
        body.write_text(json.dumps(join_body(self.name)))
        run = subprocess.run(["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--negotiate", "-u", ":", "--service-name", "adrs",
                              "--resolve", f"{w.host}:{w.port}:127.0.0.1", "-H", "Content-Type: application/json",
                              "--data-binary", f"@{body}", f"http://{w.host}:{w.port}/EnrollmentServer/{w.tenant['tenantId']}/device"],
                             env=self.env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        text, _, status = run.stdout.rpartition("\n")
        return int(status), json.loads(text)

    def join(self, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
        """`tessera device join` with this computer's keytab (no credential cache: it takes its own ticket)."""
        w = self.world
        out = self.folder / "device"
        env = {key: value for key, value in self.env.items() if key != "KRB5CCNAME"}
        run = subprocess.run([BINARY, "device", "join", "--server", f"http://{w.host}:{w.port}", "--tenant", w.tenant["tenantId"],
                              "--keytab", str(self.keytab), "--address", "127.0.0.1", "--out", str(out), "--json", *extra],
                             env=env, capture_output=True, text=True, timeout=120)
        return run, out

    def delete(self):
        self.world.samba("computer", "delete", self.name, check=False)


def join_body(name: str, key: ec.EllipticCurvePrivateKey | None = None) -> dict:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])) \
        .sign(key, hashes.SHA256())
    return {"CertificateRequest": {"Type": "pkcs10", "Data": base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()},
            "DeviceDisplayName": name, "DeviceType": "Windows", "OSVersion": "10.0.26100.6584", "JoinType": 4}


class World:
    """A Tessera serving over HTTP on a host name of its own, a tenant with a connector to the DC, and a private
    krb5.conf pointing at the DC's KDC."""

    def __init__(self, test_clock: bool = True):
        """`test_clock`: serve with the test clock (an offset file), which only a debug build has; benchmarks run a
        release build without it."""
        self.ad = _ad_env()
        self.realm = self.ad["AD_REALM"]
        self.data = Path(tempfile.mkdtemp(prefix="tessera-hybrid-"))
        self.host = f"drs-{uuid.uuid4().hex[:6]}.corp.example.test"
        self.clock = self.data / "clock-offset"
        self.clock.write_text("0")
        created = subprocess.run([BINARY, "tenant", "create", "--data", str(self.data), "--name", "Contoso", "--domain", "contoso.test", "--json"],
                                 capture_output=True, text=True, timeout=120, check=True)
        self.tenant = json.loads(created.stdout)
        self.proc, _, self.port = serve_on_a_free_port(
            lambda port: [BINARY, "serve", "--http", "--data", str(self.data), "--port", str(port), "--sync-interval", "0",
                          "--public-url", f"http://127.0.0.1:{port}", "--public-url", f"http://{self.host}:{port}",
                          *(["--test-clock-offset-file", str(self.clock)] if test_clock else [])])
        threading.Thread(target=lambda p=self.proc: [None for _ in p.stdout], daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"
        password = self.data / "bind.pw"
        password.write_text(self.ad["AD_BIND_PASSWORD"])
        password.chmod(0o600)
        self.tessera("sync", "connector", "add", "--name", "corp", "--ldap-url", self.ad["AD_LDAPS_URI"], "--bind-dn", self.ad["AD_BIND_DN"],
                     "--bind-password-file", str(password), "--base-dn", f"CN=Computers,{self.ad['AD_BASE_DN']}",
                     "--ca-file", self.ad["AD_CA_FILE"])
        kdc = self.ad["AD_LDAP_URI"].removeprefix("ldap://")
        self.krb5_conf = self.data / "krb5.conf"
        self.krb5_conf.write_text(f"""[libdefaults]
    default_realm = {self.realm}
    dns_lookup_realm = false
    dns_lookup_kdc = false
    rdns = false
    dns_canonicalize_hostname = false
    udp_preference_limit = 1
[realms]
    {self.realm} = {{
        kdc = {kdc}:88
    }}
[domain_realm]
    .corp.example.test = {self.realm}
""")
        self.computers: list[Computer] = []
        self.extra_accounts: list[str] = []

    def samba(self, *args: str, check: bool = True) -> str:
        run = subprocess.run(["samba-tool", *args, "-s", self.ad["AD_CONF"]], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0 or not check, (args, run.stderr[-2000:])
        return run.stdout

    def tessera(self, *args: str, expect: int = 0) -> dict:
        run = subprocess.run([BINARY, *args, "--data", str(self.data), "--json"], capture_output=True, text=True, timeout=300)
        assert run.returncode == expect, (args, run.stdout[-2000:], run.stderr[-2000:])
        return json.loads(run.stdout) if run.stdout.strip() else {}

    def computer(self) -> Computer:
        computer = Computer(self, f"WS{uuid.uuid4().hex[:6].upper()}")
        self.computers.append(computer)
        return computer

    def token(self) -> str:
        return requests.post(f"{self.url}/{self.tenant['tenantId']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": self.tenant["clientId"], "client_secret": self.tenant["clientSecret"],
            "scope": "https://graph.microsoft.com/.default"}, timeout=60).json()["access_token"]

    def graph(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, f"{self.url}/v1.0/{path}", headers={"Authorization": f"Bearer {self.token()}"}, timeout=60, **kw)

    def devices(self) -> list[dict]:
        r = self.graph("GET", "devices")
        assert r.status_code == 200, r.text
        return r.json()["value"]

    def drs(self, step: str, negotiate: str | None = None, bearer: str | None = None, body: dict | None = None) -> requests.Response:
        headers = {"Host": f"{self.host}:{self.port}"}
        if negotiate:
            headers["Authorization"] = f"Negotiate {negotiate}"
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return requests.post(f"{self.url}/EnrollmentServer/{self.tenant['tenantId']}/{step}", headers=headers, json=body, timeout=60)

    def close(self):
        try:
            for computer in self.computers:
                computer.delete()
            for account in self.extra_accounts:
                self.samba("user", "delete", account, check=False)
            subprocess.run([BINARY, "hybrid", "kerberos", "disable", "--connector", "corp", "--data", str(self.data)],
                           capture_output=True, text=True, timeout=120)
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            shutil.rmtree(self.data, ignore_errors=True)


@pytest.fixture(scope="module")
def world():
    w = World()
    try:
        enabled = w.tessera("hybrid", "kerberos", "enable", "--connector", "corp", "--host", w.host,
                            "--public-url", f"http://{w.host}:{w.port}")
        assert enabled["servicePrincipalName"] == f"adrs/{w.host}" and enabled["domain"] == w.realm
        yield w
    finally:
        w.close()


def refused(response: requests.Response, code: str) -> dict:
    assert response.status_code == 401, response.text
    assert response.headers.get("WWW-Authenticate") == "Negotiate"
    error = response.json()["error"]
    assert error["code"] == code and error["message"].startswith(code), error
    return error


def test_status_compares_the_key_versions_in_ad_and_in_tessera(world):
    status = world.tessera("hybrid", "kerberos", "status", "--connector", "corp")
    assert status["inSync"] and status["directoryKeyVersion"] == status["cloudKeyVersion"] and status["scpPresent"]
    scp = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", world.ad["AD_LDAP_URI"], "-D", world.ad["AD_BIND_DN"], "-w",
                          world.ad["AD_BIND_PASSWORD"], "-b", status["serviceConnectionPoint"], "-s", "base", "keywords"],
                         capture_output=True, text=True, timeout=60)
    assert f"keywords: azureADId:{world.tenant['tenantId']}" in scp.stdout and "keywords: azureADName:contoso.test" in scp.stdout


def test_a_computer_joins_with_kinit_and_curl_negotiate_and_is_a_hybrid_joined_device_at_once(world):
    computer = world.computer()
    status, joined = computer.curl_register()
    assert status == 200, joined
    certificate = x509.load_der_x509_certificate(base64.b64decode(joined["Certificate"]["RawBody"]))
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == joined["DeviceId"]
    devices = [d for d in world.devices() if d["deviceId"] == joined["DeviceId"]]
    assert len(devices) == 1, world.devices()
    device = devices[0]
    assert device["trustType"] == "ServerAd" and device["profileType"] == "RegisteredDevice" and device["accountEnabled"]
    assert device["displayName"] == computer.name
    sid = world.samba("computer", "show", computer.name, "--attributes=objectSid").split("objectSid: ")[1].split()[0]
    assert device["onPremisesSecurityIdentifier"] == sid
    guid = world.samba("computer", "show", computer.name, "--attributes=objectGUID").split("objectGUID: ")[1].split()[0]
    assert device["deviceId"] == guid, "the computer's objectGUID, as sync names its device"
    assert device["alternativeSecurityIds"][0]["type"] == 2
    key = base64.b64decode(device["alternativeSecurityIds"][0]["key"]).decode("utf-16-le")
    assert key.startswith("X509:<SHA1-TP-PUBKEY>" + joined["Certificate"]["Thumbprint"])
    listed = world.graph("GET", "devices", params={"$filter": "trustType eq 'ServerAd'"}).json()["value"]
    assert joined["DeviceId"] in [d["deviceId"] for d in listed]
    # The next sync brings the same computer: it joins this device (same object, now synced), no second one.
    world.tessera("sync", "run", "--connector", "corp")
    after = [d for d in world.devices() if d["onPremisesSecurityIdentifier"] == sid]
    assert [d["id"] for d in after] == [device["id"]], after
    synced = world.graph("GET", f"devices/{device['id']}?$select=onPremisesSyncEnabled,trustType,alternativeSecurityIds").json()
    assert synced["onPremisesSyncEnabled"] is True and synced["trustType"] == "ServerAd"
    assert synced["alternativeSecurityIds"] == device["alternativeSecurityIds"]


def test_tessera_device_join_registers_with_the_keytab_and_writes_the_certificate_and_key(world):
    computer = world.computer()
    run, out = computer.join()
    assert run.returncode == 0, run.stderr
    joined = json.loads(run.stdout)
    device = [d for d in world.devices() if d["deviceId"] == joined["deviceId"]]
    assert len(device) == 1 and device[0]["trustType"] == "ServerAd" and device[0]["displayName"] == computer.name, device
    assert device[0]["operatingSystem"] == "Linux"
    key = serialization.load_pem_private_key((out / "device-key.pem").read_bytes(), password=None)
    certificate = x509.load_pem_x509_certificate((out / "device.pem").read_bytes())
    assert certificate.public_key().public_numbers() == key.public_key().public_numbers()
    assert certificate.fingerprint(hashes.SHA1()).hex().upper() == joined["thumbprint"]
    assert (out / "device-key.pem").stat().st_mode & 0o777 == 0o600
    # With the principal named, and again: the same computer keeps its one device.
    again, _ = computer.join("--principal", f"{computer.name}$@{world.realm}")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["deviceId"] == joined["deviceId"]
    assert len([d for d in world.devices() if d["deviceId"] == joined["deviceId"]]) == 1


def test_tessera_device_join_reports_the_refusal_of_a_disabled_computer(world):
    computer = world.computer()
    world.samba("user", "disable", f"{computer.name}$")
    run, out = computer.join()
    assert run.returncode != 0 and not out.exists()
    # The KDC itself refuses a disabled account its initial ticket, before Tessera is asked.
    assert "revoked" in run.stderr.lower(), run.stderr


def test_exchange_for_jwt_then_register_and_a_replayed_ticket_is_refused(world):
    computer = world.computer()
    token = computer.token()
    exchanged = world.drs("ExchangeForJwt", negotiate=token)
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.headers["WWW-Authenticate"].startswith("Negotiate ")
    before = len(world.devices())
    refused(world.drs("ExchangeForJwt", negotiate=token), "KRB_AP_ERR_REPEAT")
    assert len(world.devices()) == before
    registered = world.drs("device", bearer=exchanged.json()["access_token"], body=join_body(computer.name))
    assert registered.status_code == 200, registered.text
    assert len(world.devices()) == before + 1


def test_a_ticket_for_another_spn_is_target_unknown(world):
    account = f"drs-other-{uuid.uuid4().hex[:4]}"
    other = f"{account}.corp.example.test"
    world.samba("user", "create", account, f"Aa1!{uuid.uuid4().hex}")
    world.extra_accounts.append(account)
    world.samba("spn", "add", f"adrs/{other}", account)
    computer = world.computer()
    before = len(world.devices())
    refused(world.drs("device", negotiate=computer.token(other), body=join_body(computer.name)), "SEC_E_TARGET_UNKNOWN")
    refused(world.drs("device", body=join_body(computer.name)), "DSREG_TOKEN_MISSING_ON_PREM_ID")
    assert len(world.devices()) == before


def test_a_computer_disabled_after_it_took_its_ticket_is_refused(world):
    computer = world.computer()
    token = computer.token()
    world.samba("user", "disable", f"{computer.name}$")
    before = len(world.devices())
    error = refused(world.drs("device", negotiate=token, body=join_body(computer.name)), "SEC_E_LOGON_DENIED")
    assert "disabled" in error["message"]
    assert len(world.devices()) == before


def test_an_expired_ticket_is_refused(world):
    computer = world.computer()
    token = computer.token()
    world.clock.write_text(str(11 * 3600))  # past the 10-hour ticket lifetime
    try:
        import time
        time.sleep(0.3)
        refused(world.drs("device", negotiate=token, body=join_body(computer.name)), "SEC_E_CONTEXT_EXPIRED")
    finally:
        world.clock.write_text("0")
        time.sleep(0.3)


def test_the_old_key_works_during_the_grace_period_and_not_after(world):
    computer = world.computer()
    computer.token()  # the service ticket for the current key version is now in the computer's cache
    rotated = world.tessera("hybrid", "kerberos", "rotate", "--connector", "corp", "--grace-hours", "1")
    assert len(rotated["keyVersions"]) == 2
    status = world.tessera("hybrid", "kerberos", "status", "--connector", "corp")
    assert status["inSync"] and status["cloudKeyVersion"] == rotated["keyVersion"]
    # The cached ticket (previous key version) still registers within the grace period…
    registered = world.drs("device", negotiate=computer.token(), body=join_body(computer.name))
    assert registered.status_code == 200, registered.text
    # …and not after it.
    world.clock.write_text(str(3600 + 60))
    try:
        import time
        time.sleep(0.3)
        refused(world.drs("device", negotiate=computer.token(), body=join_body(computer.name)), "SEC_E_LOGON_DENIED")
    finally:
        world.clock.write_text("0")
        time.sleep(0.3)
    # A computer that asks its KDC now gets a ticket for the new key, which registers.
    fresh = world.computer()
    registered = world.drs("device", negotiate=fresh.token(), body=join_body(fresh.name))
    assert registered.status_code == 200, registered.text


def test_the_joined_device_signs_in_as_itself_until_it_is_disabled_or_deleted(world):
    """The files `tessera device join` wrote are the device's credential: an ES256 assertion signed by device-key.pem with
    device.pem in x5c buys a token carrying the device's id (RFC 7523's JWT bearer grant); disabling or deleting the
    device in Graph refuses the next one at once."""
    import time

    import jwt as pyjwt

    computer = world.computer()
    run, out = computer.join()
    assert run.returncode == 0, run.stderr
    record = json.loads((out / "device.json").read_text())
    key = serialization.load_pem_private_key((out / "device-key.pem").read_bytes(), password=None)
    der = x509.load_pem_x509_certificate((out / "device.pem").read_bytes()).public_bytes(serialization.Encoding.DER)
    endpoint = f"{world.url}/{record['tenantId']}/oauth2/v2.0/token"

    def sign_in() -> requests.Response:
        now = int(time.time())
        assertion = pyjwt.encode({"iss": record["deviceId"], "sub": record["deviceId"], "aud": endpoint, "iat": now, "exp": now + 300,
                                  "jti": str(uuid.uuid4())}, key, algorithm="ES256",
                                 headers={"x5c": [base64.b64encode(der).decode()]})
        return requests.post(endpoint, data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion,
                                             "scope": "https://graph.microsoft.com/.default"}, timeout=60)

    signed_in = sign_in()
    assert signed_in.status_code == 200, signed_in.text
    claims = pyjwt.decode(signed_in.json()["access_token"], options={"verify_signature": False})
    device = [d for d in world.devices() if d["deviceId"] == record["deviceId"]][0]
    assert claims["deviceid"] == record["deviceId"] and claims["oid"] == device["id"] and claims["idtyp"] == "device", claims

    assert world.graph("PATCH", f"devices/{device['id']}", json={"accountEnabled": False}).status_code == 204
    disabled = sign_in()
    assert disabled.status_code == 400 and disabled.json()["error_codes"] == [135011], disabled.text
    assert world.graph("PATCH", f"devices/{device['id']}", json={"accountEnabled": True}).status_code == 204
    assert sign_in().status_code == 200

    assert world.graph("DELETE", f"devices/{device['id']}").status_code == 204
    deleted = sign_in()
    assert deleted.status_code == 400 and deleted.json()["error_codes"] == [700003], deleted.text
