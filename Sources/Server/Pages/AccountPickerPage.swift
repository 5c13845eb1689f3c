import TesseraCore

/// `prompt=select_account` with a signed-in browser: the user chooses to continue as the account signed in, or to
/// sign in with another (the sign-in page, which sends the browser back once that sign-in is made). Both are plain
/// links back into the flow; neither grants anything the authorization request would not.
enum AccountPickerPage {
    static func render(tenant: TenantRecord, userPrincipalName: String, displayName: String?, continueAs: String, another: String) -> APIResponse {
        Page.render(title: "Pick an account – \(tenant.name)", style: """
          h1 { font-size: 1.3rem; margin: 0 0 .25rem; } p.org { color: #555; margin: 0 0 1.5rem; }
          a.account { display: block; padding: .8rem; border: 1px solid #ccc; border-radius: 6px; color: #111; text-decoration: none; margin-bottom: .8rem; }
          a.account small { display: block; color: #555; } a.account:hover { background: #f3f6fb; }
        """, body: """
        <main>
          <h1>Pick an account</h1>
          <p class="org">\(Page.escape(tenant.name))</p>
          <a id="continue-as" class="account" href="\(Page.escape(continueAs))">\(Page.escape(displayName ?? userPrincipalName))<small>\(Page.escape(userPrincipalName)) · Signed in</small></a>
          <a id="use-another" class="account" href="\(Page.escape(another))">Use another account</a>
        </main>
        """, script: "")
    }
}
