"""`tessera serve --config FILE`: serve's options from a TOML file, environment variables over it, flags over both.

Proved against the real binary: a file's port, public-url, data and database take effect (the server listens on the
port, answers only for the public URL's host, keeps its data and database where the file says); TESSERA_PORT beats the file; --port beats both; a file with a wrong type or an unknown
key stops serve before it starts, naming the file, line and key; and `tessera config check` prints the effective
configuration with each value's source and the database password masked.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import tomllib
from pathlib import Path

import pytest
import requests

from support import free_port, stop_serve, wait_until_listening

BINARY = os.environ.get("TESSERA_BIN") or str(Path(__file__).resolve().parents[1] / ".build" / "debug" / "tessera")


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without TESSERA_ variables (they would be options), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update(extra)
    return env


def serve(arguments: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """`tessera serve …` started with `env`, once it says it is listening; its output is drained afterwards."""
    proc = subprocess.Popen([BINARY, "serve", *arguments], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, env=env)
    printed = wait_until_listening(proc, "tessera serve")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, printed


@pytest.fixture
def folder():
    path = Path(tempfile.mkdtemp(prefix="tessera-config-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_file_configures_serve(folder: Path):
    port, data, database = free_port(), folder / "data", folder / "elsewhere.sqlite"
    config = folder / "tessera.toml"
    config.write_text(f"""# Tessera, as an administrator would write it
port = {port}
public-url = ["https://localhost:{port}"]  # only this name
data = "{data}"
database = "{database}"
""")
    proc, printed = serve(["--config", str(config)], clean_environment())
    try:
        assert f"listening on 127.0.0.1:{port}" in printed
        assert database.exists() and not (data / "tessera.sqlite").exists()  # the file's database, not the default
        ca = str(data / "tls" / "ca.pem")
        ok = requests.get(f"https://localhost:{port}/.well-known/openid-configuration", verify=ca, timeout=10)
        assert ok.status_code != 421
        # 127.0.0.1 is one of the default public URLs, not one of the file's: the server refuses the name.
        other = requests.get(f"https://localhost:{port}/", headers={"Host": f"127.0.0.1:{port}"}, verify=ca, timeout=10)
        assert other.status_code == 421
    finally:
        stop_serve(proc)


def test_environment_beats_the_file_and_a_flag_beats_both(folder: Path):
    file_port, env_port, flag_port = free_port(), free_port(), free_port()
    config = folder / "tessera.toml"
    config.write_text(f'port = {file_port}\ndata = "{folder / "data"}"\n')
    # TESSERA_CONFIG names the file as --config does.
    proc, printed = serve([], clean_environment(TESSERA_CONFIG=str(config), TESSERA_PORT=str(env_port)))
    try:
        assert f"listening on 127.0.0.1:{env_port}" in printed
    finally:
        stop_serve(proc)
    proc, printed = serve(["--config", str(config), "--port", str(flag_port)], clean_environment(TESSERA_PORT=str(env_port)))
    try:
        assert f"listening on 127.0.0.1:{flag_port}" in printed
        requests.get(f"https://localhost:{flag_port}/", verify=str(folder / "data" / "tls" / "ca.pem"), timeout=10)
    finally:
        stop_serve(proc)


@pytest.mark.parametrize("text, where", [
    ('port = 8443\n\nidle-timeout = "soon"\n', ":3:1: key 'idle-timeout': expected an integer, found a string"),
    ("port = 8443\nprot = 8444\n", ":2:1: unknown key 'prot'"),
    ("[server]\nport = 8443\n", ":1:1: tables are not supported"),
    ('# names\npublic-url = ["ftp://login.contoso.com"]\n', ":2:1: key 'public-url': ftp://login.contoso.com is not"),
])
def test_a_bad_file_stops_serve_naming_the_line(folder: Path, text: str, where: str):
    config = folder / "bad.toml"
    config.write_text(text)
    result = subprocess.run([BINARY, "serve", "--config", str(config)], capture_output=True, text=True, timeout=60,
                            env=clean_environment(), stdin=subprocess.DEVNULL, cwd=folder)
    assert result.returncode == 64
    assert f"{config}{where}" in result.stderr, result.stderr
    assert "listening" not in result.stdout and not (folder / "tessera-data").exists()  # nothing started


def test_config_check_prints_sources_and_masks_the_database_password(folder: Path):
    config = folder / "tessera.toml"
    config.write_text('port = 9443\ndatabase = "postgres://tessera:Sup3rS3cret@db.contoso.test:5432/tessera?sslmode=verify-full"\n')
    result = subprocess.run([BINARY, "config", "check", "--config", str(config), "--log-level", "debug"],
                            capture_output=True, text=True, timeout=60, env=clean_environment(TESSERA_IDLE_TIMEOUT="60"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Sup3rS3cret" not in result.stdout
    assert f'database = "postgres://tessera:********@db.contoso.test:5432/tessera?sslmode=verify-full"  # file {config}:2' in lines
    assert f"port = 9443  # file {config}:1" in lines
    assert "idle-timeout = 60  # env TESSERA_IDLE_TIMEOUT" in lines
    assert 'log-level = "debug"  # flag' in lines
    assert 'host = "127.0.0.1"  # default' in lines
    # The file is TOML to TOML's own parser too, and so is what the check prints (a file to start from).
    assert tomllib.loads(config.read_text())["port"] == 9443
    effective = tomllib.loads(result.stdout)
    assert effective["port"] == 9443 and effective["idle-timeout"] == 60 and "tls-cert" not in effective
    # The password in the environment is masked as well.
    result = subprocess.run([BINARY, "config", "check"], capture_output=True, text=True, timeout=60,
                            env=clean_environment(TESSERA_DATABASE="postgres://tessera:Env53cret@db.contoso.test/tessera"))
    assert result.returncode == 0 and "Env53cret" not in result.stdout
    assert 'database = "postgres://tessera:********@db.contoso.test/tessera"  # env TESSERA_DATABASE' in result.stdout.splitlines()
    # And a bad file is refused by the check as by serve.
    config.write_text("port = true\n")
    result = subprocess.run([BINARY, "config", "check", "--config", str(config)], capture_output=True, text=True, timeout=60,
                            env=clean_environment())
    assert result.returncode == 64 and f"{config}:1:1: key 'port': expected an integer, found a boolean" in result.stderr


@pytest.mark.parametrize("text", [
    r'data = "a\tb\u00e9\U0001F600\"q\\ # not a comment"',
    r"data = 'C:\data\tessera'  # literal: backslashes kept",
    "port = +8_443",
    "public-url = [\n  \"https://a.contoso.com\", # canonical\n  'https://b.contoso.com',\n]",
    "http = true\t# tab before the comment",
    "trusted-proxy = []",
])
def test_the_subset_means_what_toml_says(folder: Path, text: str):
    """Each value reads the same to tomllib as to Tessera (through what `config check` prints, itself TOML)."""
    config = folder / "t.toml"
    config.write_text(text + "\n")
    expected = tomllib.loads(config.read_text())
    result = subprocess.run([BINARY, "config", "check", "--config", str(config)], capture_output=True, text=True, timeout=60,
                            env=clean_environment())
    assert result.returncode == 0, result.stderr
    effective = tomllib.loads(result.stdout)
    for key, value in expected.items():
        assert effective[key] == value
