import Backup
import Foundation
import TesseraCore

/// Backup and Recovery: the snapshot timeline, a difference report (between two snapshots or a snapshot and now)
/// filtered by type with old and new values side by side, and a restore wizard — choose objects, preview exactly
/// what would be done, then start a recovery job and follow it.
struct BackupPage {
    let admin: AdminRequest
    var tenant: String { admin.tenant.id }
    static let types = DifferenceReport.entityTypeNames

    /// What a snapshot holds, in words, from the kinds it covers (so the page never lists fewer than the report).
    static var covered: String {
        let names = BackupService.kinds.map(Self.noun)
        return names.dropLast().joined(separator: ", ") + " and " + (names.last ?? "")
    }

    /// A kind in the plural, as an administrator says it.
    static func noun(_ kind: ObjectKind) -> String {
        switch kind {
        case .user: "users"
        case .group: "groups"
        case .application: "applications"
        case .servicePrincipal: "service principals"
        case .appRoleAssignment: "app role assignments"
        case .roleAssignment: "directory role assignments"
        case .authenticationMethodsPolicy: "the authentication methods policy"
        case .conditionalAccessPolicy: "Conditional Access policies"
        case .namedLocation: "named locations"
        case .authorizationPolicy: "the authorization policy"
        case .oauth2PermissionGrant: "delegated permission grants"
        case .authenticationStrengthPolicy: "authentication strengths"
        case .crossTenantAccessPolicy: "the cross-tenant access settings"
        case .crossTenantAccessPolicyPartner: "cross-tenant partner configurations"
        default: kind.rawValue
        }
    }

    func render(failure: String?) async throws -> APIResponse {
        do {
            try admin.caller.require(anyOf: RecoveryHandler.readPermissions)
        } catch {
            return admin.page(title: "Backup", section: "backup", status: 403, failure: error.message, content: "<h1>Backup and Recovery</h1>")
        }
        let snapshots = try await admin.app.backup.snapshots(tenant: tenant).reversed()
        let from = admin.request.parameter("from"), to = admin.request.parameter("to")
        let type = admin.request.parameter("type").flatMap { $0.isEmpty ? nil : $0 }
        var rows = ""
        for s in snapshots {
            rows += "<tr><td class=\"mono\">\(h(s.createdAt))</td><td>\(s.objectCount)</td><td>\(s.changedObjects)</td>"
                + "<td><a href=\"\(h(admin.base))/backup?from=\(h(s.id))\">Compare with now</a></td></tr>"
        }
        let options = snapshots.map { "<option value=\"\(h($0.id))\">\(h($0.createdAt))</option>" }.joined()
        var content = """
        <h1>Backup and Recovery</h1>
        <p class="muted">A snapshot of \(Self.covered) is taken every day and kept \(admin.app.backup.retentionDays) days.
        Nobody can change or delete one.</p>
        \(try await admin.app.backup.isEnabled(tenant: tenant) ? "" : "<p class=\"banner error\">Backup and Recovery is not part of this tenant's plan: no new snapshots are taken and nothing can be recovered. An operator turns it on with <span class=\"mono\">tessera backup enable</span>.</p>")
        <h2>Snapshots</h2>
        <table><thead><tr><th>Taken (UTC)</th><th>Objects</th><th>Changed since the one before</th><th></th></tr></thead>
        <tbody>\(rows.isEmpty ? "<tr><td colspan=\"4\" class=\"muted\">No snapshot yet: the first is taken within the hour.</td></tr>" : rows)</tbody></table>
        <form method="get" action="\(h(admin.base))/backup"><label>From <select name="from">\(options)</select></label>
        <label>to <select name="to"><option value="">now</option>\(options)</select></label><button type="submit">Compare</button></form>
        """
        if let from {
            content += try await report(from: from, to: to, type: type)
        }
        content += try await jobsTable()
        return admin.page(title: "Backup", section: "backup", failure: failure, content: content)
    }

    func report(from: String, to: String?, type: String?) async throws -> String {
        let target = try await admin.app.backup.snapshot(tenant: tenant, id: from)
        let later = try await to.flatMap { $0.isEmpty ? nil : $0 }.asyncMap { try await admin.app.backup.snapshot(tenant: tenant, id: $0) }
        var changes = try await admin.app.backup.difference(tenant: tenant, from: target.id, to: later?.id).changes
        let total = changes.count
        if let type { changes = changes.filter { DifferenceReport.entityTypeName($0.kind).lowercased() == type.lowercased() } }
        let typeLinks = ([""] + Self.types).map { t in
            let query = [("from", target.id)] + (later.map { [("to", $0.id)] } ?? []) + (t.isEmpty ? [] : [("type", t)])
            let label = t.isEmpty ? "All" : t
            return (t == (type ?? "") ? "<strong>\(h(label))</strong>" : "<a href=\"\(h(admin.base))/backup?\(h(AuthorizeEndpoint.encode(query)))\">\(h(label))</a>")
        }.joined(separator: " · ")
        var rows = ""
        for change in changes.prefix(500) {
            // An object added or deleted since is that, once; only an object changed in place has old and new values.
            let whole: String? = switch change.action {
            case .softDelete: "<span class=\"pill\">added</span>"
            case .restore, .recreate: "<span class=\"pill off\">deleted</span>"
            case .update: nil
            }
            let props = whole != nil ? "" : change.properties.map { p in
                "<tr><td class=\"mono\">\(h(p.name))</td><td class=\"mono\">\(h(p.old?.serialized ?? "—"))</td><td class=\"mono\">\(h(p.new?.serialized ?? "—"))</td></tr>"
            }.joined()
            let links = whole != nil ? "" : change.links.map { "<li>\(h($0.relation)) \($0.added ? "added" : "removed"): <span class=\"mono\">\(h($0.target))</span></li>" }.joined()
            let box = change.isOnPremises ? "<span class=\"muted\">on-premises</span>"
                : "<input type=\"checkbox\" name=\"object\" value=\"\(h(DifferenceReport.entityTypeName(change.kind))):\(h(change.id))\" checked aria-label=\"Restore \(h(change.displayName ?? change.id))\">"
            rows += "<tr><td>\(later == nil ? box : "")</td><td>\(h(DifferenceReport.entityTypeName(change.kind)))</td><td>\(h(change.displayName ?? change.id))<br><span class=\"muted mono\">\(h(change.id))</span></td>"
                + "<td>\(h(Self.describe(change.action)))</td><td>" + (whole ?? "")
                + (props.isEmpty ? "" : "<table class=\"inner\"><thead><tr><th>Property</th><th>In the snapshot</th><th>\(later == nil ? "Now" : "Later")</th></tr></thead><tbody>\(props)</tbody></table>")
                + (links.isEmpty ? "" : "<ul>\(links)</ul>") + "</td></tr>"
        }
        let heading = "<h2 id=\"report\">What changed since \(h(target.createdAt))\(later.map { " until \(h($0.createdAt))" } ?? "")</h2>"
            + "<p>\(total) objects differ\(type.map { "; \(changes.count) of type \(h($0))" } ?? ""). \(typeLinks)</p>"
        let table = "<table class=\"report\"><thead><tr><th></th><th>Type</th><th>Object</th><th>A recovery would</th><th>Changes (old → new)</th></tr></thead><tbody>"
            + (rows.isEmpty ? "<tr><td colspan=\"5\" class=\"muted\">No differences.</td></tr>" : rows) + "</tbody></table>"
            + (changes.count > 500 ? "<p class=\"muted\">The first 500 are shown; filter by type to see the rest.</p>" : "")
        guard later == nil, !changes.isEmpty else { return heading + table }
        // The wizard's first step: the chosen objects go to a preview.
        return heading + admin.form("/backup/preview", "<input type=\"hidden\" name=\"snapshot\" value=\"\(h(target.id))\">" + table,
                                    button: "Preview the recovery of the selected objects", style: "block")
    }

    static func describe(_ action: DifferenceReport.Action) -> String {
        switch action {
        case .softDelete: "delete it (added since)"
        case .update: "put it back as it was"
        case .restore: "restore it (deleted since)"
        case .recreate: "create it again with its id (hard-deleted since)"
        }
    }

    func jobsTable() async throws -> String {
        guard case .success(let page) = await admin.graph("GET", "directory/recovery/jobs") else { return "" }
        let jobs = page["value"]?.arrayValue ?? []
        guard !jobs.isEmpty else { return "" }
        var rows = ""
        for job in jobs.prefix(20) {
            let kind = job["@odata.type"]?.stringValue == RecoveryJobs.recoveryType ? "Recovery" : "Difference report"
            rows += "<tr><td class=\"mono\">\(h(job["jobStartDateTime"]?.stringValue))</td><td>\(kind)</td><td>\(h(job["status"]?.stringValue))</td>"
                + "<td>\(job["totalChangedObjectsCalculated"]?.intValue ?? 0)</td><td>\(job["totalObjectsModified"]?.intValue.map(String.init) ?? "")</td>"
                + "<td>\(job["totalFailedChanges"]?.intValue.map(String.init) ?? "")</td>"
                + "<td><a href=\"\(h(admin.base))/backup/jobs/\(h(job["id"]?.stringValue))\">Details</a></td></tr>"
        }
        return "<h2>Jobs</h2><table><thead><tr><th>Started (UTC)</th><th>Kind</th><th>Status</th><th>Objects</th><th>Modified</th><th>Failed</th><th></th></tr></thead><tbody>\(rows)</tbody></table>"
    }

    /// Step two: exactly what the recovery would do (a dry run), and the button that starts it.
    func preview() async throws -> APIResponse {
        let form = admin.form
        guard let snapshot = form["snapshot"] else { return try await failed("Choose a snapshot.") }
        let chosen = admin.formValues("object")
        guard !chosen.isEmpty else { return try await failed("Select at least one object to recover.") }
        let filter = Self.filter(chosen)
        let plan: [DifferenceReport.ObjectChange]
        do {
            try admin.caller.require(anyOf: RecoveryHandler.recoveryPermissions)
            plan = try await admin.app.backup.recover(tenant: tenant, snapshot: snapshot, filter: filter, directory: admin.app.directory,
                                                      actor: admin.caller.actor, dryRun: true).planned
        } catch let error as DirectoryError {
            return try await failed(error.message)
        } catch let error as BackupError {
            return try await failed(error.description)
        }
        let items = plan.map { "<li>\(h(Self.describe($0.action))): \(h(DifferenceReport.entityTypeName($0.kind))) \(h($0.displayName ?? $0.id))"
            + ($0.properties.isEmpty ? "" : " — " + $0.properties.map { h($0.name) }.joined(separator: ", "))
            + ($0.links.isEmpty ? "" : " — \($0.links.count) link\($0.links.count == 1 ? "" : "s")") + "</li>" }.joined()
        let hidden = "<input type=\"hidden\" name=\"snapshot\" value=\"\(h(snapshot))\">"
            + chosen.map { "<input type=\"hidden\" name=\"object\" value=\"\(h($0))\">" }.joined()
        return admin.page(title: "Recovery preview", section: "backup", content: """
        <h1>Recovery preview</h1>
        <p>Going back to the snapshot would make these \(plan.count) changes, through the directory (each one audited under the job):</p>
        <ol id="plan">\(items.isEmpty ? "<li class=\"muted\">Nothing: these objects are already as they were.</li>" : items)</ol>
        \(plan.isEmpty ? "" : admin.form("/backup/recover", hidden, button: "Start the recovery"))
        <p><a href="\(h(admin.base))/backup?from=\(h(snapshot))">Back to the report</a></p>
        """)
    }

    /// Step three: a recovery job, through Graph.
    func recover() async throws -> APIResponse {
        let form = admin.form
        guard let snapshot = form["snapshot"] else { return try await failed("Choose a snapshot.") }
        let chosen = admin.formValues("object")
        guard !chosen.isEmpty else { return try await failed("Select at least one object to recover.") }
        let byType = Self.chosenByType(chosen)
        let body: JSONValue = [
            "@odata.type": .string(RecoveryJobs.recoveryType), "snapshotId": .string(snapshot),
            "filteringCriteria": ["@odata.type": "#microsoft.graph.entraRecoveryServices.recoveryJobEntityNameAndIdsFilter",
                                  "filterValues": .array(byType.keys.sorted().map { ["entityType": .string($0), "entityIds": .strings(byType[$0]!.sorted())] })],
        ]
        switch await admin.graph("POST", "directory/recovery/jobs", body: body) {
        case .success(let job): return AdminCenter.redirect("\(admin.base)/backup/jobs/\(job["id"]?.stringValue ?? "")")
        case .failure(let error): return try await failed(error.message)
        }
    }

    func job(id: String) async throws -> APIResponse {
        let job: JSONValue
        switch await admin.graph("GET", "directory/recovery/jobs/\(id)") {
        case .success(let found): job = found
        case .failure(let error): return admin.page(title: "Job", section: "backup", status: 404, failure: error.message, content: "")
        }
        let changes = (try? await admin.graph("GET", "directory/recovery/jobs/\(id)/getChanges()").get())?["value"]?.arrayValue ?? []
        let items = changes.prefix(500).map { c in
            "<tr><td>\(h(c["entityTypeName"]?.stringValue))</td><td>\(h(c["displayName"]?.stringValue ?? c["id"]?.stringValue))</td>"
                + "<td>\(h(c["tesseraAction"]?.stringValue))</td><td>\(c["failureMessage"].flatMap(\.stringValue).map { "<span class=\"pill off\">Failed</span> \(h($0))" } ?? (c["tesseraApplied"]?.boolValue == true ? "Done" : ""))</td></tr>"
        }.joined()
        let active = RecoveryJobs.active.contains(job["status"]?.stringValue ?? "")
        return admin.page(title: "Job", section: "backup", content: """
        <p><a href="\(h(admin.base))/backup">Backup and Recovery</a></p>
        <h1>\(job["@odata.type"]?.stringValue == RecoveryJobs.recoveryType ? "Recovery" : "Difference report") \(h(id))</h1>
        <table><tbody>
        <tr><th>Status</th><td id="job-status">\(h(job["status"]?.stringValue))\(active ? " (reload to follow it)" : "")</td></tr>
        <tr><th>Back to</th><td class="mono">\(h(job["targetStateDateTime"]?.stringValue))</td></tr>
        <tr><th>Objects to change</th><td>\(job["totalChangedObjectsCalculated"]?.intValue ?? 0)</td></tr>
        <tr><th>Modified</th><td>\(job["totalObjectsModified"]?.intValue ?? 0)</td></tr>
        <tr><th>Failed</th><td>\(job["totalFailedChanges"]?.intValue ?? 0)</td></tr>
        </tbody></table>
        \(active ? admin.form("/backup/jobs/\(id)/cancel", "", button: "Cancel", confirm: true) : "")
        <h2>Changes</h2>
        <table><thead><tr><th>Type</th><th>Object</th><th>Action</th><th>Result</th></tr></thead><tbody>\(items)</tbody></table>
        """)
    }

    func cancel(id: String) async -> AdminRequest.Outcome {
        await admin.perform("POST", "directory/recovery/jobs/\(id)/microsoft.graph.entraRecoveryServices.cancel", notice: "saved")
    }

    /// The wizard's checkboxes (`type:id`) by type.
    static func chosenByType(_ chosen: [String]) -> [String: Set<String>] {
        var byType: [String: Set<String>] = [:]
        for item in chosen {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            if parts.count == 2 { byType[parts[0].lowercased(), default: []].insert(parts[1].lowercased()) }
        }
        return byType
    }

    static func filter(_ chosen: [String]) -> RecoveryFilter { .ids(chosenByType(chosen)) }

    func failed(_ message: String) async throws -> APIResponse {
        var response = try await render(failure: message)
        response.status = 400
        return response
    }
}
