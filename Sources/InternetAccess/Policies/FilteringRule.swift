import Foundation
public import TesseraCore

/// A rule of a filtering policy (Graph beta's `microsoft.graph.networkaccess.filteringRule`): the destinations it
/// matches. Microsoft's `fqdnFilteringRule` (`fqdn` destinations, `*.` wildcards) and `webCategoryFilteringRule`
/// (`webCategory` destinations), plus URL patterns (`url` destinations) and, Tessera's own, catalog AI apps
/// (`cloudApplication` destinations naming a catalog id).
public struct FilteringRule: Sendable, Hashable {
    public enum Destination: Sendable, Hashable {
        /// `contoso.com` (that host only) or `*.contoso.com` (its subdomains and itself); lowercased.
        case fqdn(String)
        /// `host/path` with `*` wildcards, matched where the proxy sees the path (plain HTTP, inspected TLS).
        case url(String)
        /// A web category: `ArtificialIntelligence` and `GenerativeAI` are every catalog app; a catalog category
        /// (`Chatbot`, `ModelAPI`, …) its apps; `UnsanctionedGenerativeAI` the apps an administrator marked unsanctioned.
        case webCategory(String)
        /// One app of the AI app catalog, by its id.
        case cloudApplication(String)
    }

    public enum RuleType: String, Sendable, Hashable { case fqdn, webCategory, url, cloudApplication }

    public var id: String
    public var name: String
    public var ruleType: RuleType
    public var destinations: [Destination]

    /// The web categories Tessera knows: the AI categories of its catalog, by name.
    public static let webCategories: Set<String> = Set(["artificialintelligence", "generativeai", unsanctionedCategory.lowercased()]
        + AIApp.Category.allCases.map { $0.rawValue.lowercased() })
    public static let unsanctionedCategory = "UnsanctionedGenerativeAI"

    /// Reads a rule from its Graph body, giving it `id` when it has none.
    public init(body: JSONValue, id: String) throws(DirectoryError) {
        guard let object = body.objectValue else { throw DirectoryError.badRequest("A policy rule must be an object.") }
        guard let name = object["name"]?.stringValue, !name.isEmpty, name.count <= 256 else {
            throw DirectoryError.badRequest("A policy rule needs a name (at most 256 characters).")
        }
        let type = object["@odata.type"]?.stringValue.map { $0.split(separator: ".").last.map(String.init) ?? $0 }
        let declared = object["ruleType"]?.stringValue ?? {
            switch type {
            case "fqdnFilteringRule": "fqdn"
            case "webCategoryFilteringRule": "webCategory"
            case "urlFilteringRule": "url"
            default: ""
            }
        }()
        guard let ruleType = RuleType(rawValue: declared) else {
            throw DirectoryError.badRequest("Rule '\(name)': ruleType must be fqdn, webCategory, url or cloudApplication.")
        }
        guard let list = object["destinations"]?.arrayValue, !list.isEmpty, list.count <= 1000 else {
            throw DirectoryError.badRequest("Rule '\(name)' needs between 1 and 1000 destinations.")
        }
        var destinations: [Destination] = []
        for entry in list { destinations.append(try Self.destination(entry, ruleType: ruleType, rule: name)) }
        self.id = (object["id"]?.stringValue).flatMap { $0.isEmpty ? nil : $0 } ?? id
        self.name = name
        self.ruleType = ruleType
        self.destinations = destinations
    }

    static func destination(_ entry: JSONValue, ruleType: RuleType, rule: String) throws(DirectoryError) -> Destination {
        func value(_ key: String) throws(DirectoryError) -> String {
            guard let text = entry[key]?.stringValue?.trimmingCharacters(in: .whitespaces), !text.isEmpty, text.utf8.count <= 2048 else {
                throw DirectoryError.badRequest("Rule '\(rule)': a \(ruleType.rawValue) destination needs '\(key)'.")
            }
            return text
        }
        switch ruleType {
        case .fqdn:
            let host = try value("value").lowercased()
            let bare = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
            guard HostTable.isValidHost(bare) else { throw DirectoryError.badRequest("Rule '\(rule)': '\(host)' is not a domain name or *.domain.") }
            return .fqdn(host)
        case .url:
            let pattern = try value("value").lowercased()
            guard pattern.contains("/"), !pattern.hasPrefix("/"), !pattern.contains("://") else {
                throw DirectoryError.badRequest("Rule '\(rule)': '\(pattern)' is not a host/path pattern.")
            }
            return .url(pattern)
        case .webCategory:
            let name = try value("name")
            guard webCategories.contains(name.lowercased()) else {
                throw DirectoryError.badRequest("Rule '\(rule)': '\(name)' is not a web category Tessera knows (\(webCategories.sorted().joined(separator: ", "))).")
            }
            return .webCategory(name)
        case .cloudApplication:
            return .cloudApplication(try value("appId").lowercased())
        }
    }

    /// The Graph shape.
    public var body: JSONValue {
        let type: String
        switch ruleType {
        case .fqdn: type = "fqdnFilteringRule"
        case .webCategory: type = "webCategoryFilteringRule"
        case .url: type = "urlFilteringRule"
        case .cloudApplication: type = "cloudApplicationFilteringRule"
        }
        return [
            "@odata.type": .string("#microsoft.graph.networkaccess.\(type)"), "id": .string(id), "name": .string(name),
            "ruleType": .string(ruleType.rawValue),
            "destinations": .array(destinations.map { destination -> JSONValue in
                switch destination {
                case .fqdn(let v): ["@odata.type": "#microsoft.graph.networkaccess.fqdn", "value": .string(v)]
                case .url(let v): ["@odata.type": "#microsoft.graph.networkaccess.url", "value": .string(v)]
                case .webCategory(let v): ["@odata.type": "#microsoft.graph.networkaccess.webCategory", "name": .string(v)]
                case .cloudApplication(let v): ["@odata.type": "#microsoft.graph.networkaccess.cloudApplication", "appId": .string(v)]
                }
            }),
        ]
    }
}
