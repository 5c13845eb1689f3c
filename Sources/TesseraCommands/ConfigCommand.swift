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
            let checked: Serve.CheckedOptions
            do {
                checked = try serve.checkedOptions()
                try checkFiles(of: serve, publicURLs: checked.publicURLs, environment: environment)
            } catch let error as ValidationError {
                throw ValidationError("configuration: " + sourced(error.message, resolved.sources))
            }
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

        /// The files `serve` reads at start and refuses to start without, read as it reads them: the key-encryption key
        /// (a file or the environment's) and the organisation's certificate and key (covering the canonical public URL's
        /// host, valid now, matching).
        static func checkFiles(of serve: Serve, publicURLs: [String], environment: [String: String]) throws {
            do { _ = try KeyEncryptionKey.load(file: serve.storage.keyEncryption.keyEncryptionKeyFile, environment: environment) } catch {
                // The environment's key is named by its variable already; a file's by the option, so its source is added.
                throw ValidationError(serve.storage.keyEncryption.keyEncryptionKeyFile == nil ? error.description : "--key-encryption-key-file: \(error.description)")
            }
            _ = try serve.serverTLS(canonical: publicURLs[0], others: publicURLs.dropFirst(), announce: false)
        }

        /// A refusal of an option's value with where that value came from (the file and line, or the variable).
        static func sourced(_ message: String, _ sources: [String: ServeConfiguration.Source]) -> String {
            guard message.hasPrefix("--"), let name = message.dropFirst(2).split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "-") }).first,
                  let source = sources[String(name)], source != .defaultValue else { return message }
            return "\(message) (\(source))"
        }
    }
}
