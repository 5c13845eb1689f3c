import ArgumentParser
import Foundation
import Logging
import Server
import Store
import TesseraCore

/// Where the key-encryption key comes from: part of every command's storage options (`serve`, `proxy`, `tessera keys`,
/// `hybrid kerberos`, `tenant create`).
struct KeyEncryptionOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A file holding the key-encryption key: base64 of 32 random bytes (`tessera keys generate`). It encrypts the keys Tessera keeps in the database (AES-256-GCM): the token-signing keys, the deployment's MAC key, every tenant's certificate authorities (device, health agents', TLS inspection) and hybrid join's Kerberos service keys.",
                               discussion: "Default: $TESSERA_KEY_ENCRYPTION_KEY. Without either the keys are stored unencrypted, and serve says so at start. Every node (serve, proxy, and the commands that use these keys) needs the same key."))
    var keyEncryptionKeyFile: String?

    /// The key, or nil when none is given; a key that cannot be read stops the command.
    func load() throws -> KeyEncryptionKey? {
        do { return try KeyEncryptionKey.load(file: keyEncryptionKeyFile) } catch { throw ValidationError(error.description) }
    }
}

extension Serve {
    /// The key-encryption key for `serve`, warning when there is none.
    static func keyEncryptionKey(_ options: KeyEncryptionOptions, logger: Logger) throws -> KeyEncryptionKey? {
        let key = try options.load()
        if key == nil {
            logger.warning("No key-encryption key (--key-encryption-key-file or \(KeyEncryptionKey.environmentVariable)): the token-signing keys, the deployment's MAC key, the tenants' CA keys and Kerberos service keys are stored unencrypted in the database")
        }
        return key
    }

    /// `--signing-key-rotation-days` as seconds, nil for 0 (by hand only).
    static func signingKeyRotation(days: Int) throws -> TimeInterval? {
        guard (0...365).contains(days) else { throw ValidationError("--signing-key-rotation-days must be 0 (only `tessera keys rotate`) to 365") }
        return days == 0 ? nil : TimeInterval(days) * 86_400
    }
}

/// `tessera keys`: the deployment's token-signing keys and the key-encryption key that protects them at rest.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "The token-signing keys and the key-encryption key that protects every stored key.",
        subcommands: [List.self, Rotate.self, Rewrap.self, Generate.self])

    /// Says what a command does not stop on: a key that does not open the stored keys.
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as KeyEncryptionError { throw ValidationError(error.description) }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the published signing keys (kid and role), then every stored key and whether it is encrypted (the keys themselves are never printed).")
        @OptionGroup var storage: StorageOptions
        @OptionGroup var clockOptions: ClockOptions

        func run() async throws {
            let kek = try storage.keyEncryption.load()
            let (keys, since, atRest) = try await KeysCommand.run {
                try await storage.withStore { store in
                    let (keys, since) = try await DeploymentKeys.list(store: store, keyEncryption: kek, now: clockOptions.clock.now)
                    return (keys, since, try await DeploymentKeys.atRest(store: store))
                }
            }
            for key in keys { print("\(key.role)\t\(key.kid)") }
            print("current since \(Timestamp.format(since))")
            for key in atRest { print("\(key.sealed ? "encrypted" : "plain")\t\(key.name)") }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rotate the signing keys now: the next key (published since the last rotation) signs, the current one stays published as the previous, a new next key is published.",
            discussion: "Running servers on the same database take the new keys within about a second. Tokens the previous key signed stay valid until they expire; those of the key before it stop verifying, so do not rotate twice within a token lifetime unless that key is compromised.")
        @OptionGroup var storage: StorageOptions
        @OptionGroup var clockOptions: ClockOptions

        func run() async throws {
            let kek = try storage.keyEncryption.load()
            let keys = try await KeysCommand.run {
                try await storage.withStore { try await DeploymentKeys.rotate(store: $0, keyEncryption: kek, now: clockOptions.clock.now) }
            }
            for key in keys { print("\(key.role)\t\(key.kid)") }
        }
    }

    struct Rewrap: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt the stored keys with a new key-encryption key (or encrypt plain ones, or decrypt them).",
            discussion: "All of them, the deployment's and every tenant's, in one transaction. Stop every node first, then start them with the new key. Without --old-key-file the stored keys must be plain; without --new-key-file they are stored plain (--key-encryption-key-file is not used here).")
        @OptionGroup var storage: StorageOptions
        @Option(help: "The key-encryption key the keys are encrypted with now.") var oldKeyFile: String?
        @Option(help: "The key-encryption key to encrypt them with.") var newKeyFile: String?

        func run() async throws {
            guard oldKeyFile != nil || newKeyFile != nil else { throw ValidationError("give --old-key-file, --new-key-file or both") }
            let old = try KeyEncryptionOptions.loading(oldKeyFile), new = try KeyEncryptionOptions.loading(newKeyFile)
            let names = try await KeysCommand.run { try await storage.withStore { try await DeploymentKeys.rewrap(store: $0, old: old, new: new) } }
            print("\(new == nil ? "decrypted" : "encrypted"): \(names.joined(separator: ", "))")
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a new random key-encryption key (base64 of 32 bytes) to keep in a file readable only by Tessera.")
        func run() async throws { print(KeyEncryptionKey.generate()) }
    }
}

extension KeyEncryptionOptions {
    /// The key in `file` (not the environment's), or nil when no file is named.
    static func loading(_ file: String?) throws -> KeyEncryptionKey? {
        guard let file else { return nil }
        do { return try KeyEncryptionKey.load(file: file, environment: [:]) } catch { throw ValidationError(error.description) }
    }
}
