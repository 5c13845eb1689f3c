import TesseraCore

/// Which staged object holds each cloud object: the staging area's indexed join column, with the joins made since the
/// last save on top.
struct JoinMap: Sendable {
    let store: any DirectoryStore
    let tenant: String
    private var unsaved: [String: String] = [:]

    init(store: any DirectoryStore, tenant: String) {
        self.store = store
        self.tenant = tenant
    }

    /// The staged object that synchronizes to `cloud`, if any.
    func holder(of cloud: String) async throws -> String? {
        if let staged = unsaved[cloud] { return staged }
        let tenant = self.tenant
        return try await store.read { tx in try await tx.stagedObjects(tenant: tenant, joinedTo: [cloud]) }.first?.id
    }

    mutating func join(_ cloud: String, to staged: String) { unsaved[cloud] = staged }

    /// The staged objects were saved: the staging area has what this held.
    mutating func saved() { unsaved.removeAll(keepingCapacity: true) }
}
