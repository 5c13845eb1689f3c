import TesseraCore

/// `GET /{tenant}/devicelogin`: where a signed-in user enters the code a device shows, and approves it.
enum DeviceLoginPage {
    static func render(tenant: TenantRecord, userPrincipalName: String, userCode: String?) -> APIResponse {
        let nonce = Secrets.randomToken(bytes: 16)
        let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sign in on a device – \(SignInPage.escape(tenant.name))</title>
        <style nonce="\(nonce)">
          body { font-family: system-ui, sans-serif; background: #f3f4f6; margin: 0; display: grid; place-items: center; min-height: 100vh; }
          main { background: white; padding: 2.5rem; border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); width: 22rem; }
          h1 { font-size: 1.4rem; margin: 0 0 .5rem; } p { color: #444; }
          input { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1.2rem; letter-spacing: .15em; border: 1px solid #bbb; border-radius: 6px; }
          button { margin-top: 1rem; width: 100%; padding: .7rem; font-size: 1rem; border: 0; border-radius: 6px; background: #0f6cbd; color: white; }
          #status { margin-top: 1rem; } #status.ok { color: #0a7d32; } #status.error { color: #b00020; }
        </style>
        </head>
        <body>
        <main>
          <h1>Sign in on another device</h1>
          <p>Signed in as \(SignInPage.escape(userPrincipalName)). Enter the code the device shows, and approve only if you started the sign-in there.</p>
          <input id="code" autocomplete="off" value="\(SignInPage.escape(userCode ?? ""))">
          <button id="approve" type="button">Approve</button>
          <div id="status" role="status" aria-live="polite"></div>
        </main>
        <script nonce="\(nonce)">
        "use strict";
        async function approve() {
          const r = await fetch(location.pathname, { method: "POST", headers: { "content-type": "application/json" },
                                                     body: JSON.stringify({ userCode: document.getElementById("code").value }) });
          const answer = await r.json();
          const box = document.getElementById("status");
          box.textContent = r.ok ? "Approved. You can return to your device." : "That code is not valid or has expired.";
          box.className = r.ok ? "ok" : "error";
          return answer;
        }
        window.approveDevice = approve;
        document.getElementById("approve").addEventListener("click", approve);
        </script>
        </body>
        </html>
        """
        return APIResponse(status: 200, headers: [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", "default-src 'none'; script-src 'nonce-\(nonce)'; style-src 'nonce-\(nonce)'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"),
            ("X-Frame-Options", "DENY"), ("Cache-Control", "no-store"),
        ], body: Array(html.utf8))
    }
}
