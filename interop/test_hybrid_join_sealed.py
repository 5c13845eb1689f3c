"""Hybrid join with a key-encryption key (issue 22, keys at rest): `tessera hybrid kerberos enable` stores the service
account's keys encrypted with the key the command is given (here `$TESSERA_KEY_ENCRYPTION_KEY`, as serve takes it), the
server decrypts them to validate a domain computer's ticket and issues its certificate from the tenant's encrypted device
CA, `tessera keys list` says both are encrypted, and a command without the key, or with another, is refused. Needs the
domain controller of `scripts/ad-up`, as test_hybrid_join does."""
from __future__ import annotations

import base64
import os
import sqlite3
import subprocess

import test_hybrid_join as hybrid

BINARY = hybrid.BINARY


def test_the_service_keys_and_the_device_ca_are_stored_encrypted_and_a_computer_joins_with_them(monkeypatch):
    monkeypatch.setenv("TESSERA_KEY_ENCRYPTION_KEY", base64.b64encode(os.urandom(32)).decode())
    w = hybrid.World()
    try:
        enabled = w.tessera("hybrid", "kerberos", "enable", "--connector", "corp", "--host", w.host,
                            "--public-url", f"http://{w.host}:{w.port}")
        assert enabled["servicePrincipalName"] == f"adrs/{w.host}"
        # The server (started with the same key) validates the computer's ticket with the encrypted keys.
        computer = w.computer()
        status, joined = computer.curl_register()
        assert status == 200, joined
        assert any(d["deviceId"] == joined["DeviceId"] for d in w.devices())
        tenant = w.tenant["tenantId"]
        database = w.data / "tessera.sqlite"
        if database.exists():  # the raw rows, when the deployment is on SQLite
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                rows = dict(db.execute("SELECT key, value FROM settings WHERE tenant = ? AND key IN ('kerberosDomain', 'deviceCertificateAuthority')",
                                       (tenant,)).fetchall())
            assert set(rows) == {"kerberosDomain", "deviceCertificateAuthority"}, rows
            for value in rows.values():
                assert '"sealed"' in value and "aes256" not in value and "PRIVATE KEY" not in value and w.realm not in value, value[:80]
        listed = subprocess.run([BINARY, "keys", "list", "--data", str(w.data)], capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert f"encrypted\t{tenant}/kerberosDomain" in listed.stdout and f"encrypted\t{tenant}/deviceCertificateAuthority" in listed.stdout, listed.stdout
        # Without the key, or with another, the command is refused and says why.
        env = {k: v for k, v in os.environ.items() if k != "TESSERA_KEY_ENCRYPTION_KEY"}
        for extra in [{}, {"TESSERA_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode()}]:
            run = subprocess.run([BINARY, "hybrid", "kerberos", "status", "--connector", "corp", "--data", str(w.data)],
                                 capture_output=True, text=True, timeout=120, env={**env, **extra})
            assert run.returncode != 0 and ("the stored keys are encrypted" in run.stderr or "does not open the stored keys" in run.stderr), run
        assert w.tessera("hybrid", "kerberos", "status", "--connector", "corp")["inSync"]
    finally:
        w.close()
