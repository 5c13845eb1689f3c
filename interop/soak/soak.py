"""The soak: a mixed load against a running Tessera at a set rate (or at a share of a measured capacity), with an
optional fault part-way through, and a ledger of every acknowledged write checked at the end.

Kinds of work (each one "operation", retried as a real client would and timed from its start to its end):
  signin        the passkey sign-in ceremony the sign-in page drives: POST /{tenant}/login/passkey/options, then
                POST /{tenant}/login/passkey with a software authenticator's assertion (interop/webauthn/softauthn.py)
  token         POST /{tenant}/oauth2/v2.0/token, client credentials
  read          Graph GETs: an acknowledged user by id (a 404 there is a lost write, not a retry), a page of users,
                a group, a group's members
  create_user   POST /users, the userPrincipalName unique to the run and the write (the marker)
  create_group  POST /groups, the mailNickname the marker (Graph does not make it unique: a duplicate shows)
  update_user   PATCH /users/{id} jobTitle = the next number of that user's sequence
  add_member    POST /groups/{id}/members/$ref for a pair never added before
  delta         a loop of its own: GET /users/delta, then its deltaLink every 2 s; every acknowledged user must show
  snapshot      a configuration snapshot job (POST …/configurationSnapshots/createSnapshot, then its job until done)
                part-way through; --snapshot-command runs another (e.g. `tessera backup snapshot --now`) at the same time
  sync          a cross-tenant synchronization run (tenant A's job into tenant B on the same deployment) part-way
                through, when the soak has made both tenants (--data)

Retries: a refused or broken connection, a timeout, 429, 502, 503 or 504 are retryable: the client waits as
`Retry-After` says (else a short backoff) and tries again, up to --give-up seconds; every failed attempt is counted
by kind and reason. Anything else unexpected is a non-retryable error. Before a create is tried again the client
looks for its marker first (the earlier attempt may have been stored while its answer was lost) and adopts what it
finds, so retrying never makes a duplicate by itself; a PATCH is repeated with the same value; an add of a member
that answers "already exist" on a retry is taken as done.

The ledger, checked at the end: every acknowledged user and group is there once, by its id and with its marker
(lost, duplicates); every acknowledged membership is there; every user's jobTitle is at least its last
acknowledged value; the delta loop saw every user acknowledged after it started. Exit status 1 on any lost write,
duplicate, wrong answer or non-retryable error (2 on bad usage or a failed setup).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

HERE = Path(__file__).resolve().parent
INTEROP = HERE.parent
REPO_ROOT = INTEROP.parent
sys.path.insert(0, str(INTEROP))
sys.path.insert(0, str(INTEROP / "webauthn"))

from fido2.utils import websafe_decode  # noqa: E402
from fido2.webauthn import AuthenticatorData  # noqa: E402

import softauthn  # noqa: E402
from support import GRAPH_SCOPE, PASSWORD, Tenant  # noqa: E402

F = AuthenticatorData.FLAG
WEIGHTS = {"signin": 18, "token": 12, "read": 40, "create_user": 9, "create_group": 4, "update_user": 10, "add_member": 7}
RETRYABLE_STATUS = {429, 502, 503, 504}
SYNC_TEMPLATE = "518e5f48-1fc8-4c48-9387-9fdf28b0dfe7"  # Microsoft's cross-tenant synchronization template
CM = "admin/configurationManagement"


class Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class Fatal(Exception):
    """An answer a correct server never gives here (a wrong answer or an unexpected error)."""


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


# ------------------------------------------------------------------------------------------------------ statistics
class Stats:
    """Counts and times of every operation and every failed attempt, with when they happened (monotonic)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ok: dict[str, list[tuple[float, float]]] = defaultdict(list)   # kind -> (end time, seconds)
        self.retryable: list[tuple[float, str, str]] = []                  # (time, kind, reason)
        self.fatal: list[tuple[float, str, str]] = []
        self.lag: list[float] = []

    def success(self, kind: str, started: float, ended: float) -> None:
        with self.lock:
            self.ok[kind].append((ended, ended - started))

    def failed_attempt(self, kind: str, reason: str) -> None:
        with self.lock:
            self.retryable.append((time.monotonic(), kind, reason))

    def error(self, kind: str, reason: str) -> None:
        with self.lock:
            self.fatal.append((time.monotonic(), kind, reason))
        log(f"NON-RETRYABLE {kind}: {reason}")

    def window(self, start: float, end: float) -> dict:
        """Operations that ended in [start, end): per-kind counts and latencies, failures."""
        with self.lock:
            lat = {k: [s for t, s in v if start <= t < end] for k, v in self.ok.items()}
            retry = [r for r in self.retryable if start <= r[0] < end]
            fatal = [r for r in self.fatal if start <= r[0] < end]
        return {"latencies": lat, "retryable": retry, "fatal": fatal}


_LOG_LOCK = threading.Lock()
_T0 = time.monotonic()


def log(message: str) -> None:
    with _LOG_LOCK:
        print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------------ the client
class Client:
    """HTTP for the soak: one requests.Session per thread (keep-alive), Tessera's CA only, an admin token shared."""

    def __init__(self, base_url: str, ca: str, tenant: Tenant, stats: Stats, timeout: float):
        self.base_url, self.ca, self.tenant, self.stats, self.timeout = base_url.rstrip("/"), ca, tenant, stats, timeout
        self.local = threading.local()
        self.token_lock = threading.Lock()
        self.callers: list[tuple[str, str]] = [(tenant.client_id, tenant.client_secret)]
        self.next_caller = 0
        self.tokens: dict[int, tuple[str, int]] = {}  # caller -> (token, generation)

    def session(self) -> requests.Session:
        s = getattr(self.local, "session", None)
        if s is None:
            s = requests.Session()
            s.verify, s.trust_env = self.ca, False
            self.local.session = s
        return s

    def raw(self, method: str, url: str, **kw) -> requests.Response:
        """One attempt. Connection failures and 429/502/503/504 raise Retryable."""
        url = url if url.startswith("https://") else f"{self.base_url}/{url.lstrip('/')}"
        kw.setdefault("timeout", (5, self.timeout))
        try:
            r = self.session().request(method, url, **kw)
        except requests.Timeout as e:
            raise Retryable(f"timeout ({type(e).__name__})")
        except requests.ConnectionError as e:
            self.local.session = None  # start over with a new pool
            text = str(e)
            reason = ("connection refused" if "refused" in text.lower() else
                      "connection reset" if "reset" in text.lower() or "aborted" in text.lower() else
                      "connection closed" if "closed" in text.lower() or "RemoteDisconnected" in text else "connection error")
            raise Retryable(reason)
        if r.status_code in RETRYABLE_STATUS:
            retry_after = r.headers.get("Retry-After")
            try:
                wait = float(retry_after) if retry_after is not None else None
            except ValueError:
                wait = None
            raise Retryable(f"HTTP {r.status_code}" + (" with Retry-After" if retry_after else " without Retry-After")
                            + f" ({self.origin_of(r)})", wait)
        return r

    @staticmethod
    def origin_of(r: requests.Response) -> str:
        """Who answered: Tessera's errors are JSON with a code; a load balancer's are usually HTML."""
        if r.headers.get("Content-Type", "").startswith("application/json"):
            try:
                body = r.json()
                error = body.get("error")
                return str(error.get("code") if isinstance(error, dict) else error)
            except ValueError:
                pass
        return r.headers.get("Content-Type", "no body").split(";")[0] or "no body"

    def add_callers(self, credentials: list[tuple[str, str]]) -> None:
        """More apps of the tenant to call Graph as (each thread keeps one): Graph's throttle is per caller."""
        with self.token_lock:
            self.callers += credentials

    def caller(self) -> int:
        index = getattr(self.local, "caller", None)
        if index is None:
            with self.token_lock:
                index = self.local.caller = self.next_caller % len(self.callers)
                self.next_caller += 1
        return index

    def credentials(self) -> tuple[str, str]:
        return self.callers[self.caller()]

    def admin_token(self, renew_from: int | None = None) -> tuple[str, int]:
        index = self.caller()
        with self.token_lock:
            token, generation = self.tokens.get(index, (None, 0))
            if token is None or renew_from == generation:
                client_id, secret = self.callers[index]
                r = self.raw("POST", f"{self.tenant.tenant_id}/oauth2/v2.0/token", data={
                    "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": GRAPH_SCOPE})
                if r.status_code != 200:
                    raise Fatal(f"admin token: HTTP {r.status_code} {r.text[:300]}")
                token, generation = r.json()["access_token"], generation + 1
                self.tokens[index] = (token, generation)
            return token, generation

    def graph(self, method: str, path: str, **kw) -> requests.Response:
        token, generation = self.admin_token()
        headers = {**kw.pop("headers", {}), "Authorization": f"Bearer {token}"}
        r = self.raw(method, f"v1.0/{path.lstrip('/')}" if not path.startswith("https://") else path, headers=headers, **kw)
        if r.status_code == 401:
            self.admin_token(renew_from=generation)
            raise Retryable("HTTP 401 (token renewed)")
        return r

    def graph_ok(self, method: str, path: str, status: int = 200, **kw) -> dict:
        r = self.graph(method, path, **kw)
        if r.status_code != status:
            raise Fatal(f"{method} {path.split('?')[0][:80]}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content else {}

    def all_pages(self, path: str, params: dict) -> list[dict]:
        items, url, kw = [], path, {"params": params}
        while url:
            page = self.graph_ok("GET", url, **kw)
            items.extend(page["value"])
            url, kw = page.get("@odata.nextLink"), {}
        return items


def attempt_until_done(stats: Stats, kind: str, give_up: float, work) -> bool:
    """Runs work(attempt) until it returns, retrying Retryable as Retry-After says; True when it succeeded."""
    started, attempt = time.monotonic(), 0
    while True:
        attempt += 1
        try:
            work(attempt)
            stats.success(kind, started, time.monotonic())
            return True
        except Retryable as e:
            stats.failed_attempt(kind, e.reason)
            if time.monotonic() - started > give_up:
                stats.error(kind, f"gave up after {attempt} attempts in {time.monotonic() - started:.0f} s ({e.reason})")
                return False
            wait = e.retry_after if e.retry_after is not None else min(2.0, 0.05 * 2 ** min(attempt, 6))
            time.sleep(min(wait, 10.0) * random.uniform(0.8, 1.2))
        except Fatal as e:
            stats.error(kind, str(e))
            return False
        except Exception as e:  # noqa: BLE001 - a bug in the soak or a malformed answer: count it, keep going
            stats.error(kind, f"{type(e).__name__}: {e}")
            return False


# ------------------------------------------------------------------------------------------------------ the ledger
@dataclass
class Identity:
    user_id: str
    upn: str
    key: softauthn.SoftAuthenticator
    counter: int = 0


@dataclass
class Ledger:
    run: str
    domain: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: dict[str, str] = field(default_factory=dict)        # acknowledged id -> userPrincipalName
    groups: dict[str, str] = field(default_factory=dict)       # acknowledged id -> mailNickname
    adopted: int = 0                                           # creates found by their marker after a failed attempt
    members: set[tuple[str, str]] = field(default_factory=set)  # acknowledged (group, user)
    member_attempts: set[tuple[str, str]] = field(default_factory=set)
    job_titles: dict[str, int] = field(default_factory=dict)   # user id -> last acknowledged sequence
    job_attempts: dict[str, int] = field(default_factory=dict)  # user id -> highest sequence sent
    busy_users: set[str] = field(default_factory=set)
    user_list: list[str] = field(default_factory=list)
    group_list: list[str] = field(default_factory=list)
    team_groups: list[str] = field(default_factory=list)
    counter: int = 0
    delta_start_users: set[str] = field(default_factory=set)   # acknowledged before the delta loop began

    def next_marker(self, kind: str) -> str:
        with self.lock:
            self.counter += 1
            return f"soak{self.run}{kind}{self.counter}"

    def ack_user(self, user_id: str, upn: str, adopted: bool = False) -> None:
        with self.lock:
            if user_id not in self.users:
                self.users[user_id] = upn
                self.user_list.append(user_id)
            self.adopted += adopted

    def ack_group(self, group_id: str, nick: str, adopted: bool = False) -> None:
        with self.lock:
            if group_id not in self.groups:
                self.groups[group_id] = nick
                self.group_list.append(group_id)
            self.adopted += adopted


# ------------------------------------------------------------------------------------------------------ the load
class Load:
    def __init__(self, client: Client, ledger: Ledger, stats: Stats, identities: list[Identity], give_up: float,
                 origin: str):
        self.c, self.ledger, self.stats, self.give_up, self.origin = client, ledger, stats, give_up, origin
        self.identities: list[Identity] = identities
        self.free = list(identities)
        self.free_lock = threading.Lock()
        self.kinds = list(WEIGHTS)
        self.weights = [WEIGHTS[k] for k in self.kinds]

    def run_one(self, rng: random.Random) -> None:
        kind = rng.choices(self.kinds, self.weights)[0]
        getattr(self, kind)(rng)

    def attempt(self, kind: str, work) -> bool:
        return attempt_until_done(self.stats, kind, self.give_up, work)

    # -- sign-in and token
    def signin(self, rng: random.Random) -> None:
        with self.free_lock:
            identity = self.free.pop(rng.randrange(len(self.free))) if self.free else None
        if identity is None:
            return self.token(rng)
        tenant = self.c.tenant.tenant_id

        def work(_attempt: int) -> None:
            r = self.c.raw("POST", f"{tenant}/login/passkey/options", json={})
            if r.status_code != 200:
                raise Fatal(f"passkey options: HTTP {r.status_code} {r.text[:300]}")
            options = r.json()
            identity.counter += 1
            assertion = identity.key.get_assertion(
                websafe_decode(options["challenge"]), options["rpId"], self.origin, flags=F.UP | F.UV,
                counter=identity.counter, user_handle=identity.user_id.encode())
            r = self.c.raw("POST", f"{tenant}/login/passkey", json=assertion)
            if r.status_code != 200 or r.json().get("userId") != identity.user_id:
                raise Fatal(f"passkey sign-in: HTTP {r.status_code} {r.text[:300]}")
        try:
            self.attempt("signin", work)
        finally:
            with self.free_lock:
                self.free.append(identity)

    def token(self, _rng: random.Random) -> None:
        t = self.c.tenant
        client_id, secret = self.c.credentials()

        def work(_attempt: int) -> None:
            r = self.c.raw("POST", f"{t.tenant_id}/oauth2/v2.0/token", data={
                "grant_type": "client_credentials", "client_id": client_id, "client_secret": secret,
                "scope": GRAPH_SCOPE})
            if r.status_code != 200 or "access_token" not in r.json():
                raise Fatal(f"token: HTTP {r.status_code} {r.text[:300]}")
        self.attempt("token", work)

    # -- Graph reads
    def read(self, rng: random.Random) -> None:
        with self.ledger.lock:
            user = rng.choice(self.ledger.user_list) if self.ledger.user_list else None
            group = rng.choice(self.ledger.group_list) if self.ledger.group_list else None
        choice = rng.randrange(4)

        def work(_attempt: int) -> None:
            if choice == 0 and user:
                r = self.c.graph("GET", f"users/{user}", params={"$select": "id,userPrincipalName,jobTitle"})
                if r.status_code == 404:
                    raise Fatal(f"an acknowledged user is not found: {user}")
                if r.status_code != 200 or r.json().get("id") != user:
                    raise Fatal(f"GET users/{user}: HTTP {r.status_code} {r.text[:300]}")
            elif choice == 1 and group:
                r = self.c.graph("GET", f"groups/{group}", params={"$select": "id,displayName,mailNickname"})
                if r.status_code == 404:
                    raise Fatal(f"an acknowledged group is not found: {group}")
                if r.status_code != 200 or r.json().get("id") != group:
                    raise Fatal(f"GET groups/{group}: HTTP {r.status_code} {r.text[:300]}")
            elif choice == 2 and self.ledger.team_groups:
                self.c.graph_ok("GET", f"groups/{rng.choice(self.ledger.team_groups)}/members", params={"$select": "id", "$top": "50"})
            else:
                self.c.graph_ok("GET", "users", params={"$select": "id,displayName", "$top": "20"})
        self.attempt("read", work)

    # -- Graph writes
    def create_user(self, _rng: random.Random) -> None:
        nick = self.ledger.next_marker("u")
        upn = f"{nick}@{self.ledger.domain}"
        body = {"accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": upn,
                "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}}

        def adopt() -> bool:
            r = self.c.graph("GET", f"users/{upn}", params={"$select": "id,userPrincipalName"})
            if r.status_code == 200:
                self.ledger.ack_user(r.json()["id"], upn, adopted=True)
                return True
            if r.status_code != 404:
                raise Fatal(f"GET users/{upn}: HTTP {r.status_code} {r.text[:300]}")
            return False

        def work(attempt: int) -> None:
            if attempt > 1 and adopt():
                return
            r = self.c.graph("POST", "users", json=body)
            if r.status_code == 201:
                self.ledger.ack_user(r.json()["id"], upn)
            elif r.status_code == 400 and attempt > 1 and "already exists" in r.text and adopt():
                return
            else:
                raise Fatal(f"POST users: HTTP {r.status_code} {r.text[:300]}")
        self.attempt("create_user", work)

    def create_group(self, _rng: random.Random, team: bool = False) -> None:
        nick = self.ledger.next_marker("t" if team else "g")
        body = {"displayName": nick, "mailEnabled": False, "mailNickname": nick, "securityEnabled": True}

        def adopt() -> bool:
            found = self.c.graph_ok("GET", "groups", params={"$filter": f"mailNickname eq '{nick}'", "$select": "id"})["value"]
            for g in found:  # more than one is a duplicate: the final check reports it
                self.ledger.ack_group(g["id"], nick, adopted=True)
            if team and found:
                self.ledger.team_groups.append(found[0]["id"])
            return bool(found)

        def work(attempt: int) -> None:
            if attempt > 1 and adopt():
                return
            created = self.c.graph_ok("POST", "groups", 201, json=body)
            self.ledger.ack_group(created["id"], nick)
            if team:
                self.ledger.team_groups.append(created["id"])
        return self.attempt("create_group", work)

    def _take_user(self, rng: random.Random) -> str | None:
        with self.ledger.lock:
            for _ in range(8):
                if not self.ledger.user_list:
                    return None
                user = rng.choice(self.ledger.user_list)
                if user not in self.ledger.busy_users:
                    self.ledger.busy_users.add(user)
                    return user
        return None

    def update_user(self, rng: random.Random) -> None:
        user = self._take_user(rng)
        if user is None:
            return self.create_user(rng)
        try:
            with self.ledger.lock:
                sequence = self.ledger.job_attempts.get(user, 0) + 1
                self.ledger.job_attempts[user] = sequence

            def work(_attempt: int) -> None:
                self.c.graph_ok("PATCH", f"users/{user}", 204, json={"jobTitle": f"s{sequence}"})
                with self.ledger.lock:
                    self.ledger.job_titles[user] = max(sequence, self.ledger.job_titles.get(user, 0))
            self.attempt("update_user", work)
        finally:
            with self.ledger.lock:
                self.ledger.busy_users.discard(user)

    def add_member(self, rng: random.Random) -> None:
        with self.ledger.lock:
            pair = None
            for _ in range(8):
                if not self.ledger.user_list or not self.ledger.team_groups:
                    break
                candidate = (rng.choice(self.ledger.team_groups), rng.choice(self.ledger.user_list))
                if candidate not in self.ledger.member_attempts:
                    pair = candidate
                    self.ledger.member_attempts.add(pair)
                    break
        if pair is None:
            return self.create_user(rng)
        group, user = pair

        def work(attempt: int) -> None:
            r = self.c.graph("POST", f"groups/{group}/members/$ref",
                             json={"@odata.id": f"{self.c.base_url}/v1.0/directoryObjects/{user}"})
            if r.status_code == 204 or (r.status_code == 400 and attempt > 1 and "already exist" in r.text):
                with self.ledger.lock:
                    self.ledger.members.add(pair)
                return
            raise Fatal(f"POST groups/{group}/members/$ref: HTTP {r.status_code} {r.text[:300]}")
        self.attempt("add_member", work)


class DeltaLoop(threading.Thread):
    """GET /users/delta to the end, then its deltaLink every `interval` seconds; remembers every id it saw."""

    def __init__(self, client: Client, stats: Stats, give_up: float, interval: float = 2.0):
        super().__init__(daemon=True, name="delta")
        self.c, self.stats, self.give_up, self.interval = client, stats, give_up, interval
        self.seen: set[str] = set()
        self.link: str | None = None
        self.stop = threading.Event()
        self.rounds = 0

    def one_round(self) -> bool:
        url, params = (self.link, None) if self.link else ("users/delta", {"$select": "id,userPrincipalName"})
        while True:
            page: dict = {}

            def work(_attempt: int) -> None:
                page.update(self.c.graph_ok("GET", url, params=params))
            if not attempt_until_done(self.stats, "delta", self.give_up, work):
                return False
            self.seen.update(v["id"] for v in page["value"] if "@removed" not in v)
            if page.get("@odata.nextLink"):
                url, params = page["@odata.nextLink"], None
                continue
            self.link = page["@odata.deltaLink"]
            self.rounds += 1
            return True

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.one_round()


# ------------------------------------------------------------------------------------------------------ rate driver
class Driver:
    """Open loop: operations start at `rate` a second on a pool of worker threads, whatever the answers' speed."""

    def __init__(self, load: Load, workers: int, seed: int):
        self.load = load
        self.rate = 0.0
        self.tickets = threading.Semaphore(0)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.backlog = 0
        self.dropped = 0
        self.in_flight = 0
        self.threads = [threading.Thread(target=self.work, args=(random.Random(seed + i),), daemon=True, name=f"w{i}")
                        for i in range(workers)]
        self.ticker = threading.Thread(target=self.tick, daemon=True, name="ticker")
        self.max_backlog = workers * 4

    def start(self, rate: float) -> None:
        self.rate = rate
        for t in self.threads:
            t.start()
        self.ticker.start()

    def tick(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            rate = self.rate
            if rate <= 0:
                time.sleep(0.05)
                next_at = time.monotonic()
                continue
            next_at += 1.0 / rate
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            with self.lock:
                if self.backlog >= self.max_backlog:
                    self.dropped += 1  # the workers cannot keep up: the offered rate is above what this side can drive
                    continue
                self.backlog += 1
            self.tickets.release()

    def work(self, rng: random.Random) -> None:
        while True:
            self.tickets.acquire()
            if self.stopping.is_set():
                return
            with self.lock:
                self.backlog -= 1
                self.in_flight += 1
            try:
                self.load.run_one(rng)
            finally:
                with self.lock:
                    self.in_flight -= 1

    def stop(self, wait: float) -> None:
        self.rate = 0
        self.stopping.set()
        for _ in self.threads:
            self.tickets.release()
        deadline = time.monotonic() + wait
        for t in self.threads:
            t.join(max(0.0, deadline - time.monotonic()))


# ------------------------------------------------------------------------------------------------------ setup
def create_tenant(binary: str, data: str, database: str | None, name: str, domain: str) -> Tenant:
    command = [binary, "tenant", "create", "--data", data, "--name", name, "--domain", domain, "--json"]
    if database:
        command += ["--database", database]
    p = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        raise SystemExit(f"soak: {' '.join(command)} exited {p.returncode}: {p.stderr or p.stdout}")
    line = next(line for line in reversed(p.stdout.splitlines()) if line.strip().startswith("{"))
    return Tenant.from_json(json.loads(line))


def enrol(client: Client, ledger: Ledger, origin: str, count: int) -> list[Identity]:
    """`count` users with a passkey each (registered through Graph's fido2Methods, as an administrator would)."""
    identities = []
    for i in range(count):
        nick = ledger.next_marker("p")
        upn = f"{nick}@{ledger.domain}"
        user = client.graph_ok("POST", "users", 201, json={
            "accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": upn,
            "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}})
        ledger.ack_user(user["id"], upn)
        key = softauthn.SoftAuthenticator("ES256")
        options = client.graph_ok("GET", f"users/{user['id']}/authentication/fido2Methods/creationOptions")["publicKey"]
        credential = key.make_credential(websafe_decode(options["challenge"]), options["rp"]["id"], origin,
                                         flags=F.UP | F.UV | F.AT)
        client.graph_ok("POST", f"users/{user['id']}/authentication/fido2Methods", 201,
                        json={"displayName": "soak key", "publicKeyCredential": credential})
        identities.append(Identity(user["id"], upn, key))
    return identities


def with_retries(stats: Stats, kind: str, give_up: float, fn):
    box: dict = {}

    def work(_attempt: int) -> None:
        box["value"] = fn()
    if not attempt_until_done(stats, kind, give_up, work):
        raise SystemExit(f"soak: setup step {kind} failed")
    return box.get("value")


class SyncRun:
    """Tenant A's cross-tenant synchronization job into tenant B on the same deployment (users assigned through a
    group): set up before the load, started part-way through it, its users checked in B at the end."""

    def __init__(self, client: Client, target: Client, ledger: Ledger, stats: Stats, give_up: float):
        self.c, self.target, self.ledger, self.stats, self.give_up = client, target, ledger, stats, give_up
        self.sp_id = self.job_id = self.group_id = None
        self.in_scope: list[str] = []
        self.result: dict = {}

    def setup(self, people: int = 20) -> None:
        c = self.c
        made = c.graph_ok("POST", f"applicationTemplates/{SYNC_TEMPLATE}/instantiate", 201,
                          json={"displayName": f"soak {self.ledger.run} sync"})
        self.sp_id = made["servicePrincipal"]["id"]
        role = made["servicePrincipal"]["appRoles"][0]["id"]
        self.job_id = c.graph_ok("POST", f"servicePrincipals/{self.sp_id}/synchronization/jobs", 201,
                                 json={"templateId": "Azure2Azure"})["id"]
        nick = self.ledger.next_marker("s")
        group = c.graph_ok("POST", "groups", 201, json={"displayName": nick, "mailEnabled": False, "mailNickname": nick,
                                                        "securityEnabled": True})
        self.ledger.ack_group(group["id"], nick)
        self.group_id = group["id"]
        c.graph_ok("POST", f"servicePrincipals/{self.sp_id}/appRoleAssignedTo", 201,
                   json={"principalId": group["id"], "resourceId": self.sp_id, "appRoleId": role})
        for _ in range(people):
            nick = self.ledger.next_marker("s")
            upn = f"{nick}@{self.ledger.domain}"
            user = c.graph_ok("POST", "users", 201, json={
                "accountEnabled": True, "displayName": nick, "mailNickname": nick, "userPrincipalName": upn,
                "passwordProfile": {"forceChangePasswordNextSignIn": False, "password": PASSWORD}})
            self.ledger.ack_user(user["id"], upn)
            c.graph_ok("POST", f"groups/{group['id']}/members/$ref", 204,
                       json={"@odata.id": f"{c.base_url}/v1.0/directoryObjects/{user['id']}"})
            self.ledger.members.add((group["id"], user["id"]))
            self.in_scope.append(nick)
        c.graph_ok("PUT", f"servicePrincipals/{self.sp_id}/synchronization/secrets", 204, json={"value": [
            {"key": "AuthenticationType", "value": "SyncPolicy"}, {"key": "CompanyId", "value": self.target.tenant.tenant_id},
            {"key": "SyncAll", "value": "false"}]})
        source = self.c.tenant.tenant_id
        self.target.graph_ok("POST", "policies/crossTenantAccessPolicy/partners", 201, json={"tenantId": source})
        self.target.graph_ok("PUT", f"policies/crossTenantAccessPolicy/partners/{source}/identitySynchronization", 204,
                             json={"displayName": "soak source", "userSyncInbound": {"isSyncAllowed": True}})
        self.target.graph_ok("PATCH", f"policies/crossTenantAccessPolicy/partners/{source}", 204,
                             json={"automaticUserConsentSettings": {"inboundAllowed": True}})

    def run(self) -> None:
        """Starts the job (its first cycle runs before the answer) and reads its status until it has run."""
        jobs = f"servicePrincipals/{self.sp_id}/synchronization/jobs/{self.job_id}"

        def start(_attempt: int) -> None:
            self.c.graph_ok("POST", f"{jobs}/start", 204)
        started = time.monotonic()
        if not attempt_until_done(self.stats, "sync", self.give_up, start):
            return
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status: dict = {}

            def read(_attempt: int) -> None:
                status.update(self.c.graph_ok("GET", jobs)["status"])
            if not attempt_until_done(self.stats, "read", self.give_up, read):
                return
            state = (status.get("lastExecution") or {}).get("state")
            if state in ("Succeeded", "Failed") or status.get("code") == "Quarantine":
                self.result = {"state": state, "code": status.get("code"), "seconds": round(time.monotonic() - started, 2)}
                log(f"sync run: {self.result}")
                return
            time.sleep(1)
        self.result = {"state": "not finished in 120 s"}

    def check(self) -> list[str]:
        """The users in scope arrived in the target (as B2B users named after their home UPN)."""
        if self.result.get("state") != "Succeeded":
            return [f"sync run did not succeed: {self.result}"]
        arrived = self.target.all_pages("users", {"$select": "userPrincipalName", "$top": "999"})
        names = {u["userPrincipalName"].split("_")[0] for u in arrived}
        missing = [n for n in self.in_scope if n not in names]
        return [f"sync: {len(missing)} users in scope did not arrive in the target: {missing[:5]}"] if missing else []


def snapshot_run(client: Client, stats: Stats, give_up: float, out: dict) -> None:
    """A configuration snapshot job (createSnapshot, then the job until it has finished)."""
    started = time.monotonic()
    job: dict = {}

    def create(attempt: int) -> None:
        if attempt > 1 and job.get("id"):
            return
        job.update(client.graph_ok("POST", f"{CM}/configurationSnapshots/createSnapshot", 200, json={
            "displayName": "soak snapshot", "description": "taken under load",
            "resources": ["microsoft.entra.conditionalaccesspolicy", "microsoft.entra.authenticationmethodpolicy",
                          "microsoft.entra.user", "microsoft.entra.group"]}))
    if not attempt_until_done(stats, "snapshot", give_up, create):
        out["state"] = "not created"
        return
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        current: dict = {}

        def read(_attempt: int) -> None:
            current.update(client.graph_ok("GET", f"{CM}/configurationSnapshotJobs/{job['id']}"))
        if not attempt_until_done(stats, "read", give_up, read):
            break
        if current.get("status") in ("succeeded", "failed", "partiallySuccessful"):
            out.update(state=current["status"], seconds=round(time.monotonic() - started, 2))
            log(f"configuration snapshot job: {out}")
            return
        time.sleep(1)
    out["state"] = "not finished"


def snapshot_client(admin: Client, stats: Stats, give_up: float) -> Client:
    """An app of the tenant granted ConfigurationMonitoring.ReadWrite.All (the admin app does not hold it)."""
    def make() -> Client:
        app = admin.graph_ok("POST", "applications", 201, json={"displayName": f"soak-snapshots-{uuid.uuid4().hex[:6]}"})
        sp = admin.graph_ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
        secret = admin.graph_ok("POST", f"applications/{app['id']}/addPassword", 200,
                                json={"passwordCredential": {"displayName": "soak"}})["secretText"]
        graph_sp = admin.graph_ok("GET", "servicePrincipals",
                                  params={"$filter": "appId eq '00000003-0000-0000-c000-000000000000'"})["value"][0]
        for permission in ("ConfigurationMonitoring.ReadWrite.All", "Policy.Read.All", "User.Read.All", "Group.Read.All"):
            role = next((r for r in graph_sp["appRoles"] if r["value"] == permission), None)
            if role:
                admin.graph_ok("POST", f"servicePrincipals/{sp['id']}/appRoleAssignments", 201,
                               json={"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": role["id"]})
        t = admin.tenant
        return Client(admin.base_url, admin.ca, Tenant(t.tenant_id, t.domain, t.admin_upn, app["appId"], secret),
                      stats, admin.timeout)
    return with_retries(stats, "setup", give_up, make)


def extra_callers(admin: Client, count: int) -> list[tuple[str, str]]:
    """`count` more apps of the tenant with the permissions the load needs, as an administrator grants them."""
    graph_sp = admin.graph_ok("GET", "servicePrincipals",
                              params={"$filter": "appId eq '00000003-0000-0000-c000-000000000000'"})["value"][0]
    roles = {r["value"]: r["id"] for r in graph_sp["appRoles"]}
    made = []
    for _ in range(count):
        app = admin.graph_ok("POST", "applications", 201, json={"displayName": f"soak-caller-{uuid.uuid4().hex[:6]}"})
        sp = admin.graph_ok("POST", "servicePrincipals", 201, json={"appId": app["appId"]})
        secret = admin.graph_ok("POST", f"applications/{app['id']}/addPassword", 200,
                                json={"passwordCredential": {"displayName": "soak"}})["secretText"]
        for permission in ("Directory.ReadWrite.All", "User.ReadWrite.All", "Group.ReadWrite.All"):
            admin.graph_ok("POST", f"servicePrincipals/{sp['id']}/appRoleAssignments", 201,
                           json={"principalId": sp["id"], "resourceId": graph_sp["id"], "appRoleId": roles[permission]})
        made.append((app["appId"], secret))
    return made


# ------------------------------------------------------------------------------------------------------ phases
def measure_window(stats: Stats, start: float, end: float) -> dict:
    w = stats.window(start, end)
    all_lat = [s for v in w["latencies"].values() for s in v]
    return {"throughput": len(all_lat) / max(1e-9, end - start), "p99": percentile(all_lat, 99),
            "p50": percentile(all_lat, 50), "errors": len(w["retryable"]) + len(w["fatal"]), "ops": len(all_lat)}


def find_capacity(driver: Driver, stats: Stats, start_rate: float, factor: float, step_seconds: float,
                  p99_limit: float | None, max_steps: int) -> tuple[float, list[dict]]:
    """Raises the offered rate step by step until a step breaks: the answers fall behind (less than 95% of the
    offered rate achieved, or the client's queue full), the p99 passes the limit (by default ten times the first
    step's p99, at least 100 ms), or anything fails. The capacity is the throughput of the last good step."""
    steps, best, rate, limit = [], 0.0, start_rate, p99_limit

    def step(rate: float) -> bool:
        nonlocal limit
        driver.rate = rate
        time.sleep(1.0)  # let the previous step's backlog clear out of the window
        start = time.monotonic()
        dropped_before = driver.dropped
        time.sleep(step_seconds)
        m = measure_window(stats, start, time.monotonic())
        if limit is None:
            limit = max(0.1, 10 * m["p99"])
        m.update(offered=round(rate, 1), dropped=driver.dropped - dropped_before, p99Limit=round(limit, 3))
        good = m["errors"] == 0 and m["p99"] <= limit and m["throughput"] >= 0.95 * rate and m["dropped"] == 0
        m["good"] = good
        steps.append(m)
        log(f"capacity step: offered {rate:.1f}/s achieved {m['throughput']:.1f}/s p50 {m['p50'] * 1000:.0f} ms "
            f"p99 {m['p99'] * 1000:.0f} ms (limit {limit * 1000:.0f}) errors {m['errors']} dropped {m['dropped']} "
            f"-> {'ok' if good else 'breaks'}")
        return good

    for _ in range(max_steps):
        if not step(rate):
            break
        best = steps[-1]["throughput"]
        rate *= factor
    if best > 0 and step(best * factor ** 0.5):  # one step between the last good one and the one that broke
        best = steps[-1]["throughput"]
    driver.rate = 0
    return best, steps


def final_check(client: Client, ledger: Ledger, delta: DeltaLoop | None, sync: SyncRun | None) -> dict:
    """Reads the whole directory back and compares it with the ledger."""
    prefix = f"soak{ledger.run}"
    users = client.all_pages("users", {"$select": "id,userPrincipalName,jobTitle", "$top": "999"})
    groups = client.all_pages("groups", {"$select": "id,mailNickname", "$top": "999"})
    by_id = {u["id"]: u for u in users}
    group_by_id = {g["id"]: g for g in groups}
    upn_count: dict[str, int] = defaultdict(int)
    for u in users:
        upn_count[u["userPrincipalName"].lower()] += 1
    nick_count: dict[str, int] = defaultdict(int)
    for g in groups:
        if (g.get("mailNickname") or "").startswith(prefix):
            nick_count[g["mailNickname"]] += 1

    problems: list[str] = []
    lost_users = [i for i, upn in ledger.users.items() if i not in by_id or by_id[i]["userPrincipalName"].lower() != upn.lower()]
    lost_groups = [i for i, nick in ledger.groups.items() if i not in group_by_id or group_by_id[i]["mailNickname"] != nick]
    dup_users = {upn: n for upn, n in upn_count.items() if n > 1}
    dup_groups = {nick: n for nick, n in nick_count.items() if n > 1}
    if lost_users:
        problems.append(f"{len(lost_users)} acknowledged users lost: {lost_users[:5]}")
    if lost_groups:
        problems.append(f"{len(lost_groups)} acknowledged groups lost: {lost_groups[:5]}")
    if dup_users or dup_groups:
        problems.append(f"duplicates: users {list(dup_users.items())[:5]} groups {list(dup_groups.items())[:5]}")

    lost_members = []
    for group in {g for g, _ in ledger.members}:
        present = {m["id"] for m in client.all_pages(f"groups/{group}/members", {"$select": "id", "$top": "999"})}
        lost_members += [(g, u) for g, u in ledger.members if g == group and u not in present]
    if lost_members:
        problems.append(f"{len(lost_members)} acknowledged memberships lost: {lost_members[:5]}")

    stale_updates = []
    for user, sequence in ledger.job_titles.items():
        title = (by_id.get(user) or {}).get("jobTitle") or "s0"
        value = int(title[1:]) if title.startswith("s") and title[1:].isdigit() else -1
        if not sequence <= value <= ledger.job_attempts.get(user, 0):
            stale_updates.append((user, title, sequence))
    if stale_updates:
        problems.append(f"{len(stale_updates)} acknowledged updates lost: {stale_updates[:5]}")

    delta_missed = []
    if delta is not None:
        delta.one_round()
        delta_missed = [i for i in ledger.users if i not in ledger.delta_start_users and i not in delta.seen]
        if delta_missed:
            problems.append(f"delta never showed {len(delta_missed)} acknowledged users: {delta_missed[:5]}")
    if sync is not None:
        problems += sync.check()

    landed = sum(1 for u in users if u["userPrincipalName"].lower().startswith(prefix) and u["id"] not in ledger.users) + \
        sum(1 for g in groups if (g.get("mailNickname") or "").startswith(prefix) and g["id"] not in ledger.groups)
    return {"acknowledged": {"users": len(ledger.users), "groups": len(ledger.groups), "memberships": len(ledger.members),
                             "updates": len(ledger.job_titles), "adoptedAfterFailedAttempt": ledger.adopted},
            "lost": len(lost_users) + len(lost_groups) + len(lost_members) + len(stale_updates),
            "duplicates": sum(n - 1 for n in dup_users.values()) + sum(n - 1 for n in dup_groups.values()),
            "deltaMissed": len(delta_missed), "unacknowledgedButStored": landed, "problems": problems}


def recovery(stats: Stats, fault_at: float | None) -> dict:
    """From the first failed attempt after the fault to the first operation that succeeded with no failure after it."""
    if fault_at is None:
        return {}
    with stats.lock:
        failures = sorted(t for t, _, _ in stats.retryable + stats.fatal if t >= fault_at)
        ends = sorted(t for v in stats.ok.values() for t, _ in v if t >= fault_at)
    if not failures:
        return {"failedAttempts": 0, "recoverySeconds": 0.0}
    first, last = failures[0], failures[-1]
    recovered = next((t for t in ends if t > last), None)
    return {"failedAttempts": len(failures), "firstFailureAfterFaultSeconds": round(first - fault_at, 2),
            "recoverySeconds": round((recovered or last) - first, 2) if recovered else None}


def summarize(stats: Stats, start: float, end: float) -> dict:
    w = stats.window(start, end)
    kinds = {}
    for kind in sorted(set(w["latencies"]) | {k for _, k, _ in w["retryable"] + w["fatal"]}):
        lat = w["latencies"].get(kind, [])
        if not lat and not any(k == kind for _, k, _ in w["retryable"] + w["fatal"]):
            continue
        kinds[kind] = {"ok": len(lat), "p50ms": round(percentile(lat, 50) * 1000, 1), "p99ms": round(percentile(lat, 99) * 1000, 1),
                       "maxms": round(max(lat, default=0) * 1000, 1),
                       "retryableFailures": sum(1 for _, k, _ in w["retryable"] if k == kind),
                       "errors": sum(1 for _, k, _ in w["fatal"] if k == kind)}
    reasons: dict[str, int] = defaultdict(int)
    for _, _, reason in w["retryable"]:
        reasons[reason] += 1
    fatal: dict[str, int] = defaultdict(int)
    for _, kind, reason in w["fatal"]:
        fatal[f"{kind}: {reason[:160]}"] += 1
    total = sum(v["ok"] for v in kinds.values())
    return {"seconds": round(end - start, 1), "operations": total, "perSecond": round(total / max(1e-9, end - start), 1),
            "kinds": kinds, "retryableReasons": dict(reasons), "errors": dict(fatal)}


def print_summary(report: dict) -> None:
    run = report["run"]
    print(f"\nsoak {report['runId']} against {report['url']}: {run['seconds']} s at {report['rate']}/s offered, "
          f"{run['operations']} operations ({run['perSecond']}/s; {run['droppedTicks']} starts dropped with the client's "
          f"queue full); fault: {report['fault']}")
    if report.get("capacity"):
        print(f"capacity: {report['capacity']['perSecond']:.1f} operations/s; ran at {report['rate']}/s")
    print("\n| kind | ok | p50 ms | p99 ms | max ms | retryable failures | errors |\n|---|---|---|---|---|---|---|")
    for kind, k in run["kinds"].items():
        print(f"| {kind} | {k['ok']} | {k['p50ms']} | {k['p99ms']} | {k['maxms']} | {k['retryableFailures']} | {k['errors']} |")
    if run["retryableReasons"]:
        print("retryable failures by reason: " + ", ".join(f"{r} {n}" for r, n in sorted(run["retryableReasons"].items())))
    for reason, n in run["errors"].items():
        print(f"NON-RETRYABLE x{n}: {reason}")
    if report.get("faultResult"):
        f = report["faultResult"]
        print(f"fault '{report['fault']}' at {f['atSeconds']} s: command exit {f.get('exit')} in {f.get('commandSeconds')} s; "
              f"failed attempts {f.get('failedAttempts')}, time to recover {f.get('recoverySeconds')} s "
              f"(first failure {f.get('firstFailureAfterFaultSeconds', '-')} s after the fault)")
    for name in ("snapshot", "sync", "snapshotCommand"):
        if report.get(name):
            print(f"{name}: {report[name]}")
    ledger = report["ledger"]
    print(f"ledger: acknowledged {ledger['acknowledged']}; lost {ledger['lost']}; duplicates {ledger['duplicates']}; "
          f"delta missed {ledger['deltaMissed']}; stored without an acknowledgement {ledger['unacknowledgedButStored']}")
    for problem in ledger["problems"]:
        print(f"PROBLEM: {problem}")
    print(f"client CPU {report['clientCpuSeconds']} s over {report['wallSeconds']} s ({run['clientCpuShare']} of a core during "
          f"the measured run); load average at the end {report['loadAverage']}")
    print("RESULT: " + ("PASS" if report["pass"] else "FAIL"))


# ------------------------------------------------------------------------------------------------------ main
def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", required=True, help="the Tessera (or its load balancer), e.g. https://127.0.0.1:8443")
    p.add_argument("--ca", help="the CA that signed its certificate (default: DATA/tls/ca.pem)")
    p.add_argument("--data", help="a data folder of the deployment: the soak makes its own tenants there with `tessera tenant create`")
    p.add_argument("--database", help="the deployment's database URL, for `tenant create` (default: SQLite in --data)")
    p.add_argument("--tenant-json", help="instead of --data: the output of `tessera tenant create --json` to run as")
    p.add_argument("--bin", default=os.environ.get("TESSERA_BIN") or str(REPO_ROOT / ".build" / "debug" / "tessera"))
    p.add_argument("--minutes", type=float, default=10.0, help="the measured run (default 10)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=float, help="operations a second (default 20)")
    rate.add_argument("--find-capacity", action="store_true", help="first find the capacity, then run at --share of it")
    p.add_argument("--share", type=float, default=0.8, help="of the capacity found (default 0.8)")
    p.add_argument("--step-seconds", type=float, default=15.0, help="length of each capacity step (default 15)")
    p.add_argument("--start-rate", type=float, default=20.0, help="first capacity step (default 20/s, x1.4 a step)")
    p.add_argument("--p99-limit", type=float, help="a capacity step breaks past this p99 in seconds (default: ten "
                                                   "times the first step's, at least 0.1)")
    p.add_argument("--fault", choices=["none", "kill-node", "kill-primary", "rolling-restart"], default="none")
    p.add_argument("--fault-command", help="shell command run at --fault-at of the run (needed with --fault)")
    p.add_argument("--fault-at", type=float, default=0.4, help="when, as a share of the run (default 0.4)")
    p.add_argument("--snapshot-command", help="a shell command run at the same time as the snapshot job, e.g. "
                                              "`tessera backup snapshot --now --data DATA`")
    p.add_argument("--no-snapshot", action="store_true", help="no configuration snapshot job during the run")
    p.add_argument("--no-sync", action="store_true", help="no cross-tenant synchronization run during the run")
    p.add_argument("--passkey-users", type=int, default=12)
    p.add_argument("--callers", type=int, default=4, help="apps calling Graph and asking for tokens, one a thread "
                                                          "(Graph throttles per caller; default 4)")
    p.add_argument("--workers", type=int, default=48, help="client threads (default 48)")
    p.add_argument("--give-up", type=float, default=120.0, help="seconds an operation keeps retrying (default 120)")
    p.add_argument("--timeout", type=float, default=30.0, help="read timeout of one attempt in seconds (default 30)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="also write the report as JSON to this file")
    args = p.parse_args(argv)
    if args.fault != "none" and not args.fault_command:
        p.error("--fault needs --fault-command")
    if not args.tenant_json and not args.data:
        p.error("give --data (the soak makes its tenants) or --tenant-json")
    if not args.ca and not args.data:
        p.error("give --ca (or --data, whose tls/ca.pem is used)")
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    run_id = uuid.uuid4().hex[:6]
    base_url = args.url.rstrip("/")
    ca = args.ca or str(Path(args.data) / "tls" / "ca.pem")
    parts = urlsplit(base_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    stats = Stats()
    wall_start = time.monotonic()
    cpu_start = resource.getrusage(resource.RUSAGE_SELF)

    target = None
    if args.tenant_json:
        text = Path(args.tenant_json).read_text()
        tenant = Tenant.from_json(json.loads(next(line for line in reversed(text.splitlines()) if line.strip().startswith("{"))))
    else:
        tenant = create_tenant(args.bin, args.data, args.database, f"Soak {run_id}", f"soak-{run_id}.test")
        if not args.no_sync:
            target = create_tenant(args.bin, args.data, args.database, f"Soak target {run_id}", f"soak-target-{run_id}.test")
    log(f"run {run_id}: tenant {tenant.tenant_id} ({tenant.domain}) at {base_url}")
    client = Client(base_url, ca, tenant, stats, args.timeout)
    ledger = Ledger(run_id, tenant.domain)
    identities = with_retries(stats, "setup", args.give_up, lambda: enrol(client, ledger, origin, args.passkey_users))
    load = Load(client, ledger, stats, identities, args.give_up, origin)
    for _ in range(6):
        with_retries(stats, "setup", args.give_up, lambda: load.create_group(random.Random(), team=True))
    sync = None
    if target is not None:
        sync = SyncRun(client, Client(base_url, ca, target, stats, args.timeout), ledger, stats, args.give_up)
        with_retries(stats, "setup", args.give_up, sync.setup)
    snapshots = None if args.no_snapshot else snapshot_client(client, stats, args.give_up)
    if args.callers > 1:
        client.add_callers(with_retries(stats, "setup", args.give_up, lambda: extra_callers(client, args.callers - 1)))
    with ledger.lock:
        ledger.delta_start_users = set(ledger.users)
    delta = DeltaLoop(client, stats, args.give_up)
    if not delta.one_round():
        raise SystemExit("soak: the first delta round failed")
    log(f"set up: {len(identities)} passkey users, {len(ledger.team_groups)} groups for members"
        f"{', a sync job' if sync else ''}{', a snapshot app' if snapshots else ''}, {len(client.callers)} Graph callers")

    driver = Driver(load, args.workers, args.seed)
    driver.start(0)
    report: dict = {"runId": run_id, "url": base_url, "fault": args.fault}
    if args.find_capacity:
        capacity, steps = find_capacity(driver, stats, args.start_rate, 1.4, args.step_seconds, args.p99_limit, 14)
        if capacity <= 0:
            log("capacity: the first step already broke; running at the start rate's share")
            capacity = args.start_rate
        report["capacity"] = {"perSecond": round(capacity, 1), "steps": steps}
        rate = round(capacity * args.share, 1)
        time.sleep(3)  # the ramp's backlog and slow answers drain before the measured run
    else:
        rate = args.rate or 20.0
    report["rate"] = rate

    duration = args.minutes * 60
    events: list[threading.Thread] = []
    fault_result: dict = {}
    snapshot_result: dict = {}
    snapshot_command: dict = {}

    def run_fault() -> None:
        fault_result["started"] = time.monotonic()
        log(f"fault {args.fault}: {args.fault_command}")
        p = subprocess.run(args.fault_command, shell=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        fault_result.update(exit=p.returncode, commandSeconds=round(time.monotonic() - fault_result["started"], 2),
                            output=(p.stdout + p.stderr)[-2000:])
        log(f"fault command exited {p.returncode} after {fault_result['commandSeconds']} s: {(p.stdout + p.stderr).strip()[-300:]}")

    def run_snapshot_command() -> None:
        started = time.monotonic()
        p = subprocess.run(args.snapshot_command, shell=True, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        snapshot_command.update(command=args.snapshot_command, exit=p.returncode, seconds=round(time.monotonic() - started, 2),
                                output=(p.stdout + p.stderr)[-500:])
        log(f"snapshot command exited {p.returncode} after {snapshot_command['seconds']} s")

    schedule: list[tuple[float, callable]] = []
    if args.fault != "none":
        schedule.append((args.fault_at, run_fault))
    if snapshots is not None:
        schedule.append((0.25, lambda: snapshot_run(snapshots, stats, args.give_up, snapshot_result)))
    if args.snapshot_command:
        schedule.append((0.25, run_snapshot_command))
    if sync is not None:
        schedule.append((0.5 if args.fault == "none" else min(0.9, args.fault_at + 0.1), sync.run))
    schedule.sort(key=lambda s: s[0])

    log(f"measured run: {duration:.0f} s at {rate}/s with {args.workers} workers; fault {args.fault}")
    run_start = time.monotonic()
    run_cpu = resource.getrusage(resource.RUSAGE_SELF)
    dropped_before = driver.dropped
    driver.rate = rate
    delta.start()
    for share, action in schedule:
        time.sleep(max(0.0, run_start + share * duration - time.monotonic()))
        thread = threading.Thread(target=action, daemon=True)
        thread.start()
        events.append(thread)
    time.sleep(max(0.0, run_start + duration - time.monotonic()))
    run_end = time.monotonic()
    end_cpu = resource.getrusage(resource.RUSAGE_SELF)
    client_cpu_run = end_cpu.ru_utime + end_cpu.ru_stime - run_cpu.ru_utime - run_cpu.ru_stime
    log("measured run over; waiting for operations in flight and scheduled work")
    driver.stop(wait=args.give_up + 30)
    delta.stop.set()
    delta.join(args.give_up + 30)
    for thread in events:
        thread.join(args.give_up + 300)

    report["run"] = summarize(stats, run_start, max(run_end, time.monotonic()))
    report["run"]["seconds"] = round(run_end - run_start, 1)
    report["run"]["perSecond"] = round(report["run"]["operations"] / max(1e-9, run_end - run_start), 1)
    report["run"]["droppedTicks"] = driver.dropped - dropped_before
    report["run"]["clientCpuShare"] = round(client_cpu_run / max(1e-9, run_end - run_start), 2)
    report["setupAndRamp"] = summarize(stats, wall_start, run_start)
    if fault_result:
        fault_result.update(recovery(stats, fault_result["started"]))
        fault_result["atSeconds"] = round(fault_result.pop("started") - run_start, 1)
        report["faultResult"] = fault_result
    report["snapshot"] = snapshot_result or None
    report["snapshotCommand"] = snapshot_command or None
    report["sync"] = sync.result if sync else None
    report["deltaRounds"] = delta.rounds

    log("checking the ledger against the directory")
    report["ledger"] = with_retries(stats, "check", args.give_up, lambda: final_check(client, ledger, delta, sync))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    report["clientCpuSeconds"] = round(cpu.ru_utime + cpu.ru_stime - cpu_start.ru_utime - cpu_start.ru_stime, 1)
    report["wallSeconds"] = round(time.monotonic() - wall_start, 1)
    report["loadAverage"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    errors = len(stats.fatal)  # the ramp's too: overload may be retryable, never a wrong answer
    fault_ok = not fault_result or fault_result.get("exit") == 0
    side_ok = all(r.get("state") in (None, "succeeded", "Succeeded") for r in (snapshot_result, report["sync"] or {})) and \
        (not snapshot_command or snapshot_command.get("exit") == 0)
    report["nonRetryableErrors"] = errors
    report["pass"] = bool(errors == 0 and not report["ledger"]["problems"] and fault_ok and side_ok)
    print_summary(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
