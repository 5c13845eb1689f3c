import Foundation
import TesseraCore

/// The consent prompt of the authorization code flow: which app asks for which Microsoft Graph permissions on the
/// signed-in user's behalf. Accepting posts to `oauth2/v2.0/consent` with a token that binds the form to this session,
/// app and list; a user who may not consent is told to ask an administrator, as Entra's "Need admin approval" page does.
enum ConsentPage {
    /// `redirectURI` is where the flow ends: a form's redirects count against the page's `form-action`, so the
    /// client's origin is allowed beside this one.
    static func render(tenant: TenantRecord, application: StoredObject, scopes: Set<String>, mayConsent: Bool,
                       mayConsentForOrganisation: Bool, continuation: String, token: String, redirectURI: String) -> APIResponse {
        let name = application.body["displayName"]?.stringValue ?? "An application"
        let appID = application.body["appId"]?.stringValue ?? ""
        // With only the OpenID Connect scopes asked (prompt=consent), the page still says what the app gets.
        let list = scopes.isEmpty ? "<li id=\"sign-in-only\">Sign you in and read your basic profile</li>"
            : scopes.sorted().map { "<li><code>\(Page.escape($0))</code></li>" }.joined()
        let action = "/\(Page.escape(tenant.id))/oauth2/v2.0/consent"
        let hidden = """
        <input type="hidden" name="client_id" value="\(Page.escape(appID))">
        <input type="hidden" name="scope" value="\(Page.escape(scopes.sorted().joined(separator: " ")))">
        <input type="hidden" name="continue" value="\(Page.escape(continuation))">
        <input type="hidden" name="consent_token" value="\(Page.escape(token))">
        """
        let decision: String
        if mayConsent {
            let organisation = mayConsentForOrganisation
                ? "<label class=\"org\"><input type=\"checkbox\" name=\"for_organization\" value=\"true\"> Consent on behalf of your organisation</label>" : ""
            decision = """
            <form method="post" action="\(action)">\(hidden)\(organisation)
              <button id="accept" type="submit" name="decision" value="accept">Accept</button>
              <button id="cancel" class="secondary" type="submit" name="decision" value="cancel">Cancel</button>
            </form>
            """
        } else {
            decision = """
            <p id="admin-approval">This app needs permission that only an administrator can grant. Ask your administrator to grant it.</p>
            <form method="post" action="\(action)">\(hidden)
              <button id="cancel" class="secondary" type="submit" name="decision" value="cancel">Return to the application</button>
            </form>
            """
        }
        return Page.render(title: "Permissions requested – \(tenant.name)", style: """
          h1 { font-size: 1.3rem; margin: 0 0 .5rem; } p { color: #444; } ul { padding-left: 1.2rem; }
          button.secondary { background: #e5e7eb; color: #111; } label.org { display: block; margin-top: 1rem; }
          label.org input { width: auto; }
        """, body: """
        <main>
          <h1>Permissions requested</h1>
          <p><strong id="app-name">\(Page.escape(name))</strong> \(scopes.isEmpty ? "wants to:" : "wants to act on your behalf with these Microsoft Graph permissions:")</p>
          <ul id="scopes">\(list)</ul>
          <p>Accept only if you trust this app. You can remove its access later.</p>
          \(decision)
        </main>
        """, script: "", referrerPolicy: "same-origin", formAction: "'self' \(origin(of: redirectURI))")
    }

    /// `scheme://host[:port]` of a URI, for a CSP source list (the consent page's and `form_post`'s `form-action`).
    static func origin(of uri: String) -> String {
        let components = URLComponents(string: uri)
        var origin = "\(components?.scheme ?? "https")://\(components?.host ?? "")"
        if let port = components?.port { origin += ":\(port)" }
        return origin.filter { !$0.isWhitespace && $0 != ";" && $0 != "'" }
    }
}
