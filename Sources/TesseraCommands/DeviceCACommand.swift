import ArgumentParser
import Foundation
import Server
import TesseraCore

/// `tessera device ca rotate|retire|status --tenant T`: the tenant's device certificate authority, which issues the
/// certificates devices authenticate with (hybrid join, the proxy, a device's own sign-in). Rotating it makes a new CA
/// for every registration from then on while the certificates the previous one issued keep working; retiring the
/// previous one refuses them. Running servers and proxies on the same database follow at the next connection. Both are
/// audited (`/auditLogs/directoryAudits`) as the command line's, with the account and host the command ran as.
struct DeviceCACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "A tenant's device certificate authority: rotate it, retire the previous one, list them.",
        subcommands: [Rotate.self, Retire.self, Status.self])

    /// What every subcommand takes.
    struct Common: ParsableArguments {
        @OptionGroup var storage: StorageOptions
        @OptionGroup var clockOptions: ClockOptions
        @Option(help: "The tenant (id or domain; default: the only one).") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        /// Runs `body` with the store open and the tenant's id; a refusal (nothing to rotate or retire, a key that does
        /// not open the CA) stops the command with its reason.
        func run<T>(_ body: (any DirectoryStore, String) async throws -> T) async throws -> T {
            do {
                return try await storage.withStore { store in
                    let tenant = try await StorageOptions.tenants(store, named: tenant)[0]
                    return try await body(store, tenant.id)
                }
            } catch let refusal as DeviceCertificateAuthorities.Refusal {
                throw ValidationError(refusal.description)
            } catch let error as KeyEncryptionError {
                throw ValidationError(error.description)
            }
        }

        /// Who the command is in the directory audit: the command line (no administrator signs in to it), with the
        /// operating system account and host it ran as, as `user@host`.
        func actor(_ subcommand: String) -> Actor {
            let process = ProcessInfo.processInfo
            return Actor(kind: .system, id: Actor.system.id, displayName: "Tessera command line (tessera device ca \(subcommand), \(process.userName)@\(process.hostName))",
                         appId: Actor.system.appId)
        }

        /// Prints the CAs, one a line (or as JSON).
        func print(_ authorities: [DeviceCertificateAuthorities.Summary]) {
            if json {
                Swift.print(JSONValue.array(authorities.map { ca in
                    ["role": .string(ca.role), "thumbprint": .string(ca.thumbprint), "notValidAfter": .string(Timestamp.format(ca.notValidAfter)),
                     "rotatedAt": .optional(ca.rotatedAt.map(Timestamp.format)), "acceptedUntil": .optional(ca.acceptedUntil.map(Timestamp.format)),
                     "retiredAt": .optional(ca.retiredAt.map(Timestamp.format))]
                }).serialized)
                return
            }
            if authorities.isEmpty { Swift.print("no device has registered in this tenant: it has no device certificate authority yet") }
            for ca in authorities {
                var line = "\(ca.role)\t\(ca.thumbprint)\tvalid until \(Timestamp.format(ca.notValidAfter))"
                if let at = ca.rotatedAt { line += "\trotated \(Timestamp.format(at))" }
                if let until = ca.acceptedUntil { line += "\tits certificates accepted until \(Timestamp.format(until)) unless retired" }
                if let at = ca.retiredAt { line += "\tretired \(Timestamp.format(at)): its certificates are refused" }
                Swift.print(line)
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new device CA: every registration from now on gets a certificate from it; the certificates of the previous one keep working until they expire or it is retired.",
            discussion: "Its key is encrypted with the key-encryption key, as the CA's own. Running servers and proxies on the same database use it at the next registration and accept both at the next connection.")
        @OptionGroup var common: Common

        func run() async throws {
            let now = common.clockOptions.clock.now
            common.print(try await common.run { store, tenant in
                try await DeviceCertificateAuthorities.rotate(tenant: tenant, store: store, keyEncryption: try common.storage.keyEncryption.load(), now: now,
                                                              actor: common.actor("rotate"))
            })
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Refuse the certificates of the previous device CAs (or the one with --thumbprint) from now on: those devices must register again.",
            discussion: "Without it, a previous CA's certificates count until the last it issued expires (ten years after the rotation).")
        @OptionGroup var common: Common
        @Option(help: "Retire only the previous CA with this SHA-1 thumbprint (as `status` prints it).") var thumbprint: String?

        func run() async throws {
            let now = common.clockOptions.clock.now
            common.print(try await common.run { store, tenant in
                try await DeviceCertificateAuthorities.retire(tenant: tenant, store: store, now: now, thumbprint: thumbprint, actor: common.actor("retire"))
            })
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tenant's device CAs: the current one, then the previous ones and whether their certificates still count.")
        @OptionGroup var common: Common

        func run() async throws {
            common.print(try await common.run { store, tenant in
                try await DeviceCertificateAuthorities.list(tenant: tenant, store: store, keyEncryption: try common.storage.keyEncryption.load())
            })
        }
    }
}
