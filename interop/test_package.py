"""The Debian package (scripts/package-deb): built from the binary under test, checked with dpkg-deb, lintian and
systemd-analyze, installed into this machine with dpkg, its service started as its unit says, then removed and purged.

Installing is real: the tests need root and a machine without a tessera package, user or /var/lib/tessera of its own
(CI's throwaway machine), and leave it as they found it (the package purged, the tessera user deleted). Where systemd
is PID 1 the service is started with systemctl; elsewhere (containers, this CI) systemd_exec.py starts the unit's
ExecStart as systemd would: its user, environment, state directory, umask, no new privileges, an empty capability
bounding set and the seccomp filters of SystemCallFilter=, RestrictAddressFamilies= and MemoryDenyWriteExecute=.
"""
from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import requests

from support import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parent.parent
BINARY = os.environ.get("TESSERA_BIN", str(ROOT / ".build" / "debug" / "tessera"))
UNIT = "/lib/systemd/system/tessera.service"
STATE = Path("/var/lib/tessera")
ENV_FILE = Path("/etc/tessera/tessera.env")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/tessera.service")
MASK = Path("/etc/systemd/system/tessera.service")
SYSTEMD_RUNNING = Path("/run/systemd/system").is_dir()
# Stripping and compressing a debug binary of ~100 MB and its runtime, and lintian reading it, take minutes on a busy
# machine: more than the suite's per-test limit.
pytestmark = pytest.mark.timeout(900)


def run(*command: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, **kw)
    if check:
        assert result.returncode == 0, f"{' '.join(command)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def installed() -> bool:
    status = run("dpkg-query", "-W", "-f=${Status}", "tessera", check=False).stdout
    return "installed" in status or "config-files" in status


def user_exists() -> bool:
    try:
        pwd.getpwnam("tessera")
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    """The .deb of the binary under test, its fields read with dpkg-deb."""
    out = tmp_path_factory.mktemp("deb")
    built = run(str(ROOT / "scripts" / "package-deb"), "--binary", BINARY, "--out", str(out), "--version", "0.0~interop1",
                "--compression", "gzip", timeout=600)
    path = Path(built.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out and path.name == f"tessera_0.0~interop1_{run('dpkg', '--print-architecture').stdout.strip()}.deb"
    return path


@pytest.fixture(scope="module")
def machine():
    """This machine, checked to hold no tessera of its own, and put back afterwards (purge, then the user deleted)."""
    assert os.geteuid() == 0, "installs a package: run the interop suite as root (CI does)"
    assert not installed(), "a tessera package is installed here: these tests would remove it"
    assert not user_exists() and not STATE.exists(), "a tessera user or /var/lib/tessera exists here: these tests would remove it"
    yield
    if installed():
        run("dpkg", "--purge", "tessera", check=False)
    if user_exists():
        run("deluser", "--system", "--quiet", "tessera", check=False)
    shutil.rmtree(STATE, ignore_errors=True)


def test_package_fields_contents_and_dependencies(deb: Path):
    info = run("dpkg-deb", "--info", str(deb)).stdout
    field = lambda name: re.search(rf"^ {name}: (.*)$", info, re.M).group(1)  # noqa: E731
    assert field("Package") == "tessera" and field("Version") == "0.0~interop1" and field("Section") == "net"
    depends = [d.strip().split(" ")[0] for d in field("Depends").split(",")]
    assert "libc6" in depends and "adduser" in depends, depends
    assert int(field("Installed-Size")) > 10_000
    assert run("dpkg-deb", "--field", str(deb), "Maintainer").stdout.strip()
    control = Path(tempfile.mkdtemp(prefix="tessera-control-"))
    try:
        run("dpkg-deb", "--control", str(deb), str(control))
        assert (control / "conffiles").read_text().split() == ["/etc/tessera/tessera.env"]
        for script in ("postinst", "prerm", "postrm"):
            assert os.access(control / script, os.X_OK), script
            run("sh", "-n", str(control / script))
    finally:
        shutil.rmtree(control)

    listing = run("dpkg-deb", "--contents", str(deb)).stdout
    files = {line.split()[-1].lstrip("."): line.split()[0] for line in listing.splitlines()}
    for path in ("/usr/bin/tessera", UNIT, "/etc/tessera/tessera.env", "/usr/share/doc/tessera/copyright",
                 "/usr/share/doc/tessera/changelog.gz"):
        assert path in files, f"{path} not in the package:\n{listing}"
    assert files["/usr/bin/tessera"] == "-rwxr-xr-x" and files[UNIT] == "-rw-r--r--"
    assert all(line.split()[1] == "root/root" for line in listing.splitlines()), listing

    # Every library the binary needs is in the package (/usr/lib/tessera) or in a package it depends on.
    tree = Path(tempfile.mkdtemp(prefix="tessera-deb-"))
    try:
        run("dpkg-deb", "-x", str(deb), str(tree))
        binary = tree / "usr/bin/tessera"
        assert ".symtab" not in run("readelf", "-S", str(binary)).stdout, "the binary is not stripped"
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", run("readelf", "-d", str(binary)).stdout)
        runpath = re.search(r"\((?:RUNPATH|RPATH)\)\s+Library runpath: \[(.+)\]", run("readelf", "-d", str(binary)).stdout)
        bundled = {p.name for p in (tree / "usr/lib/tessera").glob("*.so*")} if (tree / "usr/lib/tessera").is_dir() else set()
        if bundled:
            assert runpath and runpath.group(1) == "/usr/lib/tessera", runpath
        for library in needed:
            if library in bundled:
                continue
            owner = run("dpkg", "-S", library, check=False).stdout
            packages = {line.split(":")[0] for line in owner.splitlines() if "/lib" in line}
            assert packages & set(depends) or library.startswith("ld-linux"), f"{library} ({packages}) is in no dependency {depends}"
    finally:
        shutil.rmtree(tree)


def test_lintian_finds_nothing_that_matters(deb: Path):
    result = run("lintian", "--suppress-tags", "no-manual-page", str(deb), check=False, timeout=600)
    problems = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_unit_hardening_offline(deb: Path):
    """systemd's own exposure score of the unit (no running systemd needed): 'OK' is below 2.5 of 10."""
    tree = Path(tempfile.mkdtemp(prefix="tessera-unit-"))
    try:
        run("dpkg-deb", "-x", str(deb), str(tree))
        result = run("systemd-analyze", "security", "--offline=yes", "--no-pager", str(tree / UNIT.lstrip("/")), check=False)
        score = re.search(r"Overall exposure level for tessera\.service: ([0-9.]+) (\w+)", result.stdout)
        assert score, result.stdout + result.stderr
        assert float(score.group(1)) <= 2.0 and score.group(2) == "OK", result.stdout[-3000:]
    finally:
        shutil.rmtree(tree)


def start_service(port: int) -> tuple[subprocess.Popen | None, str]:
    """The service started after the admin set its options; returns the process where systemd is not running, and
    what it printed up to 'listening on'."""
    ENV_FILE.write_text(ENV_FILE.read_text().replace("\nTESSERA_OPTIONS=\n", f"\nTESSERA_OPTIONS=--port {port} --log-level info\n"))
    if SYSTEMD_RUNNING:
        run("systemctl", "restart", "tessera.service")
        for _ in range(120):
            log = run("journalctl", "-u", "tessera.service", "-o", "cat", "--no-pager").stdout
            if "listening on" in log:
                return None, log
            threading.Event().wait(1)
        raise AssertionError("tessera.service did not start:\n" + log)
    proc = subprocess.Popen(["/usr/bin/python3", str(ROOT / "interop" / "systemd_exec.py"), UNIT],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    return proc, wait_until_listening(proc, "tessera.service")


def stop_service(proc: subprocess.Popen | None) -> int:
    if proc is None:
        run("systemctl", "stop", "tessera.service")
        return int(run("systemctl", "show", "-P", "ExecMainStatus", "tessera.service").stdout.strip())
    proc.send_signal(signal.SIGTERM)  # the unit's KillSignal
    return proc.wait(timeout=120)


def service_status(pid: int) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)


def test_install_start_stop_remove_purge(deb: Path, machine):
    run("dpkg", "-i", str(deb))
    tessera = pwd.getpwnam("tessera")
    assert tessera.pw_uid < 1000 and tessera.pw_dir == str(STATE) and tessera.pw_shell.endswith("nologin"), tessera
    assert grp.getgrgid(tessera.pw_gid).gr_name == "tessera"
    state = STATE.stat()
    assert (state.st_uid, state.st_gid, state.st_mode & 0o777) == (tessera.pw_uid, tessera.pw_gid, 0o750)
    env = ENV_FILE.stat()
    assert (env.st_uid, grp.getgrgid(env.st_gid).gr_name, env.st_mode & 0o777) == (0, "tessera", 0o640)
    assert WANTS.is_symlink() and os.readlink(WANTS) == UNIT, "deb-systemd-helper did not enable the unit"
    ldd = run("ldd", "/usr/bin/tessera").stdout
    assert "not found" not in ldd, ldd
    for line in ldd.splitlines():
        path = re.search(r"=> (/\S+)", line)
        if path and "libswift" in line:
            assert path.group(1).startswith("/usr/lib/tessera/"), ldd
    verify = run("systemd-analyze", "verify", "--no-pager", UNIT, check=False)
    assert verify.returncode == 0 and "tessera.service" not in verify.stderr, verify.stderr
    # Installing again (an upgrade to the same version) keeps the user, the state and the admin's permissions.
    run("dpkg", "-i", str(deb))
    assert pwd.getpwnam("tessera").pw_uid == tessera.pw_uid and STATE.stat().st_mode & 0o777 == 0o750

    port = free_port()
    proc, printed = start_service(port)
    try:
        assert "tenant id" in printed, printed
        tenant = re.search(r"tenant id:\s+(\S+)", printed).group(1)
        client, secret = (re.search(rf"{name}:\s+(\S+)", printed).group(1) for name in ("client id", "client secret"))
        ca = str(STATE / "tls" / "ca.pem")
        session = requests.Session()
        session.verify, session.trust_env = ca, False
        ready = session.get(f"https://localhost:{port}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
        token = session.post(f"https://localhost:{port}/{tenant}/oauth2/v2.0/token", timeout=60, data={
            "grant_type": "client_credentials", "client_id": client, "client_secret": secret,
            "scope": "https://graph.microsoft.com/.default"})
        assert token.status_code == 200 and token.json()["access_token"], token.text
        if proc is not None:
            status = service_status(proc.pid)
            assert status["Uid"].split()[0] == str(tessera.pw_uid) and status["Gid"].split()[0] == str(tessera.pw_gid)
            assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2" and int(status["Seccomp_filters"]) >= 3, status
            assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0, status
        # The administrator's commands run as the service's user on its data folder while it serves.
        created = run("runuser", "-u", "tessera", "--", "/usr/bin/tessera", "tenant", "create", "--data", str(STATE),
                      "--name", "Packaged", "--domain", "packaged.test", "--json", timeout=120)
        assert '"tenantId"' in created.stdout, created.stdout
        # systemctl reload: the unit's ExecReload (SIGHUP to the main process) leaves the service serving.
        if proc is None:
            run("systemctl", "reload", "tessera.service")
        else:
            reload = re.search(r"(?m)^ExecReload=(.+)$", Path(UNIT).read_text()).group(1).replace("$MAINPID", str(proc.pid))
            run(*reload.split())
        threading.Event().wait(2)
        assert proc is None or proc.poll() is None, "the service stopped on reload"
        ready = session.get(f"https://localhost:{port}/readyz", timeout=30)
        assert ready.status_code == 200, ready.text
    finally:
        code = stop_service(proc)
    assert code == 0, f"tessera.service exit status {code}"
    assert (STATE / "tls" / "ca.pem").is_file() and any(STATE.iterdir())
    # Everything the service wrote is in its state directory (what ProtectSystem=strict and PrivateTmp= enforce).
    found = run("find", "/", "-xdev", "(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o", "-user", "tessera",
                "-print", check=False).stdout.split()
    assert found and all(p == str(STATE) or p.startswith(f"{STATE}/") for p in found), [p for p in found if not p.startswith(str(STATE))]

    run("dpkg", "-r", "tessera")
    assert not Path("/usr/bin/tessera").exists() and not Path(UNIT).exists()
    assert ENV_FILE.is_file() and (STATE / "tls" / "ca.pem").is_file(), "remove keeps the configuration and the data"
    assert MASK.is_symlink() and os.readlink(MASK) == "/dev/null", "the removed unit is masked"
    run("dpkg", "--purge", "tessera")
    assert not installed()
    assert not STATE.exists() and not Path("/etc/tessera").exists(), "purge removes the data and the configuration"
    assert not WANTS.exists() and not MASK.is_symlink(), "purge removes the unit's enablement and mask"
    assert user_exists(), "purge keeps the system user (files elsewhere may belong to it)"


def test_systemd_exec_enforces_what_the_unit_says():
    """The stand-in for systemd is no no-op: under the unit's sandbox settings a writable and executable mapping, a
    packet socket and setuid fail, while a plain mapping and an IPv6 socket work."""
    assert os.geteuid() == 0, "systemd_exec.py changes user: run the interop suite as root (CI does)"
    unit = (ROOT / "packaging" / "tessera.service").read_text()
    folder = Path(tempfile.mkdtemp(prefix="tessera-probe-"))  # pytest's own folders are closed to other users
    probe = folder / "probe.py"
    probe.write_text(
        "import mmap, os, socket\n"
        "def outcome(f):\n"
        "    try:\n        f(); return 'ok'\n"
        "    except OSError as e:\n        return e.strerror\n"
        "print('plain', outcome(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)))\n"
        "print('wx', outcome(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)))\n"
        "print('inet6', outcome(lambda: socket.socket(socket.AF_INET6).close()))\n"
        "print('packet', outcome(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)))\n"
        "print('setuid', outcome(lambda: os.setuid(os.getuid())))\n"
        "print('uid', os.getuid(), 'nnp', [l for l in open('/proc/self/status') if l.startswith('NoNewPrivs')][0].split()[1])\n")
    os.chmod(folder, 0o755)
    os.chmod(probe, 0o644)
    sandboxed = (re.sub(r"(?m)^(User|Group|StateDirectory|StateDirectoryMode|WorkingDirectory|EnvironmentFile)=.*\n", "", unit)
                 .replace("[Service]\n", "[Service]\nUser=nobody\nGroup=nogroup\nWorkingDirectory=/\n")
                 .replace(re.search(r"(?m)^ExecStart=.*$", unit).group(0), f"ExecStart=/usr/bin/python3 {probe}"))
    (folder / "probe.service").write_text(sandboxed)
    try:
        result = run("/usr/bin/python3", str(ROOT / "interop" / "systemd_exec.py"), str(folder / "probe.service"), timeout=60)
    finally:
        shutil.rmtree(folder)
    outcome = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert outcome["plain"] == "ok" and outcome["inet6"] == "ok", result.stdout
    assert outcome["wx"] == "Operation not permitted", result.stdout  # MemoryDenyWriteExecute=yes
    assert outcome["packet"] == "Address family not supported by protocol", result.stdout  # RestrictAddressFamilies=
    assert outcome["setuid"] == "Operation not permitted", result.stdout  # SystemCallFilter=~@privileged
    assert outcome["uid"] == f"{pwd.getpwnam('nobody').pw_uid} nnp 1", result.stdout


def test_containerfile_matches_the_package():
    """The Containerfile (not built here: no container engine) runs the package's binary as the package's user on the
    unit's state directory, checks /readyz on the port it exposes, and its build context holds the package it copies."""
    containerfile = (ROOT / "Containerfile").read_text()
    unit = (ROOT / "packaging" / "tessera.service").read_text()
    directive = lambda name: re.findall(rf"(?m)^{name} (.+)$", containerfile)  # noqa: E731
    assert directive("FROM") == ["debian:bookworm-slim"]
    assert directive("USER") == [re.search(r"(?m)^User=(.+)$", unit).group(1)] == ["tessera"]
    state = "/var/lib/" + re.search(r"(?m)^StateDirectory=(.+)$", unit).group(1)
    assert directive("VOLUME") == [f'["{state}"]'] and directive("WORKDIR") == [state]
    port = directive("EXPOSE")[0]
    entrypoint = directive("ENTRYPOINT")[0]
    assert f'"serve", "--data", "{state}"' in entrypoint and f'"--port", "{port}"' in entrypoint, entrypoint
    assert entrypoint.startswith('["/usr/bin/tessera"'), entrypoint
    health = re.search(r"(?ms)^HEALTHCHECK .*?CMD (.+?)$", containerfile).group(1)
    assert f"--cacert {state}/tls/ca.pem https://localhost:{port}/readyz" in health and "--fail" in health, health
    copied = directive("COPY")[0].split()[0]
    ignore = (ROOT / ".dockerignore").read_text().split("\n")
    assert "*" in ignore and f"!{copied}" in ignore, (copied, ignore)
    assert f"--out {Path(copied).parent}" in containerfile, "the Containerfile says how to make the package it copies"
