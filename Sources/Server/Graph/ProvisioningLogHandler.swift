import TesseraCore

/// `GET /auditLogs/provisioning`: the provisioning log of the tenant's synchronization jobs (one
/// `provisioningObjectSummary` per object a run created, updated, deleted, skipped or failed on), newest first, with
/// `$filter` on any property (`jobId eq '…'`, `provisioningAction eq 'create'`, `sourceIdentity/id eq '…'`,
/// `provisioningStatusInfo/status eq 'failure'`), `$select`, `$top` and paging. `GET /auditLogs/provisioning/{id}` one.
struct ProvisioningLogHandler {
    let api: GraphAPI
    let context: RequestContext

    static let pageSize = 100

    func handle(_ rest: [String]) async throws -> APIResponse {
        guard context.request.method == "GET" else { throw DirectoryError(.methodNotAllowed, "Provisioning logs are read only.") }
        let tenant = context.tenant
        if rest.count == 1 {
            let id = rest[0].lowercased()
            guard let entry = try await api.app.store.read({ tx in try await tx.object(tenant: tenant, id: id) }),
                  entry.kind == .provisioningObjectSummary else { throw DirectoryError.notFound(rest[0]) }
            var body = entry.body
            body["@odata.context"] = .string("\(context.base)/$metadata#auditLogs/provisioning/$entity")
            return .json(.object(body))
        }
        let options = try QueryValidator(entity: nil, advanced: true, count: true).resolve(try context.parseOptions())
        guard options.search == nil, options.orderBy.allSatisfy({ $0.path.segments == ["activityDateTime"] && $0.descending }) else {
            throw DirectoryError(.unsupportedQuery, "Provisioning logs are ordered by activityDateTime desc only, and have no $search.")
        }
        let top = min(options.top ?? Self.pageSize, 1000)
        // Ids are time-ordered: newest first is descending ids; the skip token is the last id shown.
        let all = try await api.app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.provisioningObjectSummary])) }
        var page: [JSONValue] = [], next: String?, last: String?
        for entry in all.sorted(by: { $0.id > $1.id }) {
            if let token = options.skipToken, entry.id >= token { continue }
            let value = JSONValue.object(entry.body)
            guard options.filter?.matches(value) ?? true else { continue }
            if page.count == top {
                next = last
                break
            }
            page.append(Renderer.select(value, options.select))
            last = entry.id
        }
        var body: [String: JSONValue] = ["@odata.context": .string("\(context.base)/$metadata#auditLogs/provisioning"), "value": .array(page)]
        if let next { body["@odata.nextLink"] = .string(Lister(context: context, app: api.app).nextLink(skipToken: next)) }
        return .json(.object(body))
    }
}
