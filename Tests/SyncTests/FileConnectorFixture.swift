import Foundation
import Testing
import Store
@testable import Sync
import TesseraCore
import TesseraTesting

/// A tenant whose one connector reads an LDIF file, for tests of the sync cycle that need no directory server.
struct FileConnectorFixture {
    let store: SQLDirectoryStore
    let directory: DirectoryService
    let tenant: TenantRecord
    let file: URL
    let cycle: SyncCycle

    func write(_ records: String...) throws { try records.joined(separator: "\n\n").write(to: file, atomically: true, encoding: .utf8) }

    func user(_ upn: String) async throws -> StoredObject? {
        try await store.read { tx in
            guard let id = try await tx.holder(tenant: tenant.id, key: UniqueKey("userPrincipalName", upn)) else { return nil }
            return try await tx.object(tenant: tenant.id, id: id)
        }
    }

    func synced(anchor: String) async throws -> StoredObject? {
        try await store.read { tx in
            guard let id = try await tx.holder(tenant: tenant.id, key: UniqueKey("onPremisesImmutableId", anchor)) else { return nil }
            return try await tx.object(tenant: tenant.id, id: id)
        }
    }

    /// A cloud-only user holding `upn` and, optionally, a proxy address.
    @discardableResult
    func cloudUser(_ upn: String, proxy: String? = nil) async throws -> StoredObject {
        var body: [String: JSONValue] = ["accountEnabled": true, "displayName": .string(upn), "userPrincipalName": .string(upn),
                                         "mailNickname": .string(String(upn.prefix { $0 != "@" }))]
        if let proxy { body["proxyAddresses"] = [.string(proxy)] }
        return try await directory.create(tenant: tenant.id, kind: .user, body: body, actor: .system, allowReadOnly: true)
    }

    func run() async throws -> SyncRun { try #require(try await cycle.run(tenant: tenant).first) }

    /// A tenant on an in-memory store with one file connector.
    ///
    /// - Parameter blockSoftMatch: a cloud user holding an incoming user's name is then a conflict, not a match.
    static func withTenant(blockSoftMatch: Bool = false, features: [String: JSONValue] = [:], _ body: (FileConnectorFixture) async throws -> Void) async throws {
        let start = try await SyncTestTenant.make()
        let store = start.store, clock = start.clock, directory = start.directory, tenant = start.tenant
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-\(UUID().uuidString).ldif")
        defer { try? FileManager.default.removeItem(at: file) }
        var settings = SyncSettings()
        var connector = SyncConnector(name: "file", ldapURL: "", bindDN: "", bindPasswordFile: "", baseDN: "OU=Staff,DC=corp,DC=example,DC=test")
        connector.ldifFile = file.path
        settings.connectors = [connector]
        settings.features.blockSoftMatchEnabled = blockSoftMatch
        settings.otherFeatures = features
        try await settings.save(tenant: tenant.id, store: store)
        do {
            try await body(FileConnectorFixture(store: store, directory: directory, tenant: tenant, file: file, cycle: SyncCycle(directory: directory, clock: clock)))
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }
}
