"""`tessera proxy` and SIGHUP without `--tls-cert`: `systemctl reload`, or a certbot deploy hook that signals every
Tessera process, sends SIGHUP to a proxy that has no certificate file of its own to read again (plain listener only, or
its TLS listener on the generated certificate of the data folder). It is logged as nothing to read again and the proxy
goes on answering on both listeners, where the signal's default action ended it (as serve's did before it took it the
same way: test_production_tls.py). A proxy of its own on a new SQLite data folder: no server is needed.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from support import free_port, wait_until_listening

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")
REQUEST = b"GET http://www.example.test/ HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n"


def status_line(connection: socket.socket) -> str:
    """The status line the proxy answers a plain HTTP request without credentials with."""
    connection.sendall(REQUEST)
    answer = b""
    while b"\r\n" not in answer:
        chunk = connection.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls-generated-certificate"])
def test_sighup_without_a_certificate_of_its_own_does_not_stop_the_proxy(tls):
    data = Path(tempfile.mkdtemp(prefix="tessera-proxy-hangup-"))
    port, tls_port = free_port(), free_port()
    options = ["--listen-tls", f"127.0.0.1:{tls_port}"] if tls else []
    proc = subprocess.Popen([BINARY, "proxy", "--data", str(data), "--listen", f"127.0.0.1:{port}", *options],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        printed = wait_until_listening(proc, "tessera proxy", 120)
        later: list[str] = [printed]
        threading.Thread(target=lambda: [later.append(line) for line in proc.stdout], daemon=True).start()
        deadline = time.monotonic() + 30
        while tls and not any("listening with TLS on" in line for line in later) and time.monotonic() < deadline:
            time.sleep(0.1)

        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any("SIGHUP: nothing to read again" in line for line in later) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("SIGHUP: nothing to read again (no --tls-cert)" in line for line in later), "".join(later)
        time.sleep(0.5)
        assert proc.poll() is None, "the proxy stopped on SIGHUP:\n" + "".join(later)

        # Both listeners still answer: a request without credentials is asked for them.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            assert status_line(plain).startswith("HTTP/1.1 407"), "".join(later)
        if tls:
            context = ssl.create_default_context(cafile=str(data / "tls" / "ca.pem"))  # the data folder's CA made it
            with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname="127.0.0.1") as secure:
                assert status_line(secure).startswith("HTTP/1.1 407"), "".join(later)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
