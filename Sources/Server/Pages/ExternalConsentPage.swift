import Foundation
import TesseraCore

/// Entra's "Review permissions" page for an external user reaching a resource tenant for the first time (an
/// invitation being redeemed, or a synchronized user's first sign-in): what the organization may do with the user's
/// data, Accept or Cancel. The form posts to `action` with a token that binds it to the session and user it was shown
/// to; `formAction` is where the answer may lead (the redirect after it, beside this origin).
enum ExternalConsentPage {
    static func render(tenant: TenantRecord, home: String, account: String, action: String, fields: [(String, String)],
                       token: String, formAction: String) -> APIResponse {
        let hidden = (fields + [("consent_token", token)])
            .map { "<input type=\"hidden\" name=\"\(Page.escape($0.0))\" value=\"\(Page.escape($0.1))\">" }.joined()
        return Page.render(title: "Review permissions – \(tenant.name)", style: """
          h1 { font-size: 1.3rem; margin: 0 0 .5rem; } p { color: #444; } ul { padding-left: 1.2rem; }
          button.secondary { background: #e5e7eb; color: #111; }
        """, body: """
        <main>
          <h1>Review permissions</h1>
          <p id="account">\(Page.escape(account)) (\(Page.escape(home)))</p>
          <p><strong id="organization">\(Page.escape(tenant.name))</strong> (\(Page.escape(tenant.domain))) would like to:</p>
          <ul id="permissions"><li>Sign you in</li><li>Read your name, email address and photo</li></ul>
          <p>You should only accept if you trust \(Page.escape(tenant.name)). By accepting, you allow this organization to access
          and process your data to create, control and administer an account according to its policies. You can leave the
          organization later.</p>
          <form method="post" action="\(Page.escape(action))">\(hidden)
            <button id="accept" type="submit" name="decision" value="accept">Accept</button>
            <button id="cancel" class="secondary" type="submit" name="decision" value="cancel">Cancel</button>
          </form>
        </main>
        """, script: "", referrerPolicy: "same-origin", formAction: formAction)
    }
}
