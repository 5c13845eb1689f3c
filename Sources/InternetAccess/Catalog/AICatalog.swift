public import Foundation
import TesseraCore

/// The catalog of generative-AI apps: the entries of the versioned file shipped in the repository
/// (`Resources/ai-apps.json`), checked when loaded, with their scores and a fast lookup from a hostname to its app.
public struct AICatalog: Sendable {
    public let version: String
    public let apps: [AIApp]
    /// Each app's scores: computed from its facts, or an administrator's override in their place.
    public let scores: [RiskScore]
    /// The scores the facts give, whatever an override says.
    public let computedScores: [RiskScore]
    /// The overrides applied, by app id.
    public let scoreOverrides: [String: ScoreOverride]
    /// Read by the traffic importer's scanner as well.
    let hosts: HostTable

    /// The catalog shipped with Tessera. A catalog with errors is refused with the entry and its line.
    public static func bundled(year: Int) throws(CatalogError) -> AICatalog {
        guard let url = Bundle.module.url(forResource: "ai-apps", withExtension: "json"),
              let data = try? Data(contentsOf: url) else { throw CatalogError(.syntax, "the bundled file ai-apps.json is missing") }
        return try AICatalog(data: data, year: year)
    }

    /// Reads a catalog file; `year` is the current year (vendor age counts towards the general score).
    public init(data: Data, year: Int) throws(CatalogError) {
        struct File: Decodable { var version: String; var apps: [AIApp] }
        let bytes = [UInt8](data)
        do {
            _ = try JSONParser.parse(bytes)
        } catch {
            let line = bytes.prefix(error.offset).reduce(1) { $1 == 10 ? $0 + 1 : $0 }
            throw CatalogError(.syntax, error.message, line: line)
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch let DecodingError.dataCorrupted(context) {
            throw Self.located(.syntax, context, data)
        } catch let DecodingError.keyNotFound(key, context) {
            throw Self.located(.invalidEntry, context, data, "'\(key.stringValue)' is missing")
        } catch let DecodingError.typeMismatch(_, context) {
            throw Self.located(.invalidEntry, context, data)
        } catch let DecodingError.valueNotFound(_, context) {
            throw Self.located(.invalidEntry, context, data)
        } catch {
            throw CatalogError(.syntax, "\(error)")
        }
        try self.init(version: file.version, apps: file.apps, year: year, lines: Self.entryLines(data))
    }

    /// A catalog of these apps (the shipped ones and an administrator's custom apps), with an administrator's scores in
    /// place of the computed ones where `scoreOverrides` has them.
    public init(version: String, apps: [AIApp], year: Int, lines: [Int] = [], scoreOverrides: [String: ScoreOverride] = [:]) throws(CatalogError) {
        var table = HostTable()
        var ids = Set<String>()
        for (index, app) in apps.enumerated() {
            let line = index < lines.count ? lines[index] : nil
            try Self.check(app, line: line)
            guard ids.insert(app.id).inserted else { throw CatalogError(.duplicate, "the id is used twice", entry: app.id, line: line) }
            for host in app.hosts {
                if let other = table.exact(host) {
                    throw CatalogError(.duplicate, "host \(host) is already \(apps[other].id)'s", entry: app.id, line: line)
                }
                table.insert(host, app: index)
            }
        }
        self.version = version
        self.apps = apps
        let computed = apps.map { RiskScore($0.factors, year: year) }
        self.computedScores = computed
        self.scores = zip(apps, computed).map { app, score in scoreOverrides[app.id]?.applied(to: score) ?? score }
        self.scoreOverrides = scoreOverrides
        self.hosts = table
    }

    /// The index of the app whose host is `host` or a parent domain of it (the most specific wins); `host` is ASCII
    /// bytes, any case, without a port.
    @inline(__always)
    public func appIndex(host: UnsafeBufferPointer<UInt8>) -> Int? { hosts.lookup(host) }

    /// The index of the app with this id.
    public func index(of id: String) -> Int? { apps.firstIndex { $0.id == id } }

    /// The app for a hostname.
    public func app(forHost host: String) -> Int? {
        var bytes = Array(host.utf8)
        return bytes.withUnsafeMutableBufferPointer { hosts.lookup(UnsafeBufferPointer($0)) }
    }

    /// What a request to this app's `host` and `path` does: a prompt, an MCP call, or nothing known.
    public func activity(app index: Int, host: String, path: String) -> AIApp.Activity {
        let target = host.lowercased() + path
        for p in apps[index].activityPatterns where Glob.matches(p.pattern, target) { return p.activity }
        return .none
    }

    static func check(_ app: AIApp, line: Int?) throws(CatalogError) {
        func fail(_ message: String, _ code: CatalogError.Code = .invalidEntry) -> CatalogError {
            CatalogError(code, message, entry: app.id, line: line)
        }
        guard !app.id.isEmpty, app.id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw fail("an id is lowercase letters, digits and dashes")
        }
        guard !app.name.isEmpty, !app.hosts.isEmpty else { throw fail("an app needs a name and at least one host") }
        for host in app.hosts where !HostTable.isValidHost(host) { throw fail("'\(host)' is not a lowercase hostname") }
        for p in app.activityPatterns where !p.pattern.contains("/") { throw fail("pattern '\(p.pattern)' is not host/path") }
        for (name, source) in app.sources {
            guard source.url.hasPrefix("https://"), URL(string: source.url)?.host != nil else {
                throw fail("source '\(name)' is not an https URL", .missingSource)
            }
            guard Self.isDate(source.asOf) else { throw fail("source '\(name)' has no asOf date (YYYY-MM-DD)", .missingSource) }
        }
        let f = app.factors
        for (factor, source) in [("trainsOnPrompts", f.trainsOnPrompts.source), ("retentionDays", f.retentionDays.source),
                                 ("certifications", f.certifications.source), ("dataRegions", f.dataRegions.source),
                                 ("sso", f.sso.source), ("dataProcessingAgreement", f.dataProcessingAgreement.source),
                                 ("auditLog", f.auditLog.source), ("founded", f.founded.source)]
            where app.sources[source] == nil {
            throw fail("factor \(factor) names source '\(source)', which the entry does not list", .missingSource)
        }
    }

    static func isDate(_ text: String) -> Bool {
        let b = Array(text.utf8)
        return b.count == 10 && b[4] == UInt8(ascii: "-") && b[7] == UInt8(ascii: "-")
            && b.enumerated().allSatisfy { $0.offset == 4 || $0.offset == 7 || (48...57).contains($0.element) }
    }

    /// The line each entry of the `apps` array starts on (the line of its `"id"`), for error messages.
    static func entryLines(_ data: Data) -> [Int] {
        var lines: [Int] = []
        var line = 1
        let needle = Array("\"id\"".utf8)
        let bytes = [UInt8](data)
        var i = 0
        while i < bytes.count {
            if bytes[i] == 10 { line += 1 } else if bytes[i] == needle[0], bytes[i...].starts(with: needle) { lines.append(line) }
            i += 1
        }
        return lines
    }

    static func located(_ code: CatalogError.Code, _ context: DecodingError.Context, _ data: Data, _ message: String? = nil) -> CatalogError {
        var index: Int?
        for (n, key) in context.codingPath.enumerated() where n > 0 && context.codingPath[n - 1].stringValue == "apps" {
            index = key.intValue
        }
        let lines = entryLines(data)
        let line = index.flatMap { $0 < lines.count ? lines[$0] : nil }
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
        return CatalogError(code, "\(path.isEmpty ? "" : path + ": ")\(message ?? context.debugDescription)",
                            entry: index.map { "#\($0 + 1)" }, line: line)
    }
}
