import Foundation
import Testing
@testable import Store
import TesseraCore
import TesseraTesting

@Suite("Keyset paging")
struct KeysetPagingTests {
    /// Orders to walk: text with ties and case differences, a property some users lack (NULLs, which the two
    /// databases sort at opposite ends), two properties, and the id alone.
    static let orders: [[OrderByItem]] = [
        [OrderByItem(path: PropertyPath(["displayName"]), descending: false)],
        [OrderByItem(path: PropertyPath(["displayName"]), descending: true)],
        [OrderByItem(path: PropertyPath(["jobTitle"]), descending: false)],
        [OrderByItem(path: PropertyPath(["jobTitle"]), descending: true)],
        [OrderByItem(path: PropertyPath(["jobTitle"]), descending: false), OrderByItem(path: PropertyPath(["displayName"]), descending: true)],
        [OrderByItem(path: PropertyPath(["id"]), descending: true)],
    ]

    static let titles: [JSONValue?] = [nil, "Engineer", "engineer", "Åsa", "Zeta", "alpha", nil, "ENGINEER"]

    /// The position after `row` in `order`: what a next link carries.
    static func position(after row: StoredObject, _ order: [OrderByItem]) -> KeysetPosition {
        KeysetPosition(values: order.map { item in item.path.segments == ["id"] ? row.id : row.body[item.path.segments[0]]?.stringValue },
                       id: row.id)
    }

    @Test("pages visit every row that stays exactly once, in order, while rows are inserted and deleted between pages",
          arguments: TestDatabases.all)
    func insertsAndDeletesBetweenPages(_ database: String) async throws {
        try await withTenant(database) { store, directory, tenant in
            var made = 0
            func makeUser() async throws -> StoredObject {
                made += 1
                // Names tie in pairs and differ only in case across pairs ("Name 3", "NAME 3").
                let name = (made % 4 == 0 ? "NAME " : "Name ") + String(made % 7)
                var extra: [String: JSONValue] = ["mailNickname": .string("u\(made)"), "userPrincipalName": .string("u\(made)@\(tenant.domain)")]
                if let title = Self.titles[made % Self.titles.count] { extra["jobTitle"] = title }
                return try await directory.makeUser(tenant, name, extra: extra)
            }
            for _ in 0..<18 { _ = try await makeUser() }
            for order in Self.orders {
                let all = ObjectQuery(tenant: tenant.tenantId, kinds: [.user], orderBy: order)
                let initial = try await store.read { tx in try await tx.query(all) }.map(\.id)
                var deleted: Set<String> = []
                var seen: [String] = []
                var position: KeysetPosition?
                var pages = 0
                while true {
                    var query = ObjectQuery(tenant: tenant.tenantId, kinds: [.user], orderBy: order, limit: 4)
                    query.after = position
                    let frozen = query
                    let page = try await store.read { tx in try await tx.query(frozen) }
                    seen += page.map(\.id)
                    guard page.count == 4, let last = page.last else { break }
                    position = Self.position(after: last, order)
                    pages += 1
                    // Between pages: two users arrive (their places fall anywhere), one already listed and one not yet
                    // listed go.
                    _ = try await makeUser()
                    _ = try await makeUser()
                    let current = try await store.read { tx in try await tx.query(all) }.map(\.id)
                    for id in [seen.first, current.last(where: { !seen.contains($0) })].compactMap({ $0 }) where !deleted.contains(id) {
                        try await directory.delete(tenant: tenant.tenantId, id: id, kind: .user, actor: .system)
                        deleted.insert(id)
                    }
                }
                let final = try await store.read { tx in try await tx.query(all) }.map(\.id)
                #expect(pages >= 4, "\(order)")
                #expect(Set(seen).count == seen.count, "no row repeated (\(order))")
                let stayed = initial.filter { !deleted.contains($0) }
                #expect(stayed.allSatisfy(seen.contains), "no row that stayed is skipped (\(order))")
                // What was listed and is still there comes in the order the database lists it now.
                let listedNow = final.filter(seen.contains)
                #expect(seen.filter(listedNow.contains) == listedNow, "pages follow the order (\(order))")
            }
        }
    }

    @Test("a position whose values do not fit the order is refused", arguments: TestDatabases.all)
    func mismatchedPosition(_ database: String) async throws {
        try await withTenant(database) { store, _, tenant in
            var query = ObjectQuery(tenant: tenant.tenantId, kinds: [.user], orderBy: Self.orders[4], limit: 4)
            query.after = KeysetPosition(values: ["x"], id: "y")
            let frozen = query
            await #expect(throws: DirectoryError.self) { _ = try await store.read { tx in try await tx.query(frozen) } }
        }
    }
}
