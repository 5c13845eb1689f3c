#!/usr/bin/python3
"""Run a systemd service's ExecStart as systemd would start it, on a machine where systemd is not PID 1.

    /usr/bin/python3 interop/systemd_exec.py UNIT_FILE [NAME=VALUE ...]

It reads the unit's [Service] section and applies, in systemd's order: EnvironmentFile= and Environment= (plus
STATE_DIRECTORY for StateDirectory=, and the NAME=VALUE arguments), the state directory made and given to the user,
WorkingDirectory=, UMask=, CapabilityBoundingSet= (emptied), User=/Group= (with the user's supplementary groups),
NoNewPrivileges=, then the seccomp filters of SystemCallFilter= (with SystemCallErrorNumber=), RestrictAddressFamilies=,
MemoryDenyWriteExecute= and SystemCallArchitectures=native, and execs ExecStart with `$VAR` split into words and
`${VAR}` kept as one, as systemd.service(5) says. The syscall groups come from `systemd-analyze syscall-filter`, so
they are those of the installed systemd. What needs mount namespaces (ProtectSystem=, ProtectHome=, PrivateTmp=,
PrivateDevices=, the Protect*= kernel settings) is not applied: the caller checks what the process wrote instead.

It needs root and the python3-seccomp Debian package (hence the system Python, not the interop venv).
"""
from __future__ import annotations

import errno
import grp
import os
import pwd
import re
import socket
import subprocess
import sys

import seccomp

PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24


def service_section(path: str) -> list[tuple[str, str]]:
    """The [Service] section's settings in order (a setting may repeat), continuation lines joined."""
    settings, section, pending = [], None, ""
    for raw in open(path, encoding="utf-8"):
        line = pending + raw.rstrip("\n")
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            section = stripped
            continue
        if section == "[Service]":
            key, _, value = stripped.partition("=")
            settings.append((key.strip(), value.strip()))
    return settings


def unquote_words(text: str) -> list[str]:
    """Environment= assignments: words split at spaces, double or single quotes kept together."""
    return [m.group(1) or m.group(2) or m.group(3) for m in re.finditer(r'"([^"]*)"|\'([^\']*)\'|(\S+)', text)]


def read_environment_file(path: str) -> dict[str, str]:
    env = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def expand_command(command: str, env: dict[str, str]) -> list[str]:
    """ExecStart's words: `${VAR}` is one word, a word that is exactly `$VAR` becomes the variable's words."""
    words = []
    for word in command.split():
        if re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", word):
            words.extend(env.get(word[1:], "").split())
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word))
    return words


def syscall_groups() -> dict[str, list[str]]:
    """Every group `systemd-analyze syscall-filter` lists, with its entries (system calls and other groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], check=True, capture_output=True, text=True).stdout
    groups, current = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            current = groups.setdefault(line.strip(), [])
        elif current is not None and line.startswith("    ") and not line.strip().startswith("#"):
            current.append(line.strip())
        elif not line.strip():
            current = None
    return groups


def expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    calls: set[str] = set()
    for name in names:
        calls |= expand(groups[name], groups) if name.startswith("@") else {name}
    return calls


def allowed_syscalls(settings: list[tuple[str, str]]) -> set[str] | None:
    """SystemCallFilter= as systemd combines it: the first allow list, less every later `~` list; None without one."""
    groups, allowed = syscall_groups(), None
    for key, value in settings:
        if key != "SystemCallFilter" or not value:
            continue
        deny = value.startswith("~")
        names = expand(value.lstrip("~").split(), groups)
        if allowed is None:
            if deny:
                raise SystemExit("systemd_exec.py: a deny-only SystemCallFilter= is not supported")
            allowed = names
        elif deny:
            allowed -= names
        else:
            allowed |= names
    return allowed


def load_filters(settings: dict[str, str], allowed: set[str] | None) -> None:
    error = getattr(errno, settings.get("SystemCallErrorNumber", ""), None)
    families = settings.get("RestrictAddressFamilies", "").split()
    if families:
        numbers = {getattr(socket, name) for name in families}
        sockets = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        for family in range(0, 64):
            if family not in numbers:
                sockets.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
        sockets.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, 64))
        sockets.load()
    if settings.get("MemoryDenyWriteExecute") == "yes":
        # systemd's rules: no mapping both writable and executable, and nothing made executable afterwards.
        prot_exec, prot_write, shm_exec = 0x4, 0x2, 0o100000
        wx = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec | prot_write, prot_exec | prot_write))
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, prot_exec, prot_exec))
        wx.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, shm_exec, shm_exec))
        wx.load()
    if allowed is not None:
        # systemd's base: its own need to exec the service, then the list; anything else fails (or the process dies).
        calls = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error) if error else seccomp.KILL_PROCESS)
        for name in sorted(allowed | {"execve", "exit", "exit_group", "rt_sigreturn"}):
            try:
                calls.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError, OSError):
                pass  # not a system call on this architecture
        calls.load()  # last: it forbids seccomp(2) itself


def main() -> None:
    unit, overrides = sys.argv[1], sys.argv[2:]
    settings_list = service_section(unit)
    settings = dict(settings_list)  # the last of a repeated setting, except where the list is read
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    user = pwd.getpwnam(settings.get("User", "root"))
    group = grp.getgrnam(settings.get("Group", user.pw_name))
    env.update(USER=user.pw_name, LOGNAME=user.pw_name, HOME=user.pw_dir, SHELL=user.pw_shell)
    for key, value in settings_list:
        if key == "EnvironmentFile":
            optional, path = value.startswith("-"), value.lstrip("-")
            if os.path.exists(path) or not optional:
                env.update(read_environment_file(path))
        elif key == "Environment":
            env.update(word.split("=", 1) for word in unquote_words(value) if "=" in word)
    if state := settings.get("StateDirectory"):
        path = os.path.join("/var/lib", state)
        os.makedirs(path, exist_ok=True)
        os.chown(path, user.pw_uid, group.gr_gid)
        os.chmod(path, int(settings.get("StateDirectoryMode", "0755"), 8))
        env["STATE_DIRECTORY"] = path
    env.update(word.split("=", 1) for word in overrides)
    command = expand_command(settings["ExecStart"].lstrip("@-:+!"), env)

    os.chdir(settings.get("WorkingDirectory", "/"))
    os.umask(int(settings.get("UMask", "0022"), 8))
    libc = __import__("ctypes").CDLL(None, use_errno=True)
    if "CapabilityBoundingSet" in settings and not settings["CapabilityBoundingSet"].split():
        cap = 0
        while libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            cap += 1
    os.setgroups(os.getgrouplist(user.pw_name, group.gr_gid))
    os.setgid(group.gr_gid)
    os.setuid(user.pw_uid)
    if settings.get("NoNewPrivileges") == "yes" or "SystemCallFilter" in settings:
        assert libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    load_filters(settings, allowed_syscalls(settings_list))
    os.execve(command[0], command, env)


if __name__ == "__main__":
    main()
