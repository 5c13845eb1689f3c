public import TesseraCore

/// An administrator's own risk scores for one app, replacing some or all of the catalog's (each 0–10; the overall score
/// is again the rounded mean of the four), with who set them, when and why. The catalog's computed scores and their
/// reasons stay beside it, so the page and the API show both.
public struct ScoreOverride: Sendable, Hashable {
    public var general: Int?
    public var security: Int?
    public var compliance: Int?
    public var legal: Int?
    /// Why the administrator disagrees with the catalog.
    public var reason: String?
    /// Who set it: a user's UPN or an app's display name.
    public var author: String
    public var lastModifiedDateTime: String

    public init(general: Int? = nil, security: Int? = nil, compliance: Int? = nil, legal: Int? = nil, reason: String? = nil,
                author: String, lastModifiedDateTime: String) {
        self.general = general; self.security = security; self.compliance = compliance; self.legal = legal
        self.reason = reason; self.author = author; self.lastModifiedDateTime = lastModifiedDateTime
    }

    /// The catalog's scores with these in their place.
    public func applied(to score: RiskScore) -> RiskScore {
        RiskScore(general: general ?? score.general, security: security ?? score.security,
                  compliance: compliance ?? score.compliance, legal: legal ?? score.legal)
    }

    static let keys = ["generalScore", "securityScore", "complianceScore", "legalScore"]

    /// Reads a Graph body (`generalScore`, `securityScore`, `complianceScore`, `legalScore`: integers 0–10 or null;
    /// `reason`), at least one score given.
    public init(body: [String: JSONValue], author: String, now: String) throws(DirectoryError) {
        for key in body.keys where !(Self.keys + ["reason", "@odata.type"]).contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on a score override or cannot be written.")
        }
        func score(_ key: String) throws(DirectoryError) -> Int? {
            guard let value = body[key], value != .null else { return nil }
            guard let n = value.intValue, (0...10).contains(n) else { throw DirectoryError.badRequest("\(key) must be an integer from 0 to 10.") }
            return Int(n)
        }
        self.init(general: try score("generalScore"), security: try score("securityScore"), compliance: try score("complianceScore"),
                  legal: try score("legalScore"), author: author, lastModifiedDateTime: now)
        guard general != nil || security != nil || compliance != nil || legal != nil else {
            throw DirectoryError.badRequest("A score override sets at least one of \(Self.keys.joined(separator: ", ")).")
        }
        if let value = body["reason"], value != .null {
            guard let text = value.stringValue, text.count <= 1024 else { throw DirectoryError.badRequest("reason is a string of at most 1024 characters.") }
            reason = text
        }
    }

    /// The stored and served shape.
    public var json: JSONValue {
        func int(_ v: Int?) -> JSONValue { v.map { .int(Int64($0)) } ?? .null }
        return ["generalScore": int(general), "securityScore": int(security), "complianceScore": int(compliance),
                "legalScore": int(legal), "reason": .optional(reason), "author": .string(author),
                "lastModifiedDateTime": .string(lastModifiedDateTime)]
    }

    init?(json: JSONValue) {
        guard let author = json["author"]?.stringValue, let at = json["lastModifiedDateTime"]?.stringValue else { return nil }
        func int(_ key: String) -> Int? { json[key]?.intValue.map { Int($0) } }
        self.init(general: int("generalScore"), security: int("securityScore"), compliance: int("complianceScore"),
                  legal: int("legalScore"), reason: json["reason"]?.stringValue, author: author, lastModifiedDateTime: at)
    }
}
