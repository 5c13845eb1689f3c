import ArgumentParser
import Foundation
import Store
import TesseraCore

/// `tessera ca`: Conditional Access from the server's command line, for the day a tenant's policies lock every
/// administrator out and no Graph call or admin center page can be made to undo them.
struct ConditionalAccessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "Conditional Access from the command line (the recovery path of a locked-out tenant).",
        subcommands: [List.self, BreakGlass.self])

    /// Who the command line is in the audit log.
    static let actor = Actor(kind: .system, id: Actor.system.id, displayName: "Tessera command line (tessera ca break-glass)",
                             appId: Actor.system.appId)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's Conditional Access policies and their state.")
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?

        func run() async throws {
            try await storage.withStore { store in
                for tenant in try await StorageOptions.tenants(store, named: tenant) {
                    for policy in try await ConditionalAccessCommand.policies(store, tenant: tenant.id) {
                        say("\(policy.id)  \(policy.body["state"]?.stringValue ?? "?")  \(policy.body["displayName"]?.stringValue ?? "")")
                    }
                }
            }
        }
    }

    struct BreakGlass: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "break-glass",
            abstract: "Turn every enabled Conditional Access policy of the tenant to report-only (audited), so administrators can sign in again.",
            discussion: """
            Each enabled policy becomes `enabledForReportingButNotEnforced`: still evaluated and written to the sign-in log, \
            never enforced. The change is an ordinary, audited update by "Tessera command line"; a running server applies it \
            within a second. Turn the policies back on, fixed, from the admin center or Graph.
            """)
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?

        func run() async throws {
            try await storage.withStore { store in
                let directory = DirectoryService(store: store)
                for tenant in try await StorageOptions.tenants(store, named: tenant) {
                    let enabled = try await ConditionalAccessCommand.policies(store, tenant: tenant.id)
                        .filter { $0.body["state"]?.stringValue == "enabled" }
                    for policy in enabled {
                        _ = try await directory.update(tenant: tenant.id, id: policy.id, kind: .conditionalAccessPolicy,
                                                       patch: ["state": "enabledForReportingButNotEnforced"], actor: ConditionalAccessCommand.actor)
                        say("report-only: \(policy.id)  \(policy.body["displayName"]?.stringValue ?? "")")
                    }
                    say("\(tenant.domain): \(enabled.count) enabled polic\(enabled.count == 1 ? "y" : "ies") turned to report-only.")
                }
            }
        }
    }

    static func policies(_ store: SQLDirectoryStore, tenant: String) async throws -> [StoredObject] {
        try await store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [.conditionalAccessPolicy])) }
            .filter { $0.deletedAt == nil }
            .sorted { ($0.body["displayName"]?.stringValue ?? "") < ($1.body["displayName"]?.stringValue ?? "") }
    }
}
