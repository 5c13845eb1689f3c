import Foundation
import TesseraCore

/// The end session endpoint's pages: the question before a sign-out no app proved it asked for, the signed-out page
/// (with the front-channel logout iframes, then on to the app), and the refusal of a request that cannot be trusted.
enum LogoutPage {
    static let style = """
      h1 { font-size: 1.3rem; margin: 0 0 .5rem; } p { color: #444; } dl { font-size: .85rem; color: #555; } dt { font-weight: 600; }
      a.continue { display: block; margin-top: 1rem; }
    """

    /// Asks the signed-in user to confirm; the form posts `fields` (the session-bound token and the parameters it
    /// acts on) back to the end session endpoint. `returnTo` is where the answer may redirect (allowed by the CSP's
    /// `form-action`, which browsers apply to a form's redirects).
    static func confirm(tenant: TenantRecord, userPrincipalName: String, application: String?, otherUser: String?,
                        fields: [(String, String)], returnTo: String?) -> APIResponse {
        let hidden = fields.map { "<input type=\"hidden\" name=\"\(Page.escape($0.0))\" value=\"\(Page.escape($0.1))\">" }.joined()
        let asking = application.map { "<p id=\"app\"><strong>\(Page.escape($0))</strong> asked to sign you out.</p>" } ?? ""
        let mismatch = otherUser.map {
            "<p id=\"other-user\">The app asked to sign out <strong>\(Page.escape($0))</strong>, who is not the account signed in here.</p>"
        } ?? ""
        return Page.render(title: "Sign out – \(tenant.name)", style: style, body: """
        <main>
          <h1>Sign out?</h1>
          \(asking)\(mismatch)
          <p>You are signed in to \(Page.escape(tenant.name)) as <strong id="user">\(Page.escape(userPrincipalName))</strong>.
          Signing out signs you out of the apps you used with this account in this browser.</p>
          <form method="post" action="/\(Page.escape(tenant.id))/oauth2/v2.0/logout">\(hidden)
            <button id="signout" type="submit">Sign out</button>
          </form>
        </main>
        """, script: "", referrerPolicy: "same-origin",
                           formAction: "'self'" + (returnTo.map { " " + ConsentPage.origin(of: $0) } ?? ""))
    }

    /// That the user signed out. With `frames` (front-channel logout URLs), each loads in a hidden iframe and the page
    /// then goes on to `continueTo` (after every frame loaded, or 5 s); its CSP allows frames from those origins only.
    static func signedOut(tenant: TenantRecord, frames: [String], continueTo: String?) -> APIResponse {
        let iframes = frames.map { "<iframe class=\"logout\" hidden title=\"Signing out of an app\" src=\"\(Page.escape($0))\"></iframe>" }.joined()
        let next = continueTo.map { "<a id=\"continue\" class=\"continue\" href=\"\(Page.escape($0))\">Continue</a>" } ?? ""
        let script = frames.isEmpty ? "" : """
        const frames = Array.from(document.querySelectorAll("iframe.logout"));
        const next = document.getElementById("continue");
        let left = frames.length, finished = false;
        function finish() {
          if (finished) return;
          finished = true;
          if (next) location.replace(next.href);
        }
        frames.forEach((frame) => frame.addEventListener("load", () => { left -= 1; if (left <= 0) finish(); }));
        setTimeout(finish, 5000);
        """
        var response = Page.render(title: "Signed out – \(tenant.name)", style: style, body: """
        <main>
          <h1>Signed out</h1>
          <p id="status">You have signed out of \(Page.escape(tenant.name)).</p>
          \(next)\(iframes)
        </main>
        """, script: script)
        if !frames.isEmpty, let index = response.headers.firstIndex(where: { $0.name == "Content-Security-Policy" }) {
            let origins = Set(frames.map(ConsentPage.origin(of:))).sorted().joined(separator: " ")
            response.headers[index].value += "; frame-src \(origins)"
        }
        return response
    }

    /// A sign-out request refused: the reason, the AADSTS code and the correlation id; no redirect, nothing ended.
    static func error(tenant: TenantRecord, code: Int, message: String, correlationID: String, status: Int) -> APIResponse {
        Page.render(title: "Sign-out request refused – \(tenant.name)", style: style, body: """
        <main>
          <h1>This sign-out request cannot be completed</h1>
          <p id="message">\(Page.escape(message))</p>
          <dl><dt>Error</dt><dd id="error">invalid_request</dd>
          <dt>Error code</dt><dd id="error-code">AADSTS\(code)</dd>
          <dt>Correlation id</dt><dd id="correlation-id">\(Page.escape(correlationID))</dd></dl>
        </main>
        """, script: "", status: status)
    }
}
