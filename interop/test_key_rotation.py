"""Signing-key rotation and keys at rest, against a running `tessera serve` with a key-encryption key: MSAL and
azure-identity keep getting tokens and PyJWT (PyJWKClient, fetching the JWKS once) keeps validating them before, during
and after `tessera keys rotate` run as a separate command on the server's data folder; a wrong key-encryption key is
refused; the proxy seals the tenant's inspection CA with the same key; a server without one says its keys are stored
unencrypted."""
from __future__ import annotations

import base64
import os
import ssl
import subprocess
import threading
import time
from pathlib import Path

import jwt
import msal
import requests
from azure.identity import ClientSecretCredential

from conftest import REPO_ROOT
from support import GRAPH_AUDIENCE, GRAPH_SCOPE, first_start

BINARY = os.environ.get("TESSERA_BIN", str(REPO_ROOT / ".build" / "debug" / "tessera"))


def _key_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    path.chmod(0o600)
    return path


def _keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([BINARY, "keys", *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _msal(server: dict) -> msal.ConfidentialClientApplication:
    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    # A cache of its own per client: every acquire asks the server, so tokens signed after the rotation are seen.
    return msal.ConfidentialClientApplication(server["client"], client_credential=server["secret"],
                                              authority=f"{server['url']}/{server['tenant']}", instance_discovery=False,
                                              http_client=session, token_cache=msal.TokenCache())


def _validator(server: dict):
    """PyJWT as a relying party: the issuer's JWKS through PyJWKClient (fetched once and cached; fetched again only
    for a kid it does not know), signature, audience, issuer and lifetime checked."""
    session = requests.Session()
    session.verify, session.trust_env = server["ca"], False
    meta = session.get(f"{server['url']}/{server['tenant']}/v2.0/.well-known/openid-configuration").json()
    client = jwt.PyJWKClient(meta["jwks_uri"], ssl_context=ssl.create_default_context(cafile=server["ca"]))
    fetches = []
    fetch = client.fetch_data
    client.fetch_data = lambda: fetches.append(1) or fetch()

    def validate(token: str) -> dict:
        key = client.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=GRAPH_AUDIENCE, issuer=meta["issuer"],
                          options={"require": ["exp", "iat", "nbf", "iss", "aud"]})
    return validate, fetches, session, meta["jwks_uri"]


def _kids(session: requests.Session, jwks_uri: str) -> list[str]:
    return [k["kid"] for k in session.get(jwks_uri).json()["keys"]]


def test_tokens_keep_validating_across_a_rotation(tmp_path):
    """Before, during and after `tessera keys rotate`: tokens from MSAL and azure-identity validate with PyJWT, whose
    JWKS, fetched once before the rotation, already holds the key that signs after it."""
    kek = _key_file(tmp_path, "kek")
    with first_start(BINARY, "tessera-rotation-", "--key-encryption-key-file", str(kek)) as server:
        assert "stored unencrypted" not in server["printed"]
        data = str(server["data"])
        validate, fetches, session, jwks_uri = _validator(server)
        app = _msal(server)
        credential = ClientSecretCredential(server["tenant"], server["client"], server["secret"], authority=server["url"],
                                            disable_instance_discovery=True, connection_verify=server["ca"])

        # Before: the current key signs, the next one is already published.
        current, upcoming = _kids(session, jwks_uri)
        before = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
        assert jwt.get_unverified_header(before)["kid"] == current
        assert validate(before)["tid"] == server["tenant"]
        assert validate(credential.get_token(GRAPH_SCOPE).token)["aud"] == GRAPH_AUDIENCE

        # During: clients keep asking for tokens and validating them while the command rotates the keys.
        failures, seen, stop = [], set(), threading.Event()

        def keep_going():
            while not stop.is_set():
                try:
                    token = _msal(server).acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
                    validate(token)
                    seen.add(jwt.get_unverified_header(token)["kid"])
                except Exception as error:  # noqa: BLE001 - every failure is reported below
                    failures.append(repr(error))
                time.sleep(0.05)
        worker = threading.Thread(target=keep_going, daemon=True)
        worker.start()
        time.sleep(0.5)
        rotated = _keys("rotate", "--data", data, "--key-encryption-key-file", str(kek))
        assert rotated.returncode == 0, rotated.stderr
        assert f"current\t{upcoming}" in rotated.stdout and f"previous\t{current}" in rotated.stdout, rotated.stdout
        # The running server takes the new ring within about a second.
        deadline, after = time.monotonic() + 10, None
        while time.monotonic() < deadline:
            after = _msal(server).acquire_token_for_client(scopes=[GRAPH_SCOPE])["access_token"]
            if jwt.get_unverified_header(after)["kid"] == upcoming:
                break
            time.sleep(0.2)
        time.sleep(0.5)
        stop.set()
        worker.join(timeout=30)
        assert not failures, failures[:5]
        assert {current, upcoming} <= seen, seen

        # After: the new key signs; the token the previous key signed still validates; the JWKS was fetched once, as
        # the key that signs now was in it before the rotation.
        assert jwt.get_unverified_header(after)["kid"] == upcoming
        assert validate(after)["tid"] == server["tenant"]
        assert validate(before)["tid"] == server["tenant"]
        assert validate(credential.get_token(GRAPH_SCOPE, force_refresh=True).token)["aud"] == GRAPH_AUDIENCE
        assert len(fetches) == 1, fetches
        kids = _kids(session, jwks_uri)
        assert kids[0] == upcoming and current in kids and len(kids) == 3, kids
        graph = session.get(f"{server['url']}/v1.0/organization", headers={"Authorization": f"Bearer {before}"})
        assert graph.status_code == 200, graph.text
        credential.close()

        # A wrong key-encryption key is refused, by the command and by a second server on the same data, loudly.
        wrong = _key_file(tmp_path, "wrong")
        listed = _keys("list", "--data", data, "--key-encryption-key-file", str(wrong))
        assert listed.returncode != 0 and "does not open the stored keys" in listed.stderr, listed
        refused = subprocess.run([BINARY, "serve", "--data", data, "--port", "0", "--key-encryption-key-file", str(wrong)],
                                 capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert refused.returncode != 0 and "does not open the stored keys" in refused.stdout + refused.stderr, refused
        # The right one still opens them (nothing was overwritten).
        listed = _keys("list", "--data", data, "--key-encryption-key-file", str(kek))
        assert listed.returncode == 0 and f"current\t{upcoming}" in listed.stdout, listed
        # Other commands that open the deployment take the key the same way, and say so without it.
        create = [BINARY, "tenant", "create", "--data", data, "--name", "Fabrikam", "--domain", "fabrikam-rotation.test", "--json"]
        env = {k: v for k, v in os.environ.items() if k != "TESSERA_KEY_ENCRYPTION_KEY"}
        without = subprocess.run(create, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
        assert without.returncode != 0 and "the stored keys are encrypted" in without.stderr, without
        created = subprocess.run(create, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                                 env={**env, "TESSERA_KEY_ENCRYPTION_KEY": kek.read_text().strip()})
        assert created.returncode == 0, created.stderr

        # The proxy takes the key the same way: the tenant's TLS inspection CA it makes is stored encrypted, as
        # `keys list` says (never printing a key), and a wrong key is refused.
        ca_out = tmp_path / "inspection-ca.pem"
        proxy = [BINARY, "proxy", "--data", data, "--tenant", server["tenant"], "--inspection-ca-out", str(ca_out)]
        made = subprocess.run(proxy + ["--key-encryption-key-file", str(kek)], capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        assert made.returncode == 0 and "BEGIN CERTIFICATE" in ca_out.read_text(), made
        listed = _keys("list", "--data", data, "--key-encryption-key-file", str(kek))
        assert listed.returncode == 0, listed
        assert f"encrypted\t{server['tenant']}/tlsInspectionCertificateAuthority" in listed.stdout, listed.stdout
        assert "plain\t" not in listed.stdout and "PRIVATE" not in listed.stdout, listed.stdout
        refused = subprocess.run(proxy + ["--key-encryption-key-file", str(wrong)], capture_output=True, text=True, timeout=120,
                                 stdin=subprocess.DEVNULL)
        assert refused.returncode != 0 and "does not open the stored keys" in refused.stderr, refused


def test_without_a_key_encryption_key_serve_says_keys_are_unencrypted():
    with first_start(BINARY, "tessera-plain-keys-") as server:
        assert "stored unencrypted" in server["printed"], server["printed"]


def test_keys_generate_then_rewrap_to_a_new_key(tmp_path):
    """The README's commands for the key-encryption key: `tessera keys generate > kek` makes one (base64 of 32 random
    bytes, a new one each time); serve seals the keys with it; once the node has stopped, `tessera keys rewrap --old-key-file
    OLD --new-key-file NEW` seals them again: the new key opens them, the old one no longer does, and serve starts with
    the new one signing with the same key as before."""
    from support import serve_on_a_free_port, stop_serve

    made = [subprocess.run([BINARY, "keys", "generate"], capture_output=True, text=True, timeout=60, check=True).stdout for _ in range(2)]
    assert all(len(base64.b64decode(text.strip(), validate=True)) == 32 for text in made) and made[0] != made[1], made
    old, new = tmp_path / "kek", tmp_path / "kek-new"
    for path, text in ((old, made[0]), (new, made[1])):
        path.write_text(text)
        path.chmod(0o600)
    data = tmp_path / "data"
    proc, _, _ = serve_on_a_free_port(lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port),
                                                    "--key-encryption-key-file", str(old)])
    stop_serve(proc)
    before = _keys("list", "--data", str(data), "--key-encryption-key-file", str(old))
    assert before.returncode == 0 and "encrypted\t_deployment/signingKey" in before.stdout, before
    current = next(line for line in before.stdout.splitlines() if line.startswith("current\t"))

    rewrapped = _keys("rewrap", "--data", str(data), "--old-key-file", str(old), "--new-key-file", str(new))
    assert rewrapped.returncode == 0 and "_deployment/signingKey" in rewrapped.stdout, rewrapped
    after = _keys("list", "--data", str(data), "--key-encryption-key-file", str(new))
    assert after.returncode == 0 and current in after.stdout.splitlines() and "plain\t" not in after.stdout, after
    refused = _keys("list", "--data", str(data), "--key-encryption-key-file", str(old))
    assert refused.returncode != 0 and "does not open the stored keys" in refused.stderr, refused
    proc, printed, _ = serve_on_a_free_port(lambda port: [BINARY, "serve", "--data", str(data), "--port", str(port),
                                                          "--key-encryption-key-file", str(new)])
    try:
        assert "listening on" in printed and "stored unencrypted" not in printed, printed
    finally:
        stop_serve(proc, data)
