"""One `tessera serve` for the soak, kept in a folder that outlives this process, so a fault command can kill it.

    scripts/soak node up --dir DIR [--database URL] [--port P] [--bin TESSERA]   starts it (new data folder on the
                                                                              first start), prints its URL
    scripts/soak node kill9-restart --dir DIR [--down SECONDS]                 kill -9, then the same command again
                                                                              on the same port, waiting until healthy
    scripts/soak node down --dir DIR                                           SIGTERM (SIGKILL after 30 s)
    scripts/soak node url --dir DIR                                            prints the URL

DIR holds node.json (the command line), pid, server.log and data/ (the SQLite file, the TLS CA in data/tls/ca.pem).
With --database the data folder still holds the deployment key and the CA; the directory is in PostgreSQL.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie waiting to be reaped by someone else."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def healthy(url: str, ca: Path) -> bool:
    if not ca.exists():
        return False
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2, context=context) as r:
            return r.status == 200
    except OSError:
        return False


class Node:
    def __init__(self, folder: Path):
        self.dir = folder
        self.config_file, self.pid_file, self.log = folder / "node.json", folder / "pid", folder / "server.log"

    @property
    def config(self) -> dict:
        return json.loads(self.config_file.read_text())

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.config['port']}"

    @property
    def ca(self) -> Path:
        return Path(self.config["data"]) / "tls" / "ca.pem"

    def pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def configure(self, binary: str, database: str | None, port: int | None) -> None:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps({"bin": str(Path(binary).resolve()), "data": str(data.resolve()),
                                                "database": database, "port": port or free_port()}))

    def start(self, timeout: float = 120) -> None:
        c = self.config
        command = [c["bin"], "serve", "--data", c["data"], "--host", "127.0.0.1", "--port", str(c["port"])]
        if c["database"]:
            command += ["--database", c["database"]]
        with open(self.log, "ab") as out:
            out.write(f"\n--- soak node: starting at {time.strftime('%H:%M:%S')}\n".encode())
            out.flush()
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"tessera serve exited with {proc.returncode}; see {self.log}")
            if healthy(self.url, self.ca):
                return
            time.sleep(0.1)
        sys.exit(f"{self.url}/healthz did not answer within {timeout:.0f} s; see {self.log}")

    def kill(self, sig: int, timeout: float) -> None:
        pid = self.pid()
        if pid is None or not alive(pid):
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
            while alive(pid):
                time.sleep(0.05)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="scripts/soak node", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "kill9-restart", "down", "url"])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--database", help="a postgres:// URL (default: SQLite in the data folder)")
    parser.add_argument("--port", type=int)
    parser.add_argument("--bin", default=os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera"))
    parser.add_argument("--down", type=float, default=0.0, help="kill9-restart: seconds to stay down before starting")
    args = parser.parse_args(argv)
    node = Node(args.dir)
    if args.action == "up":
        args.dir.mkdir(parents=True, exist_ok=True)
        if not node.config_file.exists():
            node.configure(args.bin, args.database, args.port)
        pid = node.pid()
        if pid is None or not alive(pid):
            node.start()
        print(node.url)
    elif args.action == "kill9-restart":
        pid = node.pid()
        if pid is None or not alive(pid):
            sys.exit(f"no running node in {args.dir}")
        node.kill(signal.SIGKILL, 10)
        time.sleep(args.down)
        node.start()
        print(f"killed {pid} with SIGKILL; restarted as {node.pid()} at {node.url}")
    elif args.action == "down":
        node.kill(signal.SIGTERM, 30)
        node.pid_file.unlink(missing_ok=True)
    else:
        print(node.url)


if __name__ == "__main__":
    main(sys.argv[1:])
