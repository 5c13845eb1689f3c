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
        try await store.purgeRecords(tenant: tenant, kinds: [.networkAccessTraffic, .generativeAIInsight],
                                     olderThan: now.addingTimeInterval(-Double(retentionDays) * 86_400), batch: batch)
    }
}
