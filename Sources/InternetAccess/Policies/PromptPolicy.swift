import Foundation
public import TesseraCore

extension ObjectKind {
    /// Tessera's prompt policy (`/beta/networkAccess/promptPolicies`): Microsoft's Graph has none.
    public static let promptPolicy = ObjectKind(rawValue: "promptPolicy")
}

/// A prompt policy: which conversation schemes are inspected, the detector score from which a prompt counts as an
/// injection, and what an injection gets (`block`; `alert`, passed and recorded; `allow`, recorded only). A security
/// profile links at most one (a `promptPolicyLink` beside its `filteringPolicyLink`s), and Conditional Access puts the
/// profile on a user's traffic, so whose prompts are inspected, and how, is decided per user as filtering is. Microsoft
/// documents no Graph resource for Entra's prompt policies: this shape is Tessera's own.
public struct PromptPolicy: Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String?
    /// What a prompt scoring at or above ``threshold`` gets.
    public var action: PromptDetector.Verdict
    /// 0…1: the detector score from which a prompt is an injection.
    public var threshold: Double
    /// The conversation schemes inspected, by name (`openai-chat-completions`); empty: every built-in scheme.
    public var schemes: [String]
    /// What a body a scheme claims but cannot read (not JSON, not its shape) gets: `allow` or `block`.
    public var unreadableBodies: PromptDetector.Verdict
    public var createdDateTime: String
    public var lastModifiedDateTime: String

    static let writable = ["@odata.type", "id", "name", "description", "action", "threshold", "schemes", "unreadableBodies"]

    public init(id: String, name: String, action: PromptDetector.Verdict = .block, threshold: Double = PromptDetector.Thresholds.standard.block,
                schemes: [String] = [], unreadableBodies: PromptDetector.Verdict = .allow, now: String = "") {
        self.id = id; self.name = name; self.action = action; self.threshold = threshold; self.schemes = schemes
        self.unreadableBodies = unreadableBodies; self.createdDateTime = now; self.lastModifiedDateTime = now
    }

    /// Applies a Graph create or PATCH body.
    public mutating func apply(_ body: [String: JSONValue], now: String, creating: Bool) throws(DirectoryError) {
        for key in body.keys where !Self.writable.contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' does not exist on type 'promptPolicy' or cannot be written.")
        }
        if let name = try PolicyNaming.name(in: body, creating: creating) { self.name = name }
        if let value = body["description"] { description = try PolicyNaming.description(value) }
        if let value = body["action"] {
            guard let action = value.stringValue.flatMap(PromptDetector.Verdict.init(rawValue:)) else {
                throw DirectoryError.badRequest("action must be block, alert or allow.")
            }
            self.action = action
        }
        if let value = body["threshold"] {
            guard let t = value.doubleValue, (0...1).contains(t), t > 0 else { throw DirectoryError.badRequest("threshold is a number above 0 and at most 1.") }
            threshold = t
        }
        if let value = body["schemes"] {
            let known = Set(ConversationScheme.builtIn.map(\.name))
            guard let list = value.arrayValue, list.count <= 100 else { throw DirectoryError.badRequest("schemes is an array of scheme names.") }
            var names: [String] = []
            for entry in list {
                guard let name = entry.stringValue, known.contains(name) else {
                    throw DirectoryError.badRequest("schemes names built-in conversation schemes (\(known.sorted().joined(separator: ", "))).")
                }
                if !names.contains(name) { names.append(name) }
            }
            schemes = names
        }
        if let value = body["unreadableBodies"] {
            guard let v = value.stringValue.flatMap(PromptDetector.Verdict.init(rawValue:)), v != .alert else {
                throw DirectoryError.badRequest("unreadableBodies must be allow or block.")
            }
            unreadableBodies = v
        }
        lastModifiedDateTime = now
    }

    /// The conversation schemes this policy reads.
    public var inspectedSchemes: [ConversationScheme] {
        schemes.isEmpty ? ConversationScheme.builtIn : ConversationScheme.builtIn.filter { schemes.contains($0.name) }
    }

    /// Whether a scheme is inspected.
    public func inspects(_ scheme: ConversationScheme) -> Bool { schemes.isEmpty || schemes.contains(scheme.name) }

    /// What a request gets once inspected: an injection (a score at or above ``threshold``) gets ``action``, an unreadable
    /// body ``unreadableBodies``, the rest pass.
    public func verdict(for inspection: PromptInspector.Inspection) -> PromptDetector.Verdict {
        switch inspection.extraction {
        case .prompt: (inspection.assessment?.score ?? 0) >= threshold ? action : .allow
        case .noUserText: .allow
        case .notJSON, .unexpectedShape, .tooLarge: unreadableBodies
        }
    }

    /// Reads a stored policy.
    public init?(stored: StoredObject) {
        let b = stored.body
        guard let name = b["name"]?.stringValue, let action = b["action"]?.stringValue.flatMap(PromptDetector.Verdict.init(rawValue:)),
              let threshold = b["threshold"]?.doubleValue else { return nil }
        self.init(id: stored.id, name: name, action: action, threshold: threshold,
                  schemes: b["schemes"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                  unreadableBodies: b["unreadableBodies"]?.stringValue.flatMap(PromptDetector.Verdict.init(rawValue:)) ?? .allow)
        description = b["description"]?.stringValue
        createdDateTime = b["createdDateTime"]?.stringValue ?? ""
        lastModifiedDateTime = b["lastModifiedDateTime"]?.stringValue ?? ""
    }

    /// The Graph shape.
    public var body: [String: JSONValue] {
        ["@odata.type": "#microsoft.graph.networkaccess.promptPolicy", "id": .string(id), "name": .string(name),
         "description": .optional(description), "action": .string(action.rawValue), "threshold": .double(threshold),
         "schemes": .array(schemes.map { .string($0) }), "unreadableBodies": .string(unreadableBodies.rawValue),
         "version": "1.0.0", "createdDateTime": .string(createdDateTime), "lastModifiedDateTime": .string(lastModifiedDateTime)]
    }

    public func stored(tenant: String) -> StoredObject {
        StoredObject(tenant: tenant, id: id, kind: .promptPolicy, body: body)
    }

    /// The prompt policy on one user's traffic: the policy, the profile that links it and the Conditional Access policy
    /// that put the profile there. A report-only Conditional Access policy's prompt policy never blocks: what it would
    /// block is let through and recorded as `alert`.
    public struct InScope: Sendable, Hashable {
        public var policy: PromptPolicy
        public var profileID: String
        public var conditionalAccessPolicyID: String
        public var reportOnly: Bool
        public init(policy: PromptPolicy, profileID: String, conditionalAccessPolicyID: String, reportOnly: Bool = false) {
            self.policy = policy; self.profileID = profileID; self.conditionalAccessPolicyID = conditionalAccessPolicyID
            self.reportOnly = reportOnly
        }

        /// The policy's verdict, a report-only block softened to an alert.
        public func verdict(for inspection: PromptInspector.Inspection) -> PromptDetector.Verdict {
            let verdict = policy.verdict(for: inspection)
            return reportOnly && verdict == .block ? .alert : verdict
        }
    }
}

extension PromptInspector {
    /// A request's inspection and what `policy` does with it; nil when no scheme the policy reads covers the request.
    public func inspect(host: String, path: String, body: [UInt8], policy: PromptPolicy.InScope)
        -> (inspection: Inspection, verdict: PromptDetector.Verdict)? {
        guard let scheme = scheme(host: host, path: path), policy.policy.inspects(scheme) || customSchemes.contains(scheme) else { return nil }
        let inspection = inspect(scheme.extractPrompt(from: body), scheme: scheme)
        return (inspection, policy.verdict(for: inspection))
    }
}
