import Foundation

/// Sign-in logs (Graph's `signIn`): one object per attempt, successful or not. They are not directory changes, so
/// they stay out of the change log and the audit log; they are kept 30 days, as Entra keeps them.
extension ObjectKind {
    public static let signIn = ObjectKind(rawValue: "signIn")
}

extension DirectoryService {
    /// How long sign-in records are kept.
    public static let signInRetentionDays = 30
    /// The most sign-in records written in one transaction.
    public static var signInBatchSize: Int { SignInWriter.batchSize }

    /// Records one sign-in attempt. `entry` is Graph's `signIn` shape; `id` and `createdDateTime` are set here. The
    /// record is written with others a moment later (``SignInWriter``); reading the log on this node sees it at once.
    @discardableResult
    public func recordSignIn(tenant: String, entry: [String: JSONValue]) async throws -> StoredObject {
        var body = entry
        let id = Identifier.makeTimeOrdered(at: clock.now)
        body["id"] = .string(id)
        body["createdDateTime"] = .string(now)
        let object = StoredObject(tenant: tenant, id: id, kind: .signIn, body: body)
        try await signInWriter.append(object)
        return object
    }

    /// Writes the sign-in records (and credential records queued with them) still waiting: at shutdown, or before
    /// reading the log or those records.
    public func flushSignIns() async throws {
        try await signInWriter.flush()
    }

    /// Queues a credential record that may wait to be written with the next batch of sign-in records (``SignInWriter``):
    /// one whose readers flush first (``flushSignIns()``), and which is left as it is when its id is stored already.
    public func queueCredential(_ row: CredentialRow) async throws {
        try await signInWriter.append(credential: row)
    }

    /// For tests: holds every queued record until ``flushSignIns()`` (true), or writes them a moment after they came again.
    public func holdSignInWritesUntilFlushed(_ hold: Bool) async {
        await signInWriter.holdUntilFlushed(hold)
    }

    /// Sign-ins, newest first (their ids are time-ordered), every record this node accepted included; with `before`,
    /// those after that record in this order (keyset paging: no record skipped or repeated as others come and go).
    public func signIns(tenant: String, filter: FilterExpression?, limit: Int, offset: Int = 0, before: String? = nil) async throws -> [StoredObject] {
        try await signInWriter.flush()
        var query = ObjectQuery(tenant: tenant, kinds: [.signIn], filter: filter,
                                orderBy: [OrderByItem(path: PropertyPath(["id"]), descending: true)],
                                limit: limit, offset: offset)
        query.after = before.map { KeysetPosition(values: [$0], id: $0) }
        return try await store.read { [query] tx in try await tx.query(query) }
    }
}

extension DirectoryService {
    /// Deletes the tenant's sign-in records older than ``signInRetentionDays``; returns how many.
    @discardableResult
    public func purgeExpiredSignIns(tenant: String, batch: Int = 500) async throws -> Int {
        try await signInWriter.flush()
        return try await store.purgeRecords(tenant: tenant, kinds: [.signIn],
                                            olderThan: clock.now.addingTimeInterval(-Double(Self.signInRetentionDays) * 86_400), batch: batch)
    }
}
