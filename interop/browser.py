"""Headless Chromium for the passkey tests: the driver, CDP virtual authenticators, the scripts the tests run on
Tessera's pages, and a client's redirect URI that records where the browser was sent."""
from __future__ import annotations

import http.server
import os
import threading
import time
import urllib.parse
from contextlib import contextmanager

# A platform authenticator that holds discoverable credentials and verifies the user (Chromium's recipe).
CTAP2 = {"protocol": "ctap2", "transport": "internal", "hasResidentKey": True, "hasUserVerification": True,
         "isUserVerified": True, "automaticPresenceSimulation": True}

# Registers a passkey for a user through Graph from the page's origin: arguments userId, an admin token, and
# optionally the attestation conveyance to ask the authenticator for instead of Tessera's ("none": no attestation).
REGISTER = """
const args = [...arguments], done = args.pop(), [userId, token, conveyance] = args;
(async () => {
  window.cancelAutofill();  // the sign-in page's conditional (autofill) request is pending
  const headers = { "authorization": "Bearer " + token, "content-type": "application/json" };
  const options = await (await fetch(`/v1.0/users/${userId}/authentication/fido2Methods/creationOptions`, { headers })).json();
  if (conveyance) options.publicKey.attestation = conveyance;
  const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey) });
  const r = await fetch(`/v1.0/users/${userId}/authentication/fido2Methods`, { method: "POST", headers,
      body: JSON.stringify({ displayName: "Chromium passkey", publicKeyCredential: credential.toJSON() }) });
  return { status: r.status, body: await r.json() };
})().then(done, e => done({ error: String(e) }));
"""
SIGN_IN = "const done = arguments[0]; window.signInWithPasskey().then(done, e => done({ error: String(e) }));"
USE_ACCESS_PASS = "const done = arguments[0]; window.useAccessPass().then(done);"
APPROVE_DEVICE = "const done = arguments[0]; window.approveDevice().then(done);"


@contextmanager
def chromium(*extra_args: str):
    """Headless Chromium (Debian's, with its chromedriver), collecting the console log."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--window-size=900,700", *extra_args):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")), options=opts)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def add_authenticator(driver, synced: bool = False) -> str:
    """A new virtual authenticator on the current page; synced sets the backup flags (BE, BS)."""
    driver.execute_cdp_cmd("WebAuthn.enable", {"enableUI": False})
    options = dict(CTAP2, defaultBackupEligibility=synced, defaultBackupState=synced)
    return driver.execute_cdp_cmd("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]


def remove_authenticator(driver, aid: str) -> None:
    driver.execute_cdp_cmd("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": aid})


def register_passkey(driver, login_url: str, user_id: str, token: str, synced: bool = False) -> str:
    """A fresh browser session on a tenant's sign-in page with a new virtual authenticator, and a passkey registered
    on it for the user through Graph (an admin's token). Returns the authenticator's id: remove it when done."""
    driver.delete_all_cookies()
    driver.get(login_url)
    aid = add_authenticator(driver, synced)
    registered = driver.execute_async_script(REGISTER, user_id, token)
    if registered.get("status") != 201:
        remove_authenticator(driver, aid)
        raise AssertionError(f"passkey registration refused: {registered}")
    return aid


def wait_for_text(driver, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in driver.page_source and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in driver.page_source, f"'{text}' never appeared at {driver.current_url}"


def click(driver, element_id: str, timeout: float = 15) -> None:
    """Clicks the element with that id once the page shows it (a consent page's Accept)."""
    deadline = time.monotonic() + timeout
    while not driver.find_elements("id", element_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    driver.find_element("id", element_id).click()


class Callback:
    """A client's redirect URI: a tiny HTTP server that records the queries (or form posts) the browser brings to
    /callback."""

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.startswith("/callback"):  # not the browser's /favicon.ico
                    received.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"signed in")

            def do_POST(self):  # noqa: N802  (response_mode=form_post): recorded as if it were the query
                length = int(self.headers.get("Content-Length") or 0)
                form = self.rfile.read(length).decode()
                if self.path.startswith("/callback"):
                    received.append(self.path.split("?")[0] + "?" + form)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"signed in")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.httpd.server_address[1]}/callback"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> dict:
        """The query of the `count`-th visit, once it has come."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.received) == count, f"{len(self.received)} visits to the redirect URI, expected {count}"
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.received[-1]).query))

    def close(self):
        self.httpd.shutdown()
