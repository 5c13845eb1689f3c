"""Benchmark of `tessera proxy` (not a test: run it on purpose, with a release build):

    TESSERA_BIN=.build/release/tessera TESSERA_INTEROP_DATABASE=sqlite \
        interop/.venv/bin/python -m pytest interop/bench_proxy.py -q -s -p no:timeout

wrk drives plain HTTP requests (one per connection, `Connection: close`, as the proxy forwards them) to a local origin
(`tessera serve --http`'s /healthz) directly and through the proxy with a signed-in user's token (a passkey sign-in in
Chromium, as interop/test_proxy.py), and prints requests/s and latency p50/p99 of each and what the proxy adds. Every
proxied request is a new connection: the token is validated and Conditional Access and the filtering policies are
asked for each."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

from support import free_port, serve_on_a_free_port, stop_serve
from test_passkey_msal import device_code_sign_in, public_client  # noqa: F401 (public_client is a fixture; origin and browser come from conftest.py)
from test_proxy import signed_in

DURATION, THREADS, CONNECTIONS = os.environ.get("BENCH_DURATION", "10s"), "2", os.environ.get("BENCH_CONNECTIONS", "16")


def wrk(url: str, script: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    out = subprocess.run(["wrk", "-t", THREADS, "-c", CONNECTIONS, "-d", DURATION, "--latency", "-s", f.name, url],
                         capture_output=True, text=True, timeout=300).stdout
    os.unlink(f.name)

    def latency(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50": latency("50"), "p99": latency("99"),
            "non2xx": int(errors.group(1)) if errors else 0, "raw": out}


def test_bench_proxy(graph, tessera, tenant_a, origin, browser):  # noqa: F811
    binary = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parent.parent / ".build" / "debug" / "tessera")
    _, token = signed_in(graph, tessera, tenant_a, origin, browser, "bench")
    data = Path(tempfile.mkdtemp(prefix="tessera-bench-origin-"))
    upstream, _, origin_port = serve_on_a_free_port(lambda port: [binary, "serve", "--http", "--data", str(data), "--port", str(port),
                                                                  "--graph-rate-limit", "0", "--token-rate-limit", "0",
                                                                  "--max-connections-per-address", "100000", "--log-level", "error"])
    threading.Thread(target=lambda: [None for _ in upstream.stdout], daemon=True).start()
    database = os.environ.get("TESSERA_INTEROP_DATABASE", "sqlite")
    db_args = [] if database in ("", "sqlite") else ["--database", database]
    proxy_port = free_port()
    proxy = subprocess.Popen([binary, "proxy", "--data", str(Path(tessera.ca).parent.parent), *db_args, "--listen", f"127.0.0.1:{proxy_port}",
                              "--server", origin, "--server", tessera.base_url, "--allow-http-port", str(origin_port), "--log-level", "error"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    assert "listening on" in proxy.stdout.readline()
    threading.Thread(target=lambda: [None for _ in proxy.stdout], daemon=True).start()
    try:
        target = f"http://127.0.0.1:{origin_port}/healthz"
        direct = wrk(target, 'wrk.headers["Connection"] = "close"\n')
        proxied = wrk(f"http://127.0.0.1:{proxy_port}/",
                      f'wrk.path = "{target}"\nwrk.headers["Host"] = "127.0.0.1:{origin_port}"\nwrk.headers["Connection"] = "close"\n'
                      f'wrk.headers["Proxy-Authorization"] = "Bearer {token}"\n')
        assert direct["non2xx"] == 0 and proxied["non2xx"] == 0, proxied["raw"]
        print(f"\n| wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}, a new connection per request | requests/s | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        print(f"| direct to the origin | {direct['rps']:.0f} | {direct['p50']:.2f} | {direct['p99']:.2f} |")
        print(f"| through tessera proxy (token, Conditional Access, filtering, traffic record per request) | {proxied['rps']:.0f} | "
              f"{proxied['p50']:.2f} | {proxied['p99']:.2f} |")
        print(f"| added by the proxy | {proxied['rps'] / direct['rps']:.2f}x | {proxied['p50'] - direct['p50']:+.2f} | "
              f"{proxied['p99'] - direct['p99']:+.2f} |")
    finally:
        proxy.terminate()
        proxy.wait(timeout=60)
        stop_serve(upstream, data)
