import ArgumentParser
import Foundation
import Server
import Store
import Sync
import TesseraCore

/// `tessera sync`: directory sync from on-premises Active Directory — connectors, runs, errors, quarantine,
/// deletion approvals and the privileged-account audit.
struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync", abstract: "Directory sync from on-premises Active Directory.",
        subcommands: [Connector.self, Run.self, Errors.self, Quarantine.self, ApproveDeletions.self, AuditPrivileged.self, Configure.self,
                      CrossTenant.self])

    struct Common: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run<T>(_ body: (SQLDirectoryStore, TenantRecord, SyncCycle) async throws -> T) async throws -> T {
            try await storage.withStore { store in
                let tenant = try await StorageOptions.tenants(store, named: self.tenant)[0]
                return try await body(store, tenant, SyncCycle(directory: DirectoryService(store: store)))
            }
        }

        func emit(_ value: JSONValue, _ text: @autoclosure () -> String) {
            say(json ? value.serialized : text())
        }
    }

    struct Connector: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Configure the directories sync reads.", subcommands: [Add.self, List.self, Remove.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add an LDAP connector to Active Directory.")
            @OptionGroup var common: Common
            @Option(help: "A name for the connector.") var name: String
            @Option(help: "ldaps://host[:port], or ldap://host[:port] (StartTLS unless --plain).") var ldapUrl: String?
            @Option(help: "The account sync binds as (it needs Replicating Directory Changes).") var bindDn: String?
            @Option(help: "A file holding the bind password; it is read at each run and never stored.") var bindPasswordFile: String?
            @Option(help: "An LDIF file to read instead of a directory (read whole at each run).") var ldif: String?
            @Option(help: "The scope: users under this DN are synced.") var baseDn: String
            @Option(help: "PEM file of the CA that signed the domain controller's certificate.") var caFile: String?
            @Flag(help: "Accept any certificate (tests only).") var insecureSkipVerify = false
            @Flag(help: "No TLS on an ldap:// URL (the password crosses the network in the clear).") var plain = false
            @Flag(help: "Write each synced user's sourceAnchor to ms-DS-ConsistencyGuid when it is empty (the bind account needs write access).")
            var writeBackAnchor = false

            func validate() throws {
                if let ldif {
                    guard ldapUrl == nil, bindDn == nil, bindPasswordFile == nil else { throw ValidationError("--ldif replaces --ldap-url, --bind-dn and --bind-password-file") }
                    guard FileManager.default.isReadableFile(atPath: ldif) else { throw ValidationError("cannot read \(ldif)") }
                    return
                }
                guard let ldapUrl, let bindDn, !bindDn.isEmpty, let bindPasswordFile else {
                    throw ValidationError("give --ldap-url, --bind-dn and --bind-password-file (or --ldif FILE)")
                }
                guard FileManager.default.isReadableFile(atPath: bindPasswordFile) else { throw ValidationError("cannot read \(bindPasswordFile)") }
                guard ldapUrl.lowercased().hasPrefix("ldap://") || ldapUrl.lowercased().hasPrefix("ldaps://") else {
                    throw ValidationError("--ldap-url must be ldap://… or ldaps://…")
                }
                if let caFile { guard FileManager.default.isReadableFile(atPath: caFile) else { throw ValidationError("cannot read \(caFile)") } }
            }

            func run() async throws {
                try await common.run { store, tenant, _ in
                    func absolute(_ path: String?) -> String? { path.map { URL(fileURLWithPath: $0).standardizedFileURL.path } }
                    var connector = SyncConnector(name: name, ldapURL: ldapUrl ?? "", bindDN: bindDn ?? "", bindPasswordFile: absolute(bindPasswordFile) ?? "",
                                                  baseDN: baseDn, caFile: absolute(caFile), insecureSkipVerify: insecureSkipVerify, startTLS: !plain)
                    connector.writeBackAnchor = writeBackAnchor && ldif == nil
                    connector.ldifFile = absolute(ldif)
                    do {
                        // One transaction, the setting locked: a change another node makes at once is kept.
                        try await SyncSettings.addConnector(connector, tenant: tenant.id, store: store)
                    } catch let refusal as SyncSettings.ConnectorRefusal {
                        throw ValidationError(refusal.description)
                    }
                    common.emit(["name": .string(name)], "connector \(name) added; `tessera sync run` reads it")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the connectors.")
            @OptionGroup var common: Common
            func run() async throws {
                try await common.run { store, tenant, _ in
                    let connectors = try await SyncSettings.load(tenant: tenant.id, store: store).connectors
                    common.emit(.array(connectors.map { ["name": .string($0.name), "ldapUrl": .string($0.ldapURL), "baseDn": .string($0.baseDN),
                                                        "bindDn": .string($0.bindDN), "delta": .bool($0.cookie != nil)] }),
                                connectors.map { "\($0.name)  \($0.ldifFile ?? $0.ldapURL)  \($0.baseDN)" }.joined(separator: "\n"))
                }
            }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a connector (the users it synced stay, still synced).")
            @OptionGroup var common: Common
            @Argument var name: String
            func run() async throws {
                try await common.run { store, tenant, _ in
                    do {
                        try await SyncSettings.removeConnector(named: name, tenant: tenant.id, store: store)
                    } catch let refusal as SyncSettings.ConnectorRefusal {
                        throw ValidationError(refusal.description)
                    }
                    common.emit(["removed": .string(name)], "connector \(name) removed")
                }
            }
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run one sync cycle now.")
        @OptionGroup var common: Common
        @Option(help: "Only this connector.") var connector: String?
        @Flag(help: "Read everything, not just what changed.") var full = false

        func run() async throws {
            let runs = try await common.run { _, tenant, cycle in try await cycle.run(tenant: tenant, connector: connector, full: full) }
            for run in runs {
                var json = run.json
                if case .object(var o) = json { o["pendingDeletions"] = nil; json = .object(o) }
                common.emit(json, "\(run.connector): \(run.status) — imported \(run.imported), added \(run.added), updated \(run.updated), deleted \(run.deleted), quarantined \(run.quarantined)"
                    + run.errors.map { "\n  \($0["code"]?.stringValue ?? ""): \($0["distinguishedName"]?.stringValue ?? "") \($0["message"]?.stringValue ?? "")" }.joined()
                    + (run.stopReason.map { "\n  \($0)" } ?? "")
                    + (run.pendingDeletions.isEmpty ? "" : "\n  \(run.pendingDeletions.count) deletions held back: approve with `tessera sync approve-deletions \(run.id)`"))
            }
            if runs.contains(where: { $0.status == "failed" }) { throw ExitCode(1) }
        }
    }

    struct Errors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Objects sync could not export, with their errors.")
        @OptionGroup var common: Common
        func run() async throws {
            try await common.run { _, tenant, cycle in
                let errors = try await cycle.errors(tenant: tenant.id)
                common.emit(.array(errors), errors.isEmpty ? "no sync errors"
                    : errors.map { "\($0["state"]?.stringValue ?? "")  \($0["code"]?.stringValue ?? "")  \($0["distinguishedName"]?.stringValue ?? "")\n    \($0["message"]?.stringValue ?? "")" }.joined(separator: "\n"))
            }
        }
    }

    struct Quarantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Objects held back by a refused match.", subcommands: [List.self, Delete.self])

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List quarantined objects.")
            @OptionGroup var common: Common
            func run() async throws {
                try await common.run { _, tenant, cycle in
                    let items = try await cycle.quarantined(tenant: tenant.id)
                    common.emit(.array(items), items.isEmpty ? "nothing in quarantine"
                        : items.map { "\($0["id"]?.stringValue ?? "")  \($0["code"]?.stringValue ?? "")  \($0["distinguishedName"]?.stringValue ?? "")" }.joined(separator: "\n"))
                }
            }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Permanently delete a quarantined object; the next run reads its directory again and matches it anew.")
            @OptionGroup var common: Common
            @Argument var id: String
            func run() async throws {
                try await common.run { _, tenant, cycle in
                    try await cycle.deleteQuarantined(tenant: tenant.id, id: id)
                    common.emit(["deleted": .string(id)], "deleted \(id) from quarantine; the next run reads everything again")
                }
            }
        }
    }

    struct ApproveDeletions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "approve-deletions",
                                                        abstract: "Carry out the deletions a run held back at the accidental-deletion threshold.")
        @OptionGroup var common: Common
        @Argument var run: String
        func run() async throws {
            try await common.run { _, tenant, cycle in
                let deleted = try await cycle.approveDeletions(tenant: tenant, run: run)
                common.emit(["deleted": .int(Int64(deleted))], "\(deleted) users deleted")
            }
        }
    }

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or change the tenant's sync settings (the switches are also at Graph's /directory/onPremisesSynchronization).")
        @OptionGroup var common: Common
        @Option(help: "From this date (YYYY-MM-DD, UTC) hard matches into cloud accounts that hold a role are refused (Entra: 2026-06-01).")
        var hardMatchEnforcementDate: String?
        @Option(help: "Stop a run that would delete more than this many objects (or this percentage).") var deletionThreshold: Int?
        @Option(help: "enabledForCount, enabledForPercentage or disabled.") var deletionPrevention: String?

        func run() async throws {
            try await common.run { store, tenant, _ in
                let (day, type, threshold) = (hardMatchEnforcementDate, deletionPrevention, deletionThreshold)
                // One transaction, the setting locked: a change another node makes at once (a connector, a run's record) is kept.
                let settings = try await SyncSettings.update(tenant: tenant.id, store: store) { settings in
                    if let day {
                        guard let parsed = Timestamp.parse(day + "T00:00:00Z") else { throw ValidationError("--hard-match-enforcement-date must be YYYY-MM-DD") }
                        settings.enforcementDate = parsed
                    }
                    if let type {
                        guard ["enabledForCount", "enabledForPercentage", "disabled"].contains(type) else {
                            throw ValidationError("--deletion-prevention must be enabledForCount, enabledForPercentage or disabled")
                        }
                        settings.deletionPreventionType = type
                    }
                    if let threshold {
                        guard threshold >= 1, settings.deletionPreventionType != "enabledForPercentage" || threshold <= 100 else {
                            throw ValidationError("--deletion-threshold must be at least 1 (and at most 100 for a percentage)")
                        }
                        settings.deletionThreshold = threshold
                    }
                    return settings
                }
                let date = String(Timestamp.format(settings.enforcementDate).prefix(10))
                common.emit(["hardMatchEnforcementDate": .string(date), "deletionPrevention": .string(settings.deletionPreventionType),
                             "deletionThreshold": .int(Int64(settings.deletionThreshold))],
                            "hard-match protection from \(date); deletions: \(settings.deletionPreventionType), threshold \(settings.deletionThreshold)")
            }
        }
    }

    struct AuditPrivileged: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "audit-privileged",
                                                        abstract: "Synced accounts that hold a directory role, and how each was matched.")
        @OptionGroup var common: Common
        func run() async throws {
            try await common.run { _, tenant, cycle in
                let accounts = try await cycle.privilegedSyncedAccounts(tenant: tenant.id)
                common.emit(.array(accounts), accounts.isEmpty ? "no synced account holds a role"
                    : accounts.map { "\($0["userPrincipalName"]?.stringValue ?? "")  \($0["matchedBy"]?.stringValue ?? "")  \(($0["roles"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", "))" }.joined(separator: "\n"))
            }
        }
    }
}

extension SyncCommand {
    /// `tessera sync cross-tenant grant|list|revoke`: the credentials this (target) tenant grants source tenants of
    /// other deployments, whose synchronization jobs then push with it (their `SecretToken`).
    struct CrossTenant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cross-tenant", abstract: "Credentials for cross-tenant synchronization from tenants of other deployments.",
            subcommands: [Grant.self, List.self, Revoke.self])

        struct Grant: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Grant a source tenant of another deployment a credential to push into this tenant (printed once).")
            @OptionGroup var common: Common
            @Option(help: "The source tenant's id.") var source: String

            func run() async throws {
                try await common.run { store, tenant, _ in
                    let (grant, credential) = try await CrossTenantSyncGrants(store: store).grant(tenant: tenant.id, source: source, now: Date())
                    common.emit(["id": .string(grant.id), "sourceTenantId": .string(grant.sourceTenantID), "credential": .string(credential),
                                 "endpoint": .string("/\(tenant.id)/crossTenantSynchronization/batches")],
                                "Credential for tenant \(grant.sourceTenantID) (shown once; the source saves it as SecretToken):\n\(credential)")
                }
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the credentials granted (never the secrets).")
            @OptionGroup var common: Common

            func run() async throws {
                try await common.run { store, tenant, _ in
                    let grants = try await CrossTenantSyncGrants(store: store).list(tenant: tenant.id)
                    common.emit(.array(grants.map { ["id": .string($0.id), "sourceTenantId": .string($0.sourceTenantID),
                                                     "createdDateTime": .string($0.createdDateTime)] }),
                                grants.map { "\($0.id)  \($0.sourceTenantID)  \($0.createdDateTime)" }.joined(separator: "\n"))
                }
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Withdraw a credential: batches presenting it are refused from now on.")
            @OptionGroup var common: Common
            @Argument(help: "The grant's id.") var id: String

            func run() async throws {
                try await common.run { store, tenant, _ in
                    try await CrossTenantSyncGrants(store: store).revoke(tenant: tenant.id, id: id)
                    common.emit(["revoked": .string(id)], "Revoked \(id).")
                }
            }
        }
    }
}
