import Backup
import Foundation
import Testing
@testable import Server
import TesseraCore
import TesseraTesting

@Suite("Admin center: the backup report as a new administrator reads it")
struct BackupPageTests {
    typealias Browser = AdminCenterTests.Browser

    @Test("an object added or deleted since the snapshot says so once; a changed one lists old and new values; the intro names every kind the report covers")
    func report() async throws {
        try await Harness.run { h in
            let token = try await h.accessToken()
            let kept = try await AdminCenterTests.createUser(h, token, "kept")
            let gone = try await AdminCenterTests.createUser(h, token, "gone")
            let snapshot = try await h.app.backup.snapshot(tenant: h.tenant.tenantId)
            #expect(await h.graph("PATCH", "users/\(kept)", token: token, json: ["jobTitle": "Director"]).status == 204)
            #expect(await h.graph("DELETE", "users/\(gone)", token: token).status == 204)
            let new = try await AdminCenterTests.createUser(h, token, "new")

            let admin = try await Browser.signIn(h, userID: h.tenant.adminUserId)
            let page = await admin.get("/backup", [("from", snapshot.id), ("type", "user")])
            #expect(page.status == 200)
            func row(_ id: String) throws -> Substring {
                let start = try #require(page.text.range(of: "<span class=\"muted mono\">\(id)</span>")).lowerBound
                let end = page.text[start...].range(of: "</td></tr><tr>")?.lowerBound ?? page.text.endIndex
                return page.text[start..<end]
            }
            let added = try row(new), deleted = try row(gone), changed = try row(kept)
            #expect(added.contains("<span class=\"pill\">added</span>") && !added.contains("—") && !added.contains("class=\"inner\""), "\(added)")
            #expect(deleted.contains("<span class=\"pill off\">deleted</span>") && !deleted.contains("—") && !deleted.contains("class=\"inner\""), "\(deleted)")
            #expect(changed.contains("class=\"inner\"") && changed.contains("&quot;Director&quot;") && !changed.contains("pill"), "\(changed)")
            // The intro names every kind a snapshot holds, in words.
            for kind in BackupService.kinds {
                #expect(page.text.contains(BackupPage.noun(kind)), "\(kind.rawValue) missing from the intro")
                #expect(BackupPage.noun(kind) != kind.rawValue, "\(kind.rawValue) has no name for people")
            }
            // The report's table is laid out to fit its column widths (long values wrap instead of running off the page).
            #expect(page.text.contains("<table class=\"report\">"))
        }
    }
}
