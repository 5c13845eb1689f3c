import ArgumentParser
import Foundation
import Testing
@testable import TesseraCommands

/// The TOML subset of serve's configuration file: what it takes, and every refusal with its line and column.
@Suite struct ConfigurationFileTests {
    @Test func parsesTheSubsetAsTOMLDoes() throws {
        let text = """
        \u{FEFF}# Tessera
        port = 9_443   # a comment
        http = true
        allow-http-on-network = false
        host = "0.0.0.0"
        data = 'C:\\data\\tessera'
        log-level = "deb\\u0075g"
        escapes = "a\\tb\\"c\\\\d\\U0001F600"
        negative = -5
        public-url = [
          "https://login.contoso.com", # canonical
          'https://sso.contoso.com',
        ]
        empty = []
        one = ["x"]\r
        last = 1
        """
        let file = try ConfigurationFile(parsing: text, path: "t.toml")
        #expect(file.keys == ["port", "http", "allow-http-on-network", "host", "data", "log-level", "escapes", "negative", "public-url", "empty", "one", "last"])
        #expect(file.entries["port"] == .init(value: .integer(9443), line: 2, column: 1))
        #expect(file.entries["http"]?.value == .boolean(true))
        #expect(file.entries["allow-http-on-network"]?.value == .boolean(false))
        #expect(file.entries["host"]?.value == .string("0.0.0.0"))
        #expect(file.entries["data"]?.value == .string("C:\\data\\tessera"))  // literal strings keep backslashes
        #expect(file.entries["log-level"]?.value == .string("debug"))
        #expect(file.entries["escapes"]?.value == .string("a\tb\"c\\d😀"))
        #expect(file.entries["negative"]?.value == .integer(-5))
        #expect(file.entries["public-url"] == .init(value: .strings(["https://login.contoso.com", "https://sso.contoso.com"]), line: 10, column: 1))
        #expect(file.entries["empty"]?.value == .strings([]))
        #expect(file.entries["one"]?.value == .strings(["x"]))
        #expect(file.entries["last"] == .init(value: .integer(1), line: 16, column: 1))
    }

    @Test(arguments: [
        ("[server]\nport = 1", "t.toml:1:1: tables are not supported"),
        ("a.b = 1", "t.toml:1:2: dotted keys are not supported"),
        ("\"port\" = 1", "t.toml:1:1: quoted keys are not supported"),
        ("port 1", "t.toml:1:6: expected '='"),
        ("port =", "t.toml:1:7: 'port' has no value"),
        ("port = 1.5", "t.toml:1:8: '1.5' is not a decimal integer"),
        ("port = 0x1F", "t.toml:1:8: '0x1F' is not a decimal integer"),
        ("port = 0443", "t.toml:1:8: '0443' is not a decimal integer"),
        ("port = 1__0", "t.toml:1:8: '1__0' is not a decimal integer"),
        ("port = 99999999999999999999", "t.toml:1:8: '99999999999999999999' is not a decimal integer in range"),
        ("host = localhost", "t.toml:1:8: the value of 'host' is not a string"),
        ("http = True", "t.toml:1:8: the value of 'http' is not a string"),
        ("http = truely", "t.toml:1:8: the value of 'http' is not a string"),
        ("host = \"x", "t.toml:1:8: the string has no closing \""),
        ("host = \"a\\qb\"", "t.toml:1:10: \\q is not an escape"),
        ("host = \"\\u12\"", "t.toml:1:9: \\u needs 4 hexadecimal digits"),
        ("host = \"\"\"x\"\"\"", "t.toml:1:8: multi-line strings are not supported"),
        ("host = \"a\" b", "t.toml:1:12: expected the end of the line"),
        ("public-url = [1]", "t.toml:1:15: only arrays of strings"),
        ("public-url = [\"a\" \"b\"]", "t.toml:1:19: expected ',' or ']'"),
        ("public-url = [\"a\",\n", "t.toml:1:14: the array has no closing ]"),
        ("port = 1\n\nport = 2", "t.toml:3:1: the key 'port' is defined twice (first on line 1)"),
        ("# ok\n = 1", "t.toml:2:2: expected a key"),
    ])
    func refusesWithLineAndColumn(text: String, message: String) {
        #expect {
            _ = try ConfigurationFile(parsing: text, path: "t.toml")
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix(message) == true
        }
    }
}

/// flags > environment > file > defaults, every refusal saying where, and secrets masked.
@Suite struct ServeConfigurationTests {
    let file = """
    port = 9443
    public-url = ["https://login.contoso.com"]
    data = "/var/lib/tessera"
    database = "postgres://tessera:s3cret@db.contoso.com:5432/tessera?sslmode=verify-full"
    http = true
    """

    func resolve(_ arguments: [String], environment: [String: String] = [:], file: String? = nil) throws -> ServeConfiguration.Resolved {
        let text = file ?? self.file
        return try ServeConfiguration.resolve(arguments: arguments, environment: environment) { path in
            guard path == "tessera.toml" else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
    }

    @Test func theFileFillsWhatFlagsAndEnvironmentLeave() throws {
        let resolved = try resolve(["--config", "tessera.toml"])
        #expect(resolved.arguments == ["--config", "tessera.toml", "--data=/var/lib/tessera",
                                       "--database=postgres://tessera:s3cret@db.contoso.com:5432/tessera?sslmode=verify-full",
                                       "--port=9443", "--http", "--public-url=https://login.contoso.com"])
        #expect(resolved.sources["port"] == .file(path: "tessera.toml", line: 1))
        #expect(resolved.sources["public-url"] == .file(path: "tessera.toml", line: 2))
        #expect(resolved.sources["host"] == .defaultValue)
        let serve = try Serve.parse(resolved.arguments)
        #expect(serve.port == 9443 && serve.http && serve.publicURL == ["https://login.contoso.com"] && serve.storage.data == "/var/lib/tessera")
    }

    @Test func environmentBeatsTheFileAndFlagsBeatBoth() throws {
        let environment = ["TESSERA_CONFIG": "tessera.toml", "TESSERA_PORT": "9444", "TESSERA_HTTP": "false",
                           "TESSERA_PUBLIC_URL": "https://a.contoso.com, https://b.contoso.com", "TESSERA_DATABASE": "postgres://x@db/t"]
        let resolved = try resolve(["--port", "9445", "--data=/srv/tessera"], environment: environment)
        let serve = try Serve.parse(resolved.arguments)
        #expect(serve.port == 9445)
        #expect(serve.storage.data == "/srv/tessera")
        #expect(!serve.http)  // the environment's false beats the file's true
        #expect(serve.publicURL == ["https://a.contoso.com", "https://b.contoso.com"])
        #expect(serve.storage.database == "postgres://x@db/t")
        #expect(resolved.sources["port"] == .flag)
        #expect(resolved.sources["data"] == .flag)
        #expect(resolved.sources["http"] == .environment("TESSERA_HTTP"))
        #expect(resolved.sources["database"] == .environment("TESSERA_DATABASE"))
        #expect(resolved.sources["backup-retention-days"] == .defaultValue)
    }

    @Test func flagsReplaceARepeatedOptionWhole() throws {
        let resolved = try resolve(["--config=tessera.toml", "--public-url", "https://x.contoso.com"])
        #expect(try Serve.parse(resolved.arguments).publicURL == ["https://x.contoso.com"])
    }

    @Test func noFileMeansEnvironmentAndDefaults() throws {
        let resolved = try resolve([], environment: ["TESSERA_IDLE_TIMEOUT": "60"])
        #expect(resolved.configPath == nil)
        #expect(resolved.arguments == ["--idle-timeout=60"])
    }

    @Test(arguments: [
        ("port = \"9443\"", "tessera.toml:1:1: key 'port': expected an integer, found a string"),
        ("port = 70000", "tessera.toml:1:1: key 'port': 70000 is out of range (0 to 65535)"),
        ("http = \"yes\"", "tessera.toml:1:1: key 'http': expected a boolean (true or false), found a string"),
        ("\n\npublic-url = [\"ftp://x\"]", "tessera.toml:3:1: key 'public-url': ftp://x is not an http(s):// URL"),
        ("trusted-proxy = [\"10.0.0.0/33\"]", "tessera.toml:1:1: key 'trusted-proxy': 10.0.0.0/33 is not an IP address or CIDR range"),
        ("log-format = \"xml\"", "tessera.toml:1:1: key 'log-format': xml is not one of text, json"),
        ("log-level = \"loud\"", "tessera.toml:1:1: key 'log-level': loud is not one of"),
        ("idle-timeout = 0", "tessera.toml:1:1: key 'idle-timeout': 0 is out of range (1 to 3600)"),
        ("max-connections-per-address = 0", "tessera.toml:1:1: key 'max-connections-per-address': 0 is out of range (at least 1)"),
        ("data = [\"a\"]", "tessera.toml:1:1: key 'data': expected a string, found an array of strings"),
        ("port = 1\nprot = 2", "tessera.toml:2:1: unknown key 'prot'"),
        ("config = \"other.toml\"", "tessera.toml:1:1: unknown key 'config' (a configuration file cannot name another)"),
        ("port = ", "tessera.toml:1:8: 'port' has no value"),
    ])
    func aBadFileIsRefusedNamingLineAndKey(text: String, message: String) {
        #expect {
            _ = try resolve(["--config", "tessera.toml"], file: text)
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix(message) == true
        }
    }

    @Test(arguments: [
        ("TESSERA_PORT", "eighty", "TESSERA_PORT: 'eighty' is not an integer"),
        ("TESSERA_HTTP", "maybe", "TESSERA_HTTP: 'maybe' is not true or false"),
        ("TESSERA_DRAIN_SECONDS", "301", "TESSERA_DRAIN_SECONDS: 301 is out of range (0 to 300)"),
        ("TESSERA_LOG_FORMAT", "xml", "TESSERA_LOG_FORMAT: xml is not one of text, json"),
    ])
    func aBadEnvironmentVariableIsRefusedNamingIt(name: String, value: String, message: String) {
        #expect {
            _ = try resolve([], environment: [name: value])
        } throws: { error in
            (error as? ConfigurationError)?.description == message
        }
    }

    @Test func aVariableAFlagOverridesIsNotUsed() throws {
        // A flag wins, so the variable is not used; it is not checked either (as a default it would be dead).
        let resolved = try resolve(["--port", "1"], environment: ["TESSERA_PORT": "eighty"])
        #expect(resolved.sources["port"] == .flag)
    }

    @Test func aMissingFileIsRefused() {
        #expect {
            _ = try resolve(["--config", "missing.toml"])
        } throws: { error in
            (error as? ConfigurationError)?.description.hasPrefix("missing.toml: cannot read the configuration file") == true
        }
    }

    @Test func theExistingVariablesKeepTheirNames() {
        let names = Dictionary(uniqueKeysWithValues: ServeConfiguration.options.map { ($0.name, $0.environmentVariable) })
        #expect(names["data"] == "TESSERA_DATA")
        #expect(names["database"] == "TESSERA_DATABASE")
        #expect(names["country-database"] == "TESSERA_COUNTRY_DATABASE")
        #expect(names["key-encryption-key-file"] == "TESSERA_KEY_ENCRYPTION_KEY_FILE")
    }

    /// Every option serve's help lists can be set in the file (a new option must be added to the table).
    @Test func everyServeOptionIsConfigurable() {
        let help = Serve.helpMessage(columns: 10_000)
        let listed = Set(help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," || $0 == "=" || $0 == "<" })
            .filter { $0.hasPrefix("--") && $0.count > 2 }
            .map { String($0.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" }) })
            .subtracting(["help", "config"])
        #expect(!listed.isEmpty)
        let configurable = Set(ServeConfiguration.options.map(\.name))
        #expect(listed.subtracting(configurable).isEmpty, "not in ServeConfiguration.options: \(listed.subtracting(configurable).sorted())")
        #expect(configurable.subtracting(listed).isEmpty, "not options of serve: \(configurable.subtracting(listed).sorted())")
    }

    @Test func secretsAreMasked() {
        #expect(ServeConfiguration.mask("postgres://tessera:s3cret@db:5432/t?sslmode=verify-full") == "postgres://tessera:********@db:5432/t?sslmode=verify-full")
        #expect(ServeConfiguration.mask("postgres://tessera@db/t?password=s3cret&sslmode=require") == "postgres://tessera@db/t?password=********&sslmode=require")
        #expect(ServeConfiguration.mask("postgres://tessera@db/t") == "postgres://tessera@db/t")
        #expect(ServeConfiguration.mask("not a url://s3cret") == "********")
        #expect(ServeConfiguration.mask("/var/lib/tessera/tessera.sqlite") == "/var/lib/tessera/tessera.sqlite")  // a SQLite file holds no password
    }

    @Test func checkPrintsTheEffectiveConfigurationMaskedWithSources() throws {
        // The file's https:// public URL over --http needs the proxy named, or the check refuses it as serve would.
        let environment = ["TESSERA_PORT": "9444", "TESSERA_KEY_ENCRYPTION_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                           "TESSERA_TRUSTED_PROXY": "127.0.0.1"]
        let report = try ConfigCommand.Check.report(arguments: ["--config", "tessera.toml", "--log-level", "debug"], environment: environment) { _ in file }
        #expect(!report.contains("s3cret"))
        #expect(!report.contains("AAAAAAAA"))
        let lines = report.split(separator: "\n").map(String.init)
        #expect(lines.contains("database = \"postgres://tessera:********@db.contoso.com:5432/tessera?sslmode=verify-full\"  # file tessera.toml:4"))
        #expect(lines.contains("port = 9444  # env TESSERA_PORT"))
        #expect(lines.contains("public-url = [\"https://login.contoso.com\"]  # file tessera.toml:2"))
        #expect(lines.contains("log-level = \"debug\"  # flag"))
        #expect(lines.contains("host = \"127.0.0.1\"  # default"))
        #expect(lines.contains("# tls-cert = (not set)  # default"))
        #expect(lines.contains("# key-encryption key: ******** (env TESSERA_KEY_ENCRYPTION_KEY)"))
    }

    @Test func checkRefusesABadFile() {
        #expect {
            _ = try ConfigCommand.Check.report(arguments: ["--config", "tessera.toml"], environment: [:]) { _ in "port = true" }
        } throws: { error in
            "\(error)".contains("tessera.toml:1:1: key 'port': expected an integer, found a boolean")
        }
    }
}
