import ArgumentParser
import Foundation
import Server
import Store
import Sync
import TesseraCore

/// `tessera hybrid kerberos enable|rotate|status|disable`: hybrid join through Kerberos, set up in Active Directory
/// through a sync connector's LDAP connection.
struct HybridCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hybrid", abstract: "Hybrid identity: the on-premises side meets Tessera.", subcommands: [Kerberos.self])

    struct Kerberos: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hybrid join through Kerberos: domain computers register as devices with a ticket from their DC.",
            subcommands: [Enable.self, Rotate.self, Status.self, Disable.self])
    }

    struct Common: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @Option(help: "Tenant id or domain (default: the only tenant).") var tenant: String?
        @Option(help: "The sync connector whose LDAP connection reaches the domain (LDAPS or StartTLS).") var connector: String
        @Flag(help: "Print JSON.") var json = false

        func run<T>(_ body: (HybridKerberosSetup, TenantRecord, SyncConnector) async throws -> T) async throws -> T {
            let sealing = KeySealing(keyEncryption: try storage.keyEncryption.load())
            return try await storage.withStore { store in
                let tenant = try await StorageOptions.tenants(store, named: self.tenant)[0]
                let connectors = try await SyncSettings.load(tenant: tenant.id, store: store).connectors
                guard let connector = connectors.first(where: { $0.name == self.connector }), connector.ldifFile == nil else {
                    throw ValidationError("no LDAP connector named '\(self.connector)' (tessera sync connector list)")
                }
                do {
                    return try await body(HybridKerberosSetup(store: store, sealing: sealing), tenant, connector)
                } catch let error as HybridKerberosError {
                    throw ValidationError(error.description)
                } catch let error as KeyEncryptionError {
                    throw ValidationError(error.description)
                }
            }
        }

        func emit(_ domain: KerberosDomain, extra: [String: JSONValue] = [:], _ text: String) {
            var value: [String: JSONValue] = [
                "domain": .string(domain.realm), "servicePrincipalName": .string(domain.servicePrincipal),
                "serviceAccount": .string(domain.accountDN), "serviceConnectionPoint": .string(domain.scpDN),
                "keyVersion": .int(Int64(domain.keyVersion)), "created": .string(Timestamp.format(domain.created)),
                "keyVersions": .array(domain.keys.map { key in
                    ["version": .int(Int64(key.version)), "created": .string(Timestamp.format(key.created)),
                     "retiresAt": .optional(key.retiresAt.map(Timestamp.format))]
                }),
            ]
            value.merge(extra) { _, new in new }
            say(json ? JSONValue.object(value).serialized : text)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the service account (SPN adrs/<host>, its key set by Tessera) and the SCP naming the tenant.")
        @OptionGroup var common: Common
        @Option(help: "The host name devices reach Tessera by (the SPN is adrs/<host>).") var host: String
        @Option(help: "Tessera's URL as devices reach it, written into the SCP (default https://<host>).") var publicUrl: String?

        func run() async throws {
            try await common.run { setup, tenant, connector in
                let url = (publicUrl ?? "https://\(host)").trimmingCharacters(in: CharacterSet(charactersIn: "/"))
                let domain = try await setup.enable(tenant: tenant, connector: connector, host: host, publicURL: url)
                common.emit(domain, "hybrid join through Kerberos enabled in \(domain.realm): \(domain.servicePrincipal) on "
                    + "\(domain.accountDN), key version \(domain.keyVersion); SCP \(domain.scpDN)")
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give the service account a new key; the previous one is accepted for the grace period.")
        @OptionGroup var common: Common
        @Option(help: "Hours the previous key is still accepted, for tickets already issued (AD's ticket lifetime: 10).")
        var graceHours: Double = 10

        func validate() throws {
            guard graceHours >= 0, graceHours <= 24 * 7 else { throw ValidationError("--grace-hours must be between 0 and 168") }
        }

        func run() async throws {
            try await common.run { setup, tenant, connector in
                let domain = try await setup.rotate(tenant: tenant, connector: connector, grace: graceHours * 3600)
                let previous = domain.keys.dropFirst().first
                common.emit(domain, "key version \(domain.keyVersion) is current"
                    + (previous.map { "; version \($0.version) accepted until \(Timestamp.format($0.retiresAt ?? domain.created))" } ?? ""))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare the service account's key version in AD (KeyVersion) with Tessera's (CloudKeyVersion).")
        @OptionGroup var common: Common

        func run() async throws {
            let inSync = try await common.run { setup, tenant, connector in
                let status = try await setup.status(tenant: tenant, connector: connector)
                let ad = status.directoryKeyVersion.map(String.init) ?? "missing"
                common.emit(status.domain, extra: [
                    "directoryKeyVersion": status.directoryKeyVersion.map { .int(Int64($0)) } ?? .null,
                    "cloudKeyVersion": .int(Int64(status.domain.keyVersion)), "scpPresent": .bool(status.scpPresent),
                    "inSync": .bool(status.inSync),
                ], "KeyVersion (AD) \(ad), CloudKeyVersion (Tessera) \(status.domain.keyVersion); SCP "
                    + (status.scpPresent ? "present" : "missing") + (status.inSync ? "; in sync" : "; OUT OF SYNC: run rotate"))
                return status.inSync
            }
            if !inSync { throw ExitCode(3) }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the SCP and the service account from AD, and the tenant's keys (no ticket is accepted afterwards).")
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { setup, tenant, connector in
                let domain = try await setup.disable(tenant: tenant, connector: connector)
                common.emit(domain, extra: ["disabled": true], "hybrid join through Kerberos disabled in \(domain.realm)")
            }
        }
    }
}
