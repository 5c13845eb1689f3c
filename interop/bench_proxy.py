"""Benchmark of `tessera proxy` (not a test: run it on purpose, with a release build):

    TESSERA_BIN=.build/release/tessera TESSERA_INTEROP_DATABASE=sqlite \
        interop/.venv/bin/python -m pytest interop/bench_proxy.py -q -s -p no:timeout

Two parts, in one run, for a user signed in with a passkey (test_proxy.py's Bob: Conditional Access puts a prompt
policy on his traffic, so his CONNECTs to AI hosts are inspected):

1. wrk drives plain HTTP requests to a local origin (`tessera serve --http`'s /healthz) directly and through the proxy,
   one request per connection (`Connection: close`) and kept alive (wrk's default): either way every proxied request
   has its token validated, Conditional Access and the filtering policies asked and a traffic record written. With
   BENCH_PROXY_BINARIES=label=path,label=path (for example a release build before and after a change) one proxy of each
   binary runs over the same store, and the kept-alive and per-connection runs alternate between them over BENCH_ROUNDS
   rounds (medians); without it, the proxy is TESSERA_BIN's.
2. HTTPS with keep-alive, which wrk cannot send through a proxy: a small client of this file's own (`_keep_alive_worker`,
   Python's http.client in BENCH_CLIENTS processes, one kept-alive connection each, one request after another for
   BENCH_SECONDS) times each request after the connection is open, to `tessera serve` over TLS with a certificate for
   api.openai.com from a test CA: directly; through the proxy's CONNECT tunnel (to 127.0.0.1, a host nothing inspects:
   the proxy only relays bytes after admitting the tunnel); and inspected (to api.openai.com: the proxy terminates TLS
   with the tenant's inspection CA, parses each request, re-originates TLS to the origin over a kept-alive connection
   and writes a traffic record per request). Two requests: `GET /healthz` (no prompt) and `POST /v1/chat/completions`
   with a benign chat body (inspected: its prompt read and scored by the detector; the origin answers 404 at once). The
   configurations alternate over BENCH_ROUNDS rounds; the table gives each one's median over the rounds.
"""
from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import re
import ssl
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from support import free_port, issue_test_certificate, serve_on_a_free_port, stop_serve
from test_passkey_msal import device_code_sign_in, public_client  # noqa: F401 (public_client is a fixture; origin and browser come from conftest.py)
from test_proxy import binary_and_store, people, tenant, tenant_graph  # noqa: F401 (fixtures)

DURATION, THREADS, CONNECTIONS = os.environ.get("BENCH_DURATION", "10s"), "2", os.environ.get("BENCH_CONNECTIONS", "16")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CHAT = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                                        {"role": "user", "content": "What is the capital of France?"}]})


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


def _keep_alive_worker(target: dict, seconds: float, results) -> None:
    """One connection, kept alive: requests one after another for `seconds`; puts (latencies in ms, statuses) in
    `results`. The connection (and tunnel) is opened by a first request that is not timed."""
    context = ssl.create_default_context(cafile=target["ca"])
    if target.get("proxy"):
        connection = http.client.HTTPSConnection("127.0.0.1", target["proxy"], context=context, timeout=30)
        connection.set_tunnel(target["host"], target["port"], headers={"Proxy-Authorization": f"Bearer {target['token']}"})
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", target["port"], context=context, timeout=30)
    headers = {"Host": f"{target['host']}:{target['port']}", "Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    body = CHAT if target["method"] == "POST" else None

    def once() -> int:
        connection.request(target["method"], target["path"], body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status

    once()
    latencies, statuses = [], set()
    end = time.perf_counter() + seconds
    while (start := time.perf_counter()) < end:
        statuses.add(once())
        latencies.append((time.perf_counter() - start) * 1000)
    connection.close()
    results.put((latencies, sorted(statuses)))


def keep_alive(target: dict) -> dict:
    results = multiprocessing.Queue()
    workers = [multiprocessing.Process(target=_keep_alive_worker, args=(target, SECONDS, results)) for _ in range(CLIENTS)]
    for w in workers:
        w.start()
    latencies, statuses = [], set()
    for _ in workers:
        found, seen = results.get(timeout=SECONDS + 120)
        latencies += found
        statuses.update(seen)
    for w in workers:
        w.join()
    latencies.sort()
    return {"rps": len(latencies) / SECONDS, "p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "statuses": sorted(statuses)}


def origin_tls(folder: Path) -> Path:
    """`serve`'s TLS files, made here: a test CA and a leaf for api.openai.com and 127.0.0.1 (serve keeps files it finds)."""
    tls = folder / "tls"
    tls.mkdir(parents=True)
    issue_test_certificate(tls, "Bench origin CA", "DNS:api.openai.com,IP:127.0.0.1")
    (tls / "leaf-key.pem").rename(tls / "server-key.pem")
    (tls / "server.pem").write_text((tls / "leaf.pem").read_text() + (tls / "ca.pem").read_text())
    return tls / "ca.pem"


def test_bench_proxy(tessera, tenant, origin, people):  # noqa: F811
    binary, store, db_args = binary_and_store(tessera)
    _, token = people["bob"]
    serve = [binary, "serve", "--graph-rate-limit", "0", "--token-rate-limit", "0", "--max-connections-per-address", "100000",
             "--log-level", "error"]
    plain_data = Path(tempfile.mkdtemp(prefix="tessera-bench-origin-"))
    plain, _, plain_port = serve_on_a_free_port(lambda port: [*serve, "--http", "--data", str(plain_data), "--port", str(port)])
    threading.Thread(target=lambda: [None for _ in plain.stdout], daemon=True).start()
    tls_data = Path(tempfile.mkdtemp(prefix="tessera-bench-tls-origin-"))
    origin_ca = origin_tls(tls_data)
    secure, _, tls_port = serve_on_a_free_port(lambda port: [*serve, "--data", str(tls_data), "--port", str(port),
                                                             "--public-url", f"https://api.openai.com:{port}",
                                                             "--public-url", f"https://127.0.0.1:{port}"])
    threading.Thread(target=lambda: [None for _ in secure.stdout], daemon=True).start()
    inspection_ca = tls_data / "inspection-ca.pem"
    subprocess.run([binary, "proxy", "--data", str(store), *db_args, "--inspection-ca-out", str(inspection_ca), "--tenant", tenant.tenant_id],
                   check=True, capture_output=True, timeout=60)
    binaries = dict(entry.split("=", 1) for entry in os.environ.get("BENCH_PROXY_BINARIES", f"proxy={binary}").split(","))
    proxy_ports = {label: free_port() for label in binaries}
    proxies = []
    for label, path in binaries.items():
        proc = subprocess.Popen([path, "proxy", "--data", str(store), *db_args, "--listen", f"127.0.0.1:{proxy_ports[label]}",
                                 "--server", origin, "--server", tessera.base_url, "--allow-http-port", str(plain_port),
                                 "--allow-port", str(tls_port), "--resolve", f"api.openai.com:{tls_port}:127.0.0.1",
                                 "--inspect-ai-apps", "--origin-ca", str(origin_ca), "--log-level", "error"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
        assert "listening on" in proc.stdout.readline()
        threading.Thread(target=lambda p=proc: [None for _ in p.stdout], daemon=True).start()
        proxies.append(proc)
    proxy_port = next(iter(proxy_ports.values()))
    try:
        target = f"http://127.0.0.1:{plain_port}/healthz"
        closing = 'wrk.headers["Connection"] = "close"\n'
        through = f'wrk.path = "{target}"\nwrk.headers["Host"] = "127.0.0.1:{plain_port}"\nwrk.headers["Proxy-Authorization"] = "Bearer {token}"\n'
        plain_runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(ROUNDS):
            for mode, extra in (("a new connection per request", closing), ("kept alive", "")):
                plain_runs.setdefault(("direct", mode), []).append(wrk(target, extra))
                for label in binaries:
                    plain_runs.setdefault((label, mode), []).append(wrk(f"http://127.0.0.1:{proxy_ports[label]}/", through + extra))
        assert all(r["non2xx"] == 0 for runs in plain_runs.values() for r in runs), [r["raw"] for runs in plain_runs.values() for r in runs]
        print(f"\n| wrk -t{THREADS} -c{CONNECTIONS} -d{DURATION}, plain HTTP, {ROUNDS} alternating rounds (medians; "
              "token, Conditional Access, filtering, traffic record per request) | requests/s | p50 ms | p99 ms | vs direct |")
        print("|---|---:|---:|---:|---|")
        for mode in ("a new connection per request", "kept alive"):
            base = None
            for label in ("direct", *binaries):
                found = plain_runs[(label, mode)]
                rps, p50, p99 = (statistics.median(r[k] for r in found) for k in ("rps", "p50", "p99"))
                base = base or (rps, p50, p99)
                versus = "" if label == "direct" else f"{rps / base[0]:.2f}× the rate, p50 {p50 - base[1]:+.2f} ms, p99 {p99 - base[2]:+.2f} ms"
                print(f"| {mode}, {label if label == 'direct' else 'through ' + label} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {versus} |")
        if os.environ.get("BENCH_PLAIN_ONLY"):
            return

        ways = {"direct": {"host": "api.openai.com", "ca": str(origin_ca)},
                "CONNECT tunnel, not inspected": {"host": "127.0.0.1", "ca": str(origin_ca), "proxy": proxy_port},
                "inspected": {"host": "api.openai.com", "ca": str(inspection_ca), "proxy": proxy_port}}
        requests = {"GET /healthz": ("GET", "/healthz"), "POST chat completion": ("POST", "/v1/chat/completions")}
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(ROUNDS):
            for request, (method, path) in requests.items():
                for way, settings in ways.items():
                    result = keep_alive({**settings, "port": tls_port, "token": token, "method": method, "path": path})
                    runs.setdefault((request, way), []).append(result)
        print(f"\n| {CLIENTS} kept-alive HTTPS connections, {SECONDS:g} s × {ROUNDS} alternating rounds (medians) | requests/s | p50 ms | p99 ms | vs direct |")
        print("|---|---:|---:|---:|---|")
        for request in requests:
            base = None
            for way in ways:
                found = runs[(request, way)]
                assert len({tuple(r["statuses"]) for r in found}) == 1, found
                rps, p50, p99 = (statistics.median(r[k] for r in found) for k in ("rps", "p50", "p99"))
                base = base or (rps, p50, p99)
                versus = "" if way == "direct" else f"{rps / base[0]:.2f}× the rate, p50 {p50 - base[1]:+.2f} ms, p99 {p99 - base[2]:+.2f} ms"
                print(f"| {request} ({found[0]['statuses'][0]}), {way} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {versus} |")
        statuses = {request: {tuple(r["statuses"]) for way in ways for r in runs[(request, way)]} for request in requests}
        assert all(len(s) == 1 for s in statuses.values()), statuses  # the proxy changed no answer
    finally:
        for proc in proxies:
            proc.terminate()
            proc.wait(timeout=60)
        stop_serve(plain, plain_data)
        stop_serve(secure, tls_data)
