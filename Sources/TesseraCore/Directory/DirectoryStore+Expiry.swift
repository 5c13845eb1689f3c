public import Foundation

extension DirectoryStore {
    /// Permanently deletes a tenant's records of `kinds` whose timestamp `property` is older than `cutoff`, `batch` at a
    /// time (a read of the expired, then one write purging them), and returns how many went. For logs with a retention
    /// (sign-ins, traffic, provisioning): purging twice is a no-op, so every node of a cluster may run it.
    public func purgeRecords(tenant: String, kinds: [ObjectKind], olderThan cutoff: Date, property: String = "createdDateTime",
                             batch: Int = 500) async throws -> Int {
        let query = ObjectQuery(tenant: tenant, kinds: kinds,
                                filter: .compare(PropertyPath([property]), .lt, .string(Timestamp.format(cutoff))), limit: batch)
        var purged = 0
        while true {
            let expired = try await read { tx in try await tx.query(query) }
            try await write { tx in
                for record in expired { try await tx.purge(tenant: tenant, id: record.id) }
            }
            purged += expired.count
            if expired.count < batch { return purged }
        }
    }
}
