/// Risk scores in the shape Entra's cloud app catalog shows: general, security, compliance and legal, each 0–10 where
/// 10 is the least risk, and the overall score, their rounded mean. Each is a sum of points for documented facts, so
/// anyone can see from ``RiskFactors`` why a score is what it is; ``reasons`` lists the points given.
public struct RiskScore: Sendable, Hashable, Codable {
    public var general: Int
    public var security: Int
    public var compliance: Int
    public var legal: Int
    public var overall: Int

    public init(general: Int, security: Int, compliance: Int, legal: Int) {
        self.general = general; self.security = security; self.compliance = compliance; self.legal = legal
        self.overall = Int((Double(general + security + compliance + legal) / 4).rounded())
    }

    /// The scores computed from the facts, as of `year` (the vendor's age counts towards the general score).
    public init(_ factors: RiskFactors, year: Int) {
        let points = Self.points(factors, year: year)
        func sum(_ area: Area) -> Int { min(10, points.filter { $0.area == area }.reduce(0) { $0 + $1.points }) }
        self.init(general: sum(.general), security: sum(.security), compliance: sum(.compliance), legal: sum(.legal))
    }

    public enum Area: String, Sendable, Hashable, Codable { case general, security, compliance, legal }

    /// Points given for one fact.
    public struct Points: Sendable, Hashable {
        public var area: Area
        public var points: Int
        public var reason: String
    }

    /// Every point given, with its reason: the scoring rules in one place.
    public static func points(_ f: RiskFactors, year: Int) -> [Points] {
        var out: [Points] = []
        func add(_ area: Area, _ points: Int, _ reason: String) { if points > 0 { out.append(Points(area: area, points: points, reason: reason)) } }
        // General: an established vendor (up to 5 points, one a year) with an organisation offering (SSO and audit).
        let age = max(0, year - f.founded.value)
        add(.general, min(5, age), "founded \(f.founded.value)")
        add(.general, f.sso.value && f.auditLog.value ? 5 : (f.sso.value || f.auditLog.value ? 2 : 0), "organisation plan with SSO/audit log")
        // Security: single sign-on (the organisation controls accounts), an audit log, certified controls.
        add(.security, f.sso.value ? 4 : 0, "single sign-on")
        add(.security, f.auditLog.value ? 3 : 0, "audit log")
        add(.security, f.certifications.value.contains("ISO27001") || f.certifications.value.contains("SOC2") ? 3 : 0,
            "audited security controls")
        // Compliance: certifications.
        let weights = ["SOC2": 3, "ISO27001": 3, "ISO42001": 2, "ISO27701": 1, "HIPAA": 1, "FedRAMP": 1, "CSASTAR": 1, "C5": 1]
        for c in f.certifications.value.sorted() { add(.compliance, weights[c] ?? 0, c) }
        // Legal: what happens to prompts, and the contract.
        let training = switch f.trainsOnPrompts.value { case .never: 4; case .optOut: 2; case .always: 0 }
        add(.legal, training, "training on prompts: \(f.trainsOnPrompts.value.rawValue)")
        if let days = f.retentionDays.value { add(.legal, days <= 30 ? 2 : 1, "prompts kept \(days) days") }
        add(.legal, f.dataProcessingAgreement.value ? 2 : 0, "data processing agreement")
        add(.legal, f.dataRegions.value.contains("EU") ? 2 : 0, "EU data region")
        return out
    }
}
