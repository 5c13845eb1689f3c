import TesseraCore

/// `GET /{tenant}/devicelogin`: where a signed-in user enters the code a device shows, and approves it.
enum DeviceLoginPage {
    static func render(tenant: TenantRecord, userPrincipalName: String, userCode: String?) -> APIResponse {
        Page.render(title: "Sign in on a device – \(tenant.name)", style: """
          h1 { font-size: 1.4rem; margin: 0 0 .5rem; } p { color: #444; }
          input { width: 100%; box-sizing: border-box; padding: .6rem; font-size: 1.2rem; letter-spacing: .15em; border: 1px solid #bbb; border-radius: 6px; }

        """, body: """
        <main>
          <h1>Sign in on another device</h1>
          <p>Signed in as \(Page.escape(userPrincipalName)). Enter the code the device shows, and approve only if you started the sign-in there.</p>
          <input id="code" autocomplete="off" value="\(Page.escape(userCode ?? ""))">
          <button id="approve" type="button">Approve</button>
          <div id="status" role="status" aria-live="polite"></div>
        </main>
        """, script: """
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
        """)
    }
}
