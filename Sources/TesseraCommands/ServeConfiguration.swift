import ArgumentParser
import Foundation
import Logging
import Server

/// `serve`'s options from a configuration file and the environment as well as flags: flags win over environment
/// variables (`TESSERA_` and the option's name in upper snake case), which win over the file (`--config FILE` or
/// `TESSERA_CONFIG`; keys are the options' long names), which wins over the defaults.
///
/// It works on the command line before it is parsed: every option the flags do not give is added from the
/// environment or the file, checked first so that a wrong one is refused naming the variable, or the file, line and
/// key. The process's own command line (what `ps` shows) is not changed: a password in the file or the environment
/// stays out of it.
enum ServeConfiguration {
    /// How an option's value is written and checked.
    enum Kind: Sendable {
        case string
        case integer(ClosedRange<Int>)
        case flag
        case strings
    }

    /// One of `serve`'s options.
    struct Setting: Sendable {
        /// The long name without dashes: the file's key.
        var name: String
        var kind: Kind
        /// It may hold a secret: masked when shown.
        var secret = false
        /// What else a value must be; the message says why not.
        var check: (@Sendable (String) -> String?)? = nil
        /// The effective value of a parsed `serve`, nil when it is not set.
        var value: @Sendable (Serve) -> ConfigurationFile.Value?

        /// The environment variable: TESSERA_ and the name in upper snake case.
        var environmentVariable: String { "TESSERA_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    /// Every option of `serve` but `--config` (a test checks none is missing).
    static let options: [Setting] = [
        Setting(name: "data", kind: .string) { .string($0.storage.data) },
        Setting(name: "database", kind: .string, secret: true) { $0.storage.database.map(ConfigurationFile.Value.string) },
        Setting(name: "key-encryption-key-file", kind: .string) { $0.storage.keyEncryption.keyEncryptionKeyFile.map(ConfigurationFile.Value.string) },
        Setting(name: "host", kind: .string) { .string($0.host) },
        Setting(name: "port", kind: .integer(0...65_535)) { .integer($0.port) },
        Setting(name: "http", kind: .flag) { .boolean($0.http) },
        Setting(name: "allow-http-on-network", kind: .flag) { .boolean($0.allowHttpOnNetwork) },
        Setting(name: "tls-cert", kind: .string) { $0.tlsCert.map(ConfigurationFile.Value.string) },
        Setting(name: "tls-key", kind: .string) { $0.tlsKey.map(ConfigurationFile.Value.string) },
        Setting(name: "tls-reload-interval", kind: .integer(0...86_400)) { .integer($0.tlsReloadInterval) },
        Setting(name: "attestation-roots", kind: .string) { $0.attestationRoots.map(ConfigurationFile.Value.string) },
        Setting(name: "identity-provider-ca", kind: .string) { $0.identityProviderCa.map(ConfigurationFile.Value.string) },
        Setting(name: "backup-retention-days", kind: .integer(1...365)) { .integer($0.backupRetentionDays) },
        Setting(name: "sync-interval", kind: .integer(0...10_080)) { .integer($0.syncInterval) },
        Setting(name: "public-url", kind: .strings,
               check: { NetworkPolicy.normalise($0) == nil ? "\($0) is not an http(s):// URL with a host name and nothing after it" : nil }) {
            .strings($0.publicURL)
        },
        Setting(name: "trusted-proxy", kind: .strings,
               check: { NetworkPolicy.proxyRange($0) == nil ? "\($0) is not an IP address or CIDR range" : nil }) { .strings($0.trustedProxy) },
        Setting(name: "forwarded-headers", kind: .string,
               check: { ForwardedHeaders(rawValue: $0) == nil ? "\($0) is not one of \(ForwardedHeaders.allCases.map(\.rawValue).joined(separator: ", "))" : nil }) {
            .string($0.forwardedHeaders)
        },
        Setting(name: "max-connections-per-address", kind: .integer(1...Int.max)) { .integer($0.maxConnectionsPerAddress) },
        Setting(name: "idle-timeout", kind: .integer(1...3600)) { .integer($0.idleTimeout) },
        Setting(name: "graph-rate-limit", kind: .integer(0...Int.max)) { .integer($0.graphRateLimit) },
        Setting(name: "token-rate-limit", kind: .integer(0...Int.max)) { .integer($0.tokenRateLimit) },
        Setting(name: "country-database", kind: .string) { $0.countryDatabase.map(ConfigurationFile.Value.string) },
        Setting(name: "health-listen", kind: .string,
               check: { $0.contains(":") ? nil : "\($0) is not HOST:PORT" }) { $0.healthListen.map(ConfigurationFile.Value.string) },
        Setting(name: "drain-seconds", kind: .integer(0...300)) { .integer($0.drainSeconds) },
        Setting(name: "shutdown-timeout", kind: .integer(1...3600)) { .integer($0.shutdownTimeout) },
        Setting(name: "signing-key-rotation-days", kind: .integer(0...365)) { .integer($0.signingKeyRotationDays) },
        Setting(name: "log-format", kind: .string,
               check: { LogFormat(rawValue: $0) == nil ? "\($0) is not one of \(LogFormat.allCases.map(\.rawValue).joined(separator: ", "))" : nil }) {
            .string($0.logFormat.rawValue)
        },
        Setting(name: "log-level", kind: .string,
               check: { Logger.Level(rawValue: $0) == nil ? "\($0) is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))" : nil }) {
            .string($0.logLevel)
        },
    ]

    /// Where an effective value came from.
    enum Source: Equatable, CustomStringConvertible {
        case flag
        case environment(String)
        case file(path: String, line: Int)
        case defaultValue

        var description: String {
            switch self {
            case .flag: "flag"
            case .environment(let name): "env \(name)"
            case .file(let path, let line): "file \(path):\(line)"
            case .defaultValue: "default"
            }
        }
    }

    /// `serve`'s command line with the environment's and the file's options added, and where each option came from.
    struct Resolved {
        var arguments: [String]
        var sources: [String: Source]
        var configPath: String?
    }

    /// The variable naming the configuration file when `--config` does not.
    static let configVariable = "TESSERA_CONFIG"

    /// Resolves `arguments` (what follows `serve`) against `environment` and the configuration file, which `read`
    /// returns the text of. Throws the first thing wrong, saying where.
    static func resolve(arguments: [String], environment: [String: String],
                        read: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }) throws(ConfigurationError) -> Resolved {
        // The long options the command line gives (`--name value` or `--name=value`); `--` ends them.
        var given: Set<String> = []
        var configPath: String?
        var index = 0
        while index < arguments.count, arguments[index] != "--" {
            let argument = arguments[index]
            if argument.hasPrefix("--") {
                let name = String(argument.dropFirst(2).prefix { $0 != "=" })
                given.insert(name)
                if name == "config" {
                    if let equals = argument.firstIndex(of: "=") {
                        configPath = String(argument[argument.index(after: equals)...])
                    } else if index + 1 < arguments.count {
                        configPath = arguments[index + 1]
                    }
                }
            }
            index += 1
        }
        if configPath == nil, let named = environment[configVariable], !named.isEmpty { configPath = named }
        var file = ConfigurationFile.empty
        if let configPath {
            let text: String
            do { text = try read(configPath) } catch { throw ConfigurationError("\(configPath): cannot read the configuration file (\(error.localizedDescription))") }
            file = try ConfigurationFile(parsing: text, path: configPath)
            let known = Set(options.map(\.name))
            for key in file.keys where !known.contains(key) {
                let entry = file.entries[key]!
                let hint = key == "config" ? " (a configuration file cannot name another)" : " (keys are serve's long option names, e.g. public-url)"
                throw ConfigurationError("\(configPath):\(entry.line):\(entry.column): unknown key '\(key)'\(hint)")
            }
        }
        var added: [String] = []
        var sources: [String: Source] = [:]
        for option in options {
            if given.contains(option.name) { sources[option.name] = .flag; continue }
            let value: ConfigurationFile.Value
            if let text = environment[option.environmentVariable], !text.isEmpty {
                value = try fromEnvironment(text, option: option)
                sources[option.name] = .environment(option.environmentVariable)
            } else if let configPath, let entry = file.entries[option.name] {
                value = try check(entry.value, option: option) { "\(configPath):\(entry.line):\(entry.column): key '\(option.name)': \($0)" }
                sources[option.name] = .file(path: configPath, line: entry.line)
            } else {
                sources[option.name] = .defaultValue
                continue
            }
            switch value {
            case .string(let text): added.append("--\(option.name)=\(text)")
            case .integer(let number): added.append("--\(option.name)=\(number)")
            case .boolean(let on): if on { added.append("--\(option.name)") }
            case .strings(let texts): added += texts.map { "--\(option.name)=\($0)" }
            }
        }
        // The added options go before a `--`, if there is one.
        var result = arguments
        result.insert(contentsOf: added, at: index)
        return Resolved(arguments: result, sources: sources, configPath: configPath)
    }

    /// A value from an environment variable: an integer, true/false, a comma-separated list, or the text.
    static func fromEnvironment(_ text: String, option: Setting) throws(ConfigurationError) -> ConfigurationFile.Value {
        let value: ConfigurationFile.Value
        switch option.kind {
        case .string: value = .string(text)
        case .strings: value = .strings(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        case .integer:
            guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
                throw ConfigurationError("\(option.environmentVariable): '\(text)' is not an integer")
            }
            value = .integer(number)
        case .flag:
            switch text.lowercased() {
            case "true", "1", "yes": value = .boolean(true)
            case "false", "0", "no": value = .boolean(false)
            default: throw ConfigurationError("\(option.environmentVariable): '\(text)' is not true or false")
            }
        }
        return try check(value, option: option) { "\(option.environmentVariable): \($0)" }
    }

    /// `value` if it is of the option's type and good, else an error `located` says where.
    static func check(_ value: ConfigurationFile.Value, option: Setting,
                      located: (String) -> String) throws(ConfigurationError) -> ConfigurationFile.Value {
        let texts: [String]
        switch (option.kind, value) {
        case (.string, .string(let text)): texts = [text]
        case (.strings, .strings(let list)): texts = list
        case (.strings, .string(let text)): return try check(.strings([text]), option: option, located: located)
        case (.flag, .boolean): texts = []
        case (.integer(let range), .integer(let number)):
            guard range.contains(number) else {
                let bounds = range.upperBound == Int.max ? "at least \(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
                throw ConfigurationError(located("\(number) is out of range (\(bounds))"))
            }
            texts = []
        default:
            let expected = switch option.kind {
            case .string: "a string"
            case .strings: "an array of strings"
            case .integer: "an integer"
            case .flag: "a boolean (true or false)"
            }
            throw ConfigurationError(located("expected \(expected), found \(value.typeName)"))
        }
        for text in texts {
            if let problem = option.check?(text) { throw ConfigurationError(located(problem)) }
        }
        return value
    }

    /// A value as the file writes it, secrets masked.
    static func display(_ value: ConfigurationFile.Value?, secret: Bool) -> String {
        guard let value else { return "(not set)" }
        switch value {
        case .string(let text): return quoted(secret ? mask(text) : text)
        case .integer(let number): return String(number)
        case .boolean(let on): return String(on)
        case .strings(let list): return "[" + list.map { quoted(secret ? mask($0) : $0) }.joined(separator: ", ") + "]"
        }
    }

    /// A TOML basic string.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F { out += String(format: "\\u%04X", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    /// A secret made safe to show: a URL keeps everything but its password (in the user part or a `password`
    /// query parameter); a SQLite file's path (no `://`) is shown; anything else is masked whole.
    static func mask(_ text: String) -> String {
        if !text.contains("://"), !text.lowercased().contains("password") { return text }
        guard var parts = URLComponents(string: text), parts.scheme != nil, parts.host != nil else { return "********" }
        if parts.password != nil { parts.password = "********" }
        if let items = parts.queryItems {
            parts.queryItems = items.map { $0.name.lowercased() == "password" ? URLQueryItem(name: $0.name, value: "********") : $0 }
        }
        return parts.string ?? "********"
    }
}

extension ConfigurationFile {
    /// A file with nothing in it: every option from flags, the environment or defaults.
    static let empty = try! ConfigurationFile(parsing: "", path: "")
}

extension TesseraCommand {
    /// The entry point: for `serve`, the environment's and the configuration file's options are added to the
    /// command line first (`ServeConfiguration`); anything wrong in them stops it here, saying where.
    public static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "serve", !arguments.contains(where: { $0 == "-h" || $0 == "--help" }) {
            do {
                let resolved = try ServeConfiguration.resolve(arguments: Array(arguments.dropFirst()), environment: ProcessInfo.processInfo.environment)
                arguments = ["serve"] + resolved.arguments
            } catch {
                // Loud and before anything starts: the file, line and key (or the variable), and EX_USAGE.
                FileHandle.standardError.write(Data("Error: tessera serve cannot start: \(error.description)\n".utf8))
                Foundation.exit(ExitCode.validationFailure.rawValue)
            }
        }
        await main(arguments)
    }
}
