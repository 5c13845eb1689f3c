import Foundation
public import TesseraCore

/// An AI app an administrator added to the tenant's catalog: hosts, request patterns, category and the facts its scores
/// are computed from, by the catalog's own rules. A fact the administrator does not state counts as the riskiest value
/// (training on prompts, no certification, no single sign-on…), so a bare custom app scores low until someone says
/// better. Every fact's source is the page the administrator names (`sourceUrl`, by default the app's first host) as of
/// the day it was written, and who wrote it is kept.
public struct CustomApp: Sendable, Hashable {
    public var app: AIApp
    public var createdBy: String
    public var createdDateTime: String
    public var lastModifiedDateTime: String

    /// The name the facts of a custom app cite.
    public static let sourceName = "administrator"
    static let writable = ["@odata.type", "id", "displayName", "publisher", "category", "hosts", "activityPatterns", "factors", "sourceUrl"]

    /// Reads a create body (`id`, `displayName`, `hosts` required) or a PATCH over `current`.
    public init(body: [String: JSONValue], current: CustomApp?, author: String, now: String, year: Int) throws(DirectoryError) {
        for key in body.keys where !Self.writable.contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on a generative AI app or cannot be written.")
        }
        func text(_ key: String, max: Int = 256) throws(DirectoryError) -> String? {
            guard let value = body[key], value != .null else { return nil }
            guard let s = value.stringValue?.trimmingCharacters(in: .whitespaces), !s.isEmpty, s.count <= max else {
                throw DirectoryError.badRequest("\(key) must be a non-empty string of at most \(max) characters.")
            }
            return s
        }
        var app = current?.app ?? AIApp(id: "", name: "", publisher: "", category: .chatbot, hosts: [], sources: [:],
                                        factors: Self.unstatedFactors(year: year))
        if let id = try text("id", max: 64) {
            guard current == nil || id == app.id else { throw DirectoryError.badRequest("An app's id cannot be changed.") }
            app.id = id
        } else if current == nil {
            throw DirectoryError.badRequest("id is required (lowercase letters, digits and dashes).")
        }
        if let name = try text("displayName") { app.name = name } else if current == nil { throw DirectoryError.badRequest("displayName is required.") }
        if let publisher = try text("publisher") { app.publisher = publisher }
        if let raw = try text("category") {
            guard let category = AIApp.Category(rawValue: raw) else {
                throw DirectoryError.badRequest("category must be one of \(AIApp.Category.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            app.category = category
        }
        if let value = body["hosts"] {
            guard let list = value.arrayValue, (1...100).contains(list.count) else { throw DirectoryError.badRequest("hosts is an array of 1 to 100 host names.") }
            var hosts: [String] = []
            for entry in list {
                guard let host = entry.stringValue?.lowercased() else { throw DirectoryError.badRequest("hosts holds host names.") }
                hosts.append(host)
            }
            app.hosts = hosts
        } else if current == nil {
            throw DirectoryError.badRequest("hosts is required.")
        }
        if let value = body["activityPatterns"] {
            guard let list = value.arrayValue, list.count <= 100 else { throw DirectoryError.badRequest("activityPatterns is an array of at most 100 patterns.") }
            var patterns: [AIApp.ActivityPattern] = []
            for entry in list {
                guard let pattern = entry["pattern"]?.stringValue?.lowercased(), pattern.utf8.count <= 2048,
                      let activity = entry["activity"]?.stringValue.flatMap(AIApp.Activity.init(rawValue:)) else {
                    throw DirectoryError.badRequest("Each activity pattern is {\"pattern\": \"host/path*\", \"activity\": \"prompt|mcp|none\"}.")
                }
                patterns.append(AIApp.ActivityPattern(pattern: pattern, activity: activity))
            }
            app.activityPatterns = patterns
        }
        if let value = body["factors"] {
            guard let factors = value.objectValue else { throw DirectoryError.badRequest("factors must be an object.") }
            app.factors = try Self.factors(factors, over: app.factors)
        }
        let url = try text("sourceUrl", max: 2048) ?? app.sources[Self.sourceName]?.url ?? "https://\(app.hosts.first ?? "")/"
        app.sources = [Self.sourceName: AIApp.Source(url: url, asOf: String(now.prefix(10)))]
        do {
            try AICatalog.check(app, line: nil)
        } catch {
            throw DirectoryError.badRequest(error.message)
        }
        self.app = app
        createdBy = current?.createdBy ?? author
        createdDateTime = current?.createdDateTime ?? now
        lastModifiedDateTime = now
    }

    /// The riskiest value of every fact, each citing ``sourceName``.
    static func unstatedFactors(year: Int) -> RiskFactors {
        RiskFactors(trainsOnPrompts: .init(.always, source: sourceName), retentionDays: .init(nil, source: sourceName),
                    certifications: .init([], source: sourceName), dataRegions: .init([], source: sourceName),
                    sso: .init(false, source: sourceName), dataProcessingAgreement: .init(false, source: sourceName),
                    auditLog: .init(false, source: sourceName), founded: .init(year, source: sourceName))
    }

    static func factors(_ body: [String: JSONValue], over base: RiskFactors) throws(DirectoryError) -> RiskFactors {
        var f = base
        let known = ["trainsOnPrompts", "retentionDays", "certifications", "dataRegions", "sso", "dataProcessingAgreement", "auditLog", "founded"]
        for key in body.keys where !known.contains(key) {
            throw DirectoryError.badRequest("factors.\(key) is not a fact the catalog scores (\(known.joined(separator: ", "))).")
        }
        func strings(_ key: String) throws(DirectoryError) -> [String]? {
            guard let value = body[key] else { return nil }
            guard let list = value.arrayValue?.compactMap(\.stringValue), list.count == value.arrayValue?.count, list.count <= 50 else {
                throw DirectoryError.badRequest("factors.\(key) is an array of strings.")
            }
            return list
        }
        func flag(_ key: String) throws(DirectoryError) -> Bool? {
            guard let value = body[key] else { return nil }
            guard let b = value.boolValue else { throw DirectoryError.badRequest("factors.\(key) is true or false.") }
            return b
        }
        let s = sourceName
        if let value = body["trainsOnPrompts"] {
            guard let t = value.stringValue.flatMap(RiskFactors.Training.init(rawValue:)) else {
                throw DirectoryError.badRequest("factors.trainsOnPrompts is never, optOut or always.")
            }
            f.trainsOnPrompts = .init(t, source: s)
        }
        if let value = body["retentionDays"] {
            guard value == .null || (value.intValue.map { (0...36_500).contains($0) } ?? false) else {
                throw DirectoryError.badRequest("factors.retentionDays is a number of days or null.")
            }
            f.retentionDays = .init(value.intValue.map { Int($0) }, source: s)
        }
        if let list = try strings("certifications") { f.certifications = .init(list, source: s) }
        if let list = try strings("dataRegions") { f.dataRegions = .init(list, source: s) }
        if let b = try flag("sso") { f.sso = .init(b, source: s) }
        if let b = try flag("dataProcessingAgreement") { f.dataProcessingAgreement = .init(b, source: s) }
        if let b = try flag("auditLog") { f.auditLog = .init(b, source: s) }
        if let value = body["founded"] {
            guard let year = value.intValue, (1900...2200).contains(year) else { throw DirectoryError.badRequest("factors.founded is a year.") }
            f.founded = .init(Int(year), source: s)
        }
        return f
    }

    /// The stored shape.
    public var json: JSONValue {
        var app = (try? JSONParser.parse(Array((try? JSONEncoder().encode(self.app)) ?? Data()))) ?? .object([:])
        app["createdBy"] = .string(createdBy)
        app["createdDateTime"] = .string(createdDateTime)
        app["lastModifiedDateTime"] = .string(lastModifiedDateTime)
        return app
    }

    init?(json: JSONValue) {
        guard let app = try? JSONDecoder().decode(AIApp.self, from: Data(json.serializedBytes)),
              let by = json["createdBy"]?.stringValue, let created = json["createdDateTime"]?.stringValue else { return nil }
        self.app = app
        createdBy = by
        createdDateTime = created
        lastModifiedDateTime = json["lastModifiedDateTime"]?.stringValue ?? created
    }
}
