"""Benchmark of device registrations through Kerberos, end to end (not a test: run it on purpose, with a release build
and the Samba DC):

    TESSERA_BIN=.build/release/tessera TESSERA_TEST_AD_ENV=/path/to/ad/env \
        interop/.venv/bin/python -m pytest interop/bench_devices.py -q -s -p no:timeout

The world of interop/test_hybrid_join.py (a tenant with hybrid join through Kerberos enabled against the DC, served over
HTTP on a host name of its own) and one computer made with samba-tool; `tessera bench devices` then sends registrations
with its keytab, each with a fresh SPNEGO token from MIT's GSSAPI and a new key's certificate request over its own
connection, one at a time and eight at once, and prints registrations per second."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from test_hybrid_join import BINARY, World

COUNT = int(os.environ.get("BENCH_COUNT", "300"))


@pytest.fixture(scope="module")
def world():
    w = World(test_clock=False)
    try:
        w.tessera("hybrid", "kerberos", "enable", "--connector", "corp", "--host", w.host, "--public-url", f"http://{w.host}:{w.port}")
        yield w
    finally:
        w.close()


def test_device_registrations_per_second(world):
    computer = world.computer()
    env = {key: value for key, value in computer.env.items() if key != "KRB5CCNAME"}
    rows = []
    for concurrency in (1, 8):
        run = subprocess.run([BINARY, "bench", "devices", "--server", f"http://{world.host}:{world.port}",
                              "--tenant", world.tenant["tenantId"], "--keytab", str(computer.keytab), "--address", "127.0.0.1",
                              "--count", str(COUNT), "--concurrency", str(concurrency)],
                             env=env, capture_output=True, text=True, timeout=1800)
        assert run.returncode == 0, run.stderr[-3000:]
        said = run.stdout + run.stderr
        match = re.search(r"([\d.]+) registrations/s .* (\d+) refused", said)
        assert match and match.group(2) == "0", said[-3000:]
        rows.append((concurrency, float(match.group(1))))
    assert len([d for d in world.devices() if d["trustType"] == "ServerAd"]) == 1  # one computer, re-registered
    print("\n| connections at once | registrations/s |\n|---:|---:|")
    for concurrency, rate in rows:
        print(f"| {concurrency} | {rate:.1f} |")
