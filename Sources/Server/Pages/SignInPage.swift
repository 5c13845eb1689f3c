import TesseraCore

/// The sign-in page (`GET /{tenant}/login`): server-rendered, no build step. It offers passkeys through
/// conditional mediation (the browser's autofill on the username field) and a "Sign in with a passkey" button
/// (discoverable credentials: no username needed), onboarding with a Temporary Access Pass, and sends the browser
/// back to the authorization request that brought it (`continue`).
enum SignInPage {
    static func render(tenant: TenantRecord) -> APIResponse {
        Page.render(title: "Sign in – \(tenant.name)", style: """
          h1 { font-size: 1.4rem; margin: 0 0 .25rem; } p.org { color: #555; margin: 0 0 1.5rem; }
          label { display: block; font-size: .9rem; margin-bottom: .35rem; }
          details { margin-top: 1.5rem; font-size: .95rem; } summary { cursor: pointer; color: #0f6cbd; }
          button.secondary { background: #e8eef7; color: #0f3d73; } label.spaced { margin-top: .8rem; }

        """, body: """
        <main>
          <h1>Sign in</h1>
          <p class="org">\(Page.escape(tenant.name))</p>
          <label for="username">Username</label>
          <input id="username" name="username" type="text" autocomplete="username webauthn" placeholder="someone@\(Page.escape(tenant.domain))">
          <button id="passkey" type="button">Sign in with a passkey</button>
          <details id="onboarding">
            <summary>New here? Use a Temporary Access Pass</summary>
            <label for="tap" class="spaced">Temporary Access Pass</label>
            <input id="tap" name="tap" type="password" autocomplete="one-time-code">
            <button id="tapbutton" class="secondary" type="button">Sign in and create a passkey</button>
          </details>
          <div id="status" role="status" aria-live="polite"></div>
        </main>
        """, script: """
        const base = location.pathname.replace(/\\/login\\/?$/, "");
        const statusBox = document.getElementById("status");
        const params = new URLSearchParams(location.search);
        const next = params.get("continue");
        if (params.get("login_hint")) document.getElementById("username").value = params.get("login_hint");
        function show(text, ok) { statusBox.textContent = text; statusBox.className = ok ? "ok" : "error"; }
        async function requestOptions(hint) {
          const r = await fetch(base + "/login/passkey/options", { method: "POST", headers: { "content-type": "application/json" },
                                                                 body: JSON.stringify(hint ? { loginHint: hint } : {}) });
          if (!r.ok) throw new Error("The sign-in service did not answer.");
          const o = await r.json();
          return PublicKeyCredential.parseRequestOptionsFromJSON({ challenge: o.challenge, rpId: o.rpId, timeout: o.timeout,
                                                                    userVerification: o.userVerification, allowCredentials: o.allowCredentials });
        }
        async function finish(credential) {
          const r = await fetch(base + "/login/passkey" + (next ? "?continue=" + encodeURIComponent(next) : ""),
                                { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(credential.toJSON()) });
          const answer = await r.json();
          if (r.ok) show("Signed in as " + answer.userPrincipalName, true);
          else show(answer.error_description || "Sign-in failed.", false);
          // Back to the application that asked, once the caller has seen the answer.
          if (r.ok && answer.redirect) setTimeout(() => location.assign(answer.redirect), 50);
          return answer;
        }
        let pending = null;
        async function autofill() {
          if (!window.PublicKeyCredential || !PublicKeyCredential.isConditionalMediationAvailable ||
              !(await PublicKeyCredential.isConditionalMediationAvailable())) return;
          pending = new AbortController();
          try {
            const publicKey = await requestOptions();
            const credential = await navigator.credentials.get({ publicKey, mediation: "conditional", signal: pending.signal });
            await finish(credential);
          } catch (e) {
            if (e.name !== "AbortError") show(e.message || String(e), false);
          }
        }
        async function signInWithPasskey() {
          if (pending) { pending.abort(); pending = null; }
          try {
            const publicKey = await requestOptions(document.getElementById("username").value.trim());
            return await finish(await navigator.credentials.get({ publicKey }));
          } catch (e) {
            show(e.name === "NotAllowedError" ? "The passkey prompt was closed or timed out." : (e.message || String(e)), false);
            return { error: String(e) };
          }
        }
        const json = { "content-type": "application/json" };
        async function useAccessPass() {
          if (pending) { pending.abort(); pending = null; }
          try {
            const username = document.getElementById("username").value.trim();
            const pass = document.getElementById("tap").value.trim();
            const r = await fetch(base + "/login/tap", { method: "POST", headers: json, body: JSON.stringify({ username, temporaryAccessPass: pass }) });
            const granted = await r.json();
            if (!r.ok) { show(granted.error_description || "The Temporary Access Pass was not accepted.", false); return granted; }
            show("Temporary Access Pass accepted: create your passkey.", true);
            const enrollment = { userId: granted.userId, enrollmentToken: granted.enrollmentToken };
            const o = await fetch(base + "/login/enroll/options", { method: "POST", headers: json, body: JSON.stringify(enrollment) });
            const options = await o.json();
            if (!o.ok) { show((options.error && options.error.message) || "Passkey registration is not available.", false); return options; }
            const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey) });
            const e = await fetch(base + "/login/enroll", { method: "POST", headers: json,
                                                           body: JSON.stringify({ ...enrollment, credential: credential.toJSON() }) });
            const method = await e.json();
            if (e.ok) show("Passkey created. Sign in with it now.", true);
            else show((method.error && method.error.message) || "The passkey was not registered.", false);
            return method;
          } catch (e) {
            show(e.message || String(e), false);
            return { error: String(e) };
          }
        }
        window.useAccessPass = useAccessPass;
        document.getElementById("tapbutton").addEventListener("click", useAccessPass);
        window.signInWithPasskey = signInWithPasskey;
        // Stops the pending autofill request (a page may run one WebAuthn request at a time).
        window.cancelAutofill = () => { if (pending) { pending.abort(); pending = null; } };
        document.getElementById("passkey").addEventListener("click", signInWithPasskey);
        autofill();
        """)
    }
}
