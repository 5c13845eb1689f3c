import Foundation
import Sync
import TesseraCore

/// Directory sync: the matching switches and the deletion threshold (through Graph as the signed-in user), the
/// connectors, recent runs with held-back deletions to approve, sync errors and the quarantine, and the accounts to
/// review before the June 2026 hard-match rule.
struct SyncPage {
    let admin: AdminRequest
    var cycle: SyncCycle { SyncCycle(directory: admin.app.directory, clock: admin.app.clock) }
    var tenant: String { admin.tenant.id }

    /// Changing sync (approving deletions, deleting from quarantine) is for Global Administrators, as in Entra.
    func requireGlobalAdministrator() throws {
        try admin.caller.require(anyOf: OnPremisesSyncHandler.writePermissions)
        guard admin.caller.directoryRoles.contains(BuiltInRoles.globalAdministrator) else {
            throw DirectoryError(.accessDenied, "Only a Global Administrator may change directory synchronization.")
        }
    }

    func render(failure: String?) async throws -> APIResponse {
        var settings: JSONValue = .null
        switch await admin.graph("GET", "directory/onPremisesSynchronization/\(tenant)") {
        case .success(let value): settings = value
        case .failure(let error):
            return admin.page(title: "Directory sync", section: "sync", status: 403, failure: error.message, content: "<h1>Directory sync</h1>")
        }
        let stored = try await SyncSettings.load(tenant: tenant, store: admin.app.store)
        let errors = try await cycle.errors(tenant: tenant)
        let privileged = try await cycle.privilegedSyncedAccounts(tenant: tenant)

        let connectors = stored.connectors.map { "<tr><td>\(h($0.name))</td><td><code>\(h($0.ldapURL))</code></td><td>\(h($0.baseDN))</td>"
            + "<td>\($0.cookie == nil ? "next run reads everything" : "delta")</td></tr>" }.joined()
        let runs = stored.runs.suffix(15).reversed().map { run -> String in
            let id = run["id"]?.stringValue ?? ""
            let pending = run["pendingDeletions"]?.arrayValue?.count ?? 0
            let approve = run["status"] == "stopped-deletion-threshold-exceeded"
                ? admin.form("/sync/runs/\(id)/approve", "", button: "Approve \(pending) deletions", confirm: true) : ""
            return "<tr><td>\(h(run["at"]?.stringValue))</td><td>\(h(run["connector"]?.stringValue))</td><td>\(h(run["status"]?.stringValue)) \(approve)</td>"
                + ["added", "updated", "deleted", "quarantined"].map { "<td>\(run[$0]?.intValue ?? 0)</td>" }.joined() + "</tr>"
        }.joined()
        let errorRows = errors.map { e -> String in
            let id = e["id"]?.stringValue ?? ""
            let remove = e["state"] == "quarantined"
                ? admin.form("/sync/quarantine/\(id)/delete", "", button: "Delete from quarantine", confirm: true) : ""
            return "<tr><td>\(h(e["state"]?.stringValue))</td><td><code>\(h(e["code"]?.stringValue))</code></td><td>\(h(e["distinguishedName"]?.stringValue))"
                + "<br><span class=\"muted\">\(h(e["message"]?.stringValue))</span></td><td><code>\(h(e["sourceAnchor"]?.stringValue))</code></td><td>\(remove)</td></tr>"
        }.joined()
        let privilegedRows = privileged.map { a in
            "<tr><td><a href=\"\(h(admin.base))/users/\(h(a["id"]?.stringValue))\">\(h(a["userPrincipalName"]?.stringValue))</a></td>"
                + "<td>\(h(a["matchedBy"]?.stringValue))</td><td>\(h((a["roles"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")))</td></tr>"
        }.joined()
        let features = settings["features"]
        func checkbox(_ name: String, _ label: String) -> String {
            "<label><input type=\"checkbox\" name=\"\(name)\" value=\"true\"\(features?[name] == true ? " checked" : "")> \(h(label))</label>"
        }
        let prevention = settings["configuration"]?["accidentalDeletionPrevention"]
        return admin.page(title: "Directory sync", section: "sync", failure: failure, content: """
        <h1>Directory sync</h1>
        <p class="muted">Users and groups from on-premises Active Directory. Run a cycle with <code>tessera sync run</code>; \
        <code>tessera serve</code> runs one every <code>--sync-interval</code> minutes.</p>
        <h2>Sync errors and quarantine</h2>
        <table><thead><tr><th>State</th><th>Error</th><th>On-premises object</th><th>Source anchor</th><th></th></tr></thead>
        <tbody>\(errorRows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No sync errors.</td></tr>" : errorRows)</tbody></table>
        <p class="muted">A hard match into a cloud account that holds a role is refused (InvalidHardMatch). To complete it on purpose: \
        remove the role from the cloud account, delete the object from quarantine, and the next cycle matches it.</p>
        <h2>Synced accounts that hold a role</h2>
        <table><thead><tr><th>User</th><th>Matched by</th><th>Roles</th></tr></thead>
        <tbody>\(privilegedRows.isEmpty ? "<tr><td colspan=\"3\" class=\"muted\">No synced account holds a directory role.</td></tr>" : privilegedRows)</tbody></table>
        <h2>Recent runs</h2>
        <table><thead><tr><th>When</th><th>Connector</th><th>Status</th><th>Added</th><th>Updated</th><th>Deleted</th><th>Quarantined</th></tr></thead>
        <tbody>\(runs.isEmpty ? "<tr><td colspan=\"7\" class=\"muted\">No runs yet.</td></tr>" : runs)</tbody></table>
        <h2>Connectors</h2>
        <table><thead><tr><th>Name</th><th>Directory</th><th>Scope</th><th>Next import</th></tr></thead>
        <tbody>\(connectors.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">None: add one with <code>tessera sync connector add</code>.</td></tr>" : connectors)</tbody></table>
        <h2>Matching and deletions</h2>
        \(admin.form("/sync/settings", """
            \(checkbox("blockSoftMatchEnabled", "Block soft match"))
            \(checkbox("blockCloudObjectTakeoverThroughHardMatchEnabled", "Block every hard match into a cloud-managed account"))
            \(checkbox("softMatchOnUpnEnabled", "Soft match on user principal name"))
            \(checkbox("allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled", "Let sync change a synced user's on-premises identifier"))
            <label>Stop a run that would delete more than <input name="alertThreshold" type="number" min="1" value="\(prevention?["alertThreshold"]?.intValue ?? 500)"></label>
            <label><select name="synchronizationPreventionType">\(["enabledForCount", "enabledForPercentage", "disabled"].map {
                "<option\(prevention?["synchronizationPreventionType"]?.stringValue == $0 ? " selected" : "")>\($0)</option>" }.joined())</select></label>
            """, button: "Save", style: "block"))
        """)
    }

    func act(_ action: [String]) async -> AdminRequest.Outcome {
        switch action {
        case ["settings"]:
            let form = admin.form
            var features: [String: JSONValue] = [:]
            for name in ["blockSoftMatchEnabled", "blockCloudObjectTakeoverThroughHardMatchEnabled", "softMatchOnUpnEnabled",
                         "allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled"] { features[name] = .bool(form[name] == "true") }
            guard let threshold = Int(form["alertThreshold"] ?? "") else { return .failed("The threshold must be a number.") }
            return await admin.perform("PATCH", "directory/onPremisesSynchronization/\(tenant)", body: [
                "features": .object(features),
                "configuration": ["accidentalDeletionPrevention": ["alertThreshold": .int(Int64(threshold)),
                                                                   "synchronizationPreventionType": .string(form["synchronizationPreventionType"] ?? "enabledForCount")]],
            ], notice: "saved")
        case let a where a.count == 3 && a[0] == "runs" && a[2] == "approve":
            do {
                try requireGlobalAdministrator()
                try await cycle.approveDeletions(tenant: admin.tenant, run: a[1])
                return .done("deleted")
            } catch let error as DirectoryError {
                return .failed(error.message)
            } catch {
                return .failed("\(error)")
            }
        case let a where a.count == 3 && a[0] == "quarantine" && a[2] == "delete":
            do {
                try requireGlobalAdministrator()
                try await cycle.deleteQuarantined(tenant: tenant, id: a[1])
                return .done("deleted")
            } catch let error as DirectoryError {
                return .failed(error.message)
            } catch {
                return .failed("\(error)")
            }
        default: return .failed("Unknown action.")
        }
    }
}
