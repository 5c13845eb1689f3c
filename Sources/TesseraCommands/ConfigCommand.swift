import ArgumentParser
import Foundation
import Server
import TesseraCore

/// `tessera config`: the configuration file of `serve`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check serve's configuration file.", subcommands: [Check.self])

    /// `tessera config check`: what `serve` would run with, checked the way `serve` checks it at start.
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a configuration file and print the effective configuration (secrets masked), each value with where it came from.",
            discussion: "Flags win over environment variables (TESSERA_ and the option in upper snake case), which win over the file, which wins over the defaults. serve's own options may follow, to see them override the rest. Exits 64 with the file, line and key when anything is wrong.")

        @Option(help: "The configuration file (default: $TESSERA_CONFIG).") var config: String?
        @Argument(parsing: .allUnrecognized, help: "serve's options, as they would be given to it.") var serveOptions: [String] = []

        func run() throws {
            let report = try Self.report(arguments: (config.map { ["--config", $0] } ?? []) + serveOptions,
                                         environment: ProcessInfo.processInfo.environment)
            print(report, terminator: "")
        }

        /// The effective configuration as a TOML file, every line commented with its source; the first problem as an
        /// error instead.
        static func report(arguments: [String], environment: [String: String],
                           read: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }) throws -> String {
            let resolved: ServeConfiguration.Resolved
            do { resolved = try ServeConfiguration.resolve(arguments: arguments, environment: environment, read: read) } catch {
                throw ValidationError("configuration: \(error.description)")
            }
            var serve = try Serve.parse(resolved.arguments)
            try serve.validate()
            var lines = ["# tessera serve's effective configuration" + (resolved.configPath.map { " (file: \($0))" } ?? " (no configuration file)")]
            for option in ServeConfiguration.options {
                let value = option.value(serve)
                let text = ServeConfiguration.display(value, secret: option.secret)
                let source = resolved.sources[option.name] ?? .defaultValue
                lines.append(value == nil ? "# \(option.name) = \(text)  # \(source)" : "\(option.name) = \(text)  # \(source)")
            }
            if let key = environment[KeyEncryptionKey.environmentVariable], !key.isEmpty, serve.storage.keyEncryption.keyEncryptionKeyFile == nil {
                lines.append("# key-encryption key: ******** (env \(KeyEncryptionKey.environmentVariable))")
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}
