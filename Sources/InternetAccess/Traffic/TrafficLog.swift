public import Foundation
public import TesseraCore

/// Reading and expiring a tenant's traffic records and generative-AI insights.
public enum TrafficLog {
    /// How long traffic records and insights are kept, in days.
    public static let retentionDays = 30

    /// Records (of `kind`: traffic, or insights) newest first (their ids are time-ordered), matching `filter`; with
    /// `before`, those after that record in this order (keyset paging).
    public static func list(tenant: String, store: any DirectoryStore, kind: ObjectKind = .networkAccessTraffic, filter: FilterExpression?,
                            limit: Int, before: String? = nil) async throws -> [StoredObject] {
        var query = ObjectQuery(tenant: tenant, kinds: [kind], filter: filter,
                                orderBy: [OrderByItem(path: PropertyPath(["id"]), descending: true)], limit: limit)
        query.after = before.map { KeysetPosition(values: [$0], id: $0) }
        return try await store.read { [query] tx in try await tx.query(query) }
    }

    /// Deletes the tenant's traffic records and insights older than ``retentionDays``; returns how many.
    @discardableResult
    public static func purgeExpired(tenant: String, store: any DirectoryStore, now: Date, batch: Int = 1000) async throws -> Int {
        let cutoff = Timestamp.format(now.addingTimeInterval(-Double(retentionDays) * 86_400))
        let query = ObjectQuery(tenant: tenant, kinds: [.networkAccessTraffic, .generativeAIInsight],
                                filter: .compare(PropertyPath(["createdDateTime"]), .lt, .string(cutoff)), limit: batch)
        var purged = 0
        while true {
            let expired = try await store.read { tx in try await tx.query(query) }
            try await store.write { tx in for record in expired { try await tx.purge(tenant: tenant, id: record.id) } }
            purged += expired.count
            if expired.count < batch { return purged }
        }
    }
}
