"""Real Chromium as a WebAuthn client: a tiny page server and Selenium with CDP virtual authenticators.

    with Chromium() as c:
        aid = c.add_authenticator(CTAP2_SYNCED)
        reg = c.register(attestation="none", user_verification="required")   # {"challenge", "response", ...}
        auth = c.login(user_verification="required", allow=[reg["response"]["id"]])
        c.set_override_bits(aid, isBogusSignature=True)

The page is served from 127.0.0.1 but opened as http://localhost:PORT: `localhost` is a secure context, so
WebAuthn works without TLS, and the RP ID is "localhost". The page holds no logic of its own: Python builds the
options JSON (with a fresh challenge), the page runs PublicKeyCredential.parseCreationOptionsFromJSON() /
parseRequestOptionsFromJSON(), navigator.credentials.create()/get(), and hands back the credential's toJSON().

Needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver; override with
CHROMIUM_BIN / CHROMEDRIVER_BIN) and selenium. Note for importers: this folder must stay without __init__.py,
or `import webauthn` (py_webauthn) would find this folder instead when interop/ is on sys.path.
"""
from __future__ import annotations

import base64
import http.server
import os
import secrets
import threading

RP_ID = "localhost"
RP_NAME = "Tessera interop"

# Virtual authenticator options (CDP WebAuthn.VirtualAuthenticatorOptions).
CTAP2_SYNCED = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
                "isUserVerified": True, "automaticPresenceSimulation": True,
                "defaultBackupEligibility": True, "defaultBackupState": True}
CTAP2_DEVICE_BOUND = {k: v for k, v in CTAP2_SYNCED.items() if not k.startswith("defaultBackup")}
U2F_USB = {"protocol": "u2f", "transport": "usb", "hasResidentKey": False, "hasUserVerification": False,
           "automaticPresenceSimulation": True}

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>Tessera WebAuthn interop</title></head><body>
<script>
function fail(e) { return {error: (e && e.name ? e.name + ": " : "") + String(e && e.message || e)}; }
async function doCreate(o) {
  try {
    const c = await navigator.credentials.create({publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(o)});
    return {response: c.toJSON()};
  } catch (e) { return fail(e); }
}
async function doGet(o) {
  try {
    const c = await navigator.credentials.get({publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o)});
    return {response: c.toJSON()};
  } catch (e) { return fail(e); }
}
</script></body></html>"""


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = PAGE if self.path.split("?")[0] == "/" else b"not found"
        self.send_response(200 if body is PAGE else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8" if body is PAGE else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class PageServer:
    """The page on 127.0.0.1:<free port>; `origin` is http://localhost:<port>."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.port = self.httpd.server_address[1]
        self.origin = f"http://localhost:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="webauthn-page", daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class ChromiumError(RuntimeError):
    pass


class Chromium:
    """Headless Chromium on the page, with the CDP WebAuthn domain enabled (no UI)."""

    def __init__(self, chromium: str | None = None, chromedriver: str | None = None, timeout: float = 30):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.server = PageServer()
        self.origin = self.server.origin
        self.rp_id = RP_ID
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium or os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions"):
            opts.add_argument(arg)
        service = Service(chromedriver or os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
        try:
            self.driver = webdriver.Chrome(service=service, options=opts)
        except BaseException:
            self.server.close()
            raise
        try:
            self.driver.set_script_timeout(timeout)
            self.driver.get(self.origin + "/")
            self.cdp("WebAuthn.enable", {"enableUI": False})
        except BaseException:
            self.close()
            raise
        self.version = self.driver.capabilities.get("browserVersion", "unknown")
        self.driver_version = (self.driver.capabilities.get("chrome") or {}).get("chromedriverVersion", "unknown")
        self.authenticators: list[str] = []

    # ---------------------------------------------------------------- lifecycle
    def close(self):
        try:
            self.driver.quit()
        finally:
            self.server.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- CDP
    def cdp(self, method: str, params: dict | None = None) -> dict:
        return self.driver.execute_cdp_cmd(method, params or {})

    def add_authenticator(self, options: dict) -> str:
        """Add a virtual authenticator; it is the only one (earlier ones are removed), so it is the one used."""
        for aid in list(self.authenticators):
            self.remove_authenticator(aid)
        aid = self.cdp("WebAuthn.addVirtualAuthenticator", {"options": dict(options)})["authenticatorId"]
        self.authenticators.append(aid)
        return aid

    def remove_authenticator(self, aid: str) -> None:
        self.cdp("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": aid})
        self.authenticators.remove(aid)

    def set_override_bits(self, aid: str, **bits: bool) -> None:
        """isBogusSignature, isBadUV, isBadUP (all false when called without bits)."""
        self.cdp("WebAuthn.setResponseOverrideBits", {"authenticatorId": aid, **bits})

    def credentials(self, aid: str) -> list[dict]:
        return self.cdp("WebAuthn.getCredentials", {"authenticatorId": aid})["credentials"]

    # ---------------------------------------------------------------- ceremonies
    def _run(self, function: str, options: dict) -> dict:
        result = self.driver.execute_async_script(
            f"{function}(arguments[0]).then(arguments[arguments.length - 1])", options)
        if not isinstance(result, dict) or "response" not in result:
            raise ChromiumError(f"{function} failed: {result!r}")
        return result["response"]

    def register(self, *, attestation: str = "none", user_verification: str = "required",
                 resident_key: str = "required", algorithms=(-7, -257), user_name: str = "alice",
                 challenge: bytes | None = None) -> dict:
        """navigator.credentials.create(); returns {"challenge", "options", "response": toJSON()}."""
        challenge = challenge or secrets.token_bytes(32)
        options = {
            "rp": {"id": self.rp_id, "name": RP_NAME},
            "user": {"id": b64u(secrets.token_bytes(16)), "name": user_name, "displayName": user_name.title()},
            "challenge": b64u(challenge),
            "pubKeyCredParams": [{"type": "public-key", "alg": a} for a in algorithms],
            "timeout": 30000,
            "attestation": attestation,
            "authenticatorSelection": {"residentKey": resident_key,
                                       "requireResidentKey": resident_key == "required",
                                       "userVerification": user_verification},
            "excludeCredentials": [],
        }
        return {"challenge": b64u(challenge), "options": options, "response": self._run("doCreate", options)}

    def login(self, *, user_verification: str = "required", allow: list[str] | None = None,
              challenge: bytes | None = None) -> dict:
        """navigator.credentials.get(); allow = credential ids (base64url), or None for a discoverable login."""
        challenge = challenge or secrets.token_bytes(32)
        options = {
            "challenge": b64u(challenge),
            "rpId": self.rp_id,
            "timeout": 30000,
            "userVerification": user_verification,
            "allowCredentials": [{"type": "public-key", "id": cid} for cid in (allow or [])],
        }
        return {"challenge": b64u(challenge), "options": options, "response": self._run("doGet", options)}


# ------------------------------------------------------------------------------ turning results into inputs
def parse_auth_data(auth_data: bytes) -> dict:
    """rpIdHash, flags, signCount and (when AT is set) aaguid, credentialId and the COSE key bytes."""
    import cbor2

    flags = auth_data[32]
    out = {
        "rpIdHash": auth_data[:32],
        "flags": flags,
        "up": bool(flags & 0x01), "uv": bool(flags & 0x04), "be": bool(flags & 0x08), "bs": bool(flags & 0x10),
        "at": bool(flags & 0x40), "ed": bool(flags & 0x80),
        "signCount": int.from_bytes(auth_data[33:37], "big"),
    }
    if out["at"]:
        aaguid = auth_data[37:53]
        length = int.from_bytes(auth_data[53:55], "big")
        cred_id = auth_data[55:55 + length]
        rest = auth_data[55 + length:]
        # The COSE key is the first CBOR item of the rest; its exact bytes are what an RP stores.
        decoder = cbor2.CBORDecoder(__import__("io").BytesIO(rest))
        decoder.decode()
        key_len = decoder.fp.tell()
        h = aaguid.hex()
        out.update(aaguid=f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", credentialId=cred_id,
                   publicKey=rest[:key_len], extensionsAndTrailing=rest[key_len:])
    return out


def parse_attestation_object(att_obj: bytes) -> dict:
    import cbor2

    obj = cbor2.loads(att_obj)
    return {"fmt": obj["fmt"], "attStmt": obj["attStmt"], "authData": obj["authData"],
            "parsed": parse_auth_data(obj["authData"]), "canonical": cbor2.dumps(obj, canonical=True) == att_obj}


def signature_valid(public_key_cose: bytes, response: dict) -> bool:
    """Whether an assertion's signature verifies over authenticatorData || SHA-256(clientDataJSON)."""
    import hashlib

    from cryptography.exceptions import InvalidSignature
    from webauthn.helpers import decode_credential_public_key, decoded_public_key_to_cryptography, verify_signature

    r = response["response"]
    decoded = decode_credential_public_key(public_key_cose)
    data = b64u_decode(r["authenticatorData"]) + hashlib.sha256(b64u_decode(r["clientDataJSON"])).digest()
    try:
        verify_signature(public_key=decoded_public_key_to_cryptography(decoded), signature_alg=decoded.alg,
                         signature=b64u_decode(r["signature"]), data=data)
        return True
    except InvalidSignature:
        return False


def registration_input(reg: dict, origin: str, *, require_uv: bool, rp_id: str = RP_ID) -> dict:
    return {"rpId": rp_id, "origins": [origin], "challenge": reg["challenge"],
            "requireUserVerification": require_uv, "response": reg["response"]}


def stored_credential(reg: dict) -> dict:
    """What an RP keeps after a registration: the authentication input's "credential"."""
    att = parse_attestation_object(b64u_decode(reg["response"]["response"]["attestationObject"]))
    p = att["parsed"]
    return {"id": b64u(p["credentialId"]), "publicKey": b64u(p["publicKey"]), "signCount": p["signCount"],
            "backupEligible": p["be"]}


def authentication_input(auth: dict, credential: dict, origin: str, *, require_uv: bool,
                         rp_id: str = RP_ID, user_handle: str | None = None) -> dict:
    cred = dict(credential)
    if user_handle:
        cred["userHandle"] = user_handle
    return {"rpId": rp_id, "origins": [origin], "challenge": auth["challenge"], "requireUserVerification": require_uv,
            "credential": cred, "response": auth["response"]}
