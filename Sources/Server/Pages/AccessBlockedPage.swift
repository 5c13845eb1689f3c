import Foundation
import TesseraCore

/// What a user sees when Conditional Access refuses a sign-in, as Entra shows it: that access is blocked, the AADSTS
/// code, and the correlation id and time an administrator needs to find it in the logs (which policy refused is for
/// the administrator's eyes, in the log, not for the user's).
enum AccessBlockedPage {
    static func render(tenant: TenantRecord, code: Int, correlationID: String, now: Date) -> APIResponse {
        return Page.render(title: "Access blocked – \(tenant.name)", style: """
          h1 { font-size: 1.3rem; margin: 0 0 .5rem; } p { color: #444; } dl { font-size: .85rem; color: #555; } dt { font-weight: 600; }
        """, body: """
        <main>
          <h1>You cannot access this right now</h1>
          <p>Your sign-in was successful, but it does not meet the criteria your organisation has set to access this application.</p>
          <dl>
            <dt>Error code</dt><dd id="error-code">AADSTS\(code)</dd>
            <dt>Correlation id</dt><dd id="correlation-id">\(Page.escape(correlationID))</dd>
            <dt>Time</dt><dd>\(Page.escape(Timestamp.format(now)))</dd>
          </dl>
        </main>
        """, script: "", status: 403)
    }

    /// Entra's page for a sign-in refused for a reason the user may read (tenant restrictions, an external account the
    /// tenant does not admit): the reason, the AADSTS code and the correlation id.
    static func render(title: String, heading: String, message: String, code: Int, correlationID: String, status: Int = 403) -> APIResponse {
        Page.render(title: title, style: "h1 { font-size: 1.3rem; } dt { font-weight: 600; }", body: """
        <main>
          <h1>\(Page.escape(heading))</h1>
          <p id="message">\(Page.escape(message))</p>
          <dl><dt>Error code</dt><dd id="error-code">AADSTS\(code)</dd>
          <dt>Correlation id</dt><dd id="correlation-id">\(Page.escape(correlationID))</dd></dl>
        </main>
        """, script: "", status: status)
    }
}
