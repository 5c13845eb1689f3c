public import Foundation
public import TesseraCore

extension ObjectKind {
    /// Graph beta's `microsoft.graph.networkaccess.generativeAIInsight`: one per prompt the proxy inspected, kept
    /// ``TrafficLog/retentionDays`` days as traffic records are (no change log, no audit).
    public static let generativeAIInsight = ObjectKind(rawValue: "generativeAIInsight")
}

/// One prompt seen by the proxy, in the shape of Graph beta's `microsoft.graph.networkaccess.generativeAIInsight`
/// (`GET /beta/networkAccess/logs/generativeAiInsights`, documented March 2026): the activity, the prompt's text, the
/// destination, the user, the event and transaction ids.
///
/// Microsoft's resource has no verdict; Tessera adds its own properties for what its prompt policy decided, named so
/// they cannot collide with Microsoft's: `promptInjectionAction` (`block`, `alert`, `allow`), `promptInjectionScore`
/// (0…1), `promptInjectionFamily`, `conversationScheme`, `promptTruncated`, and `policyId` / `ruleId` when a policy
/// decided.
public struct GenerativeAIInsight: Sendable, Hashable {
    /// The key, shared with the request's `networkAccessTraffic` record.
    public var transactionId: String
    /// This event's own id.
    public var eventId: String
    public var createdDateTime: Date
    public var tenantId: String
    public var userPrincipalName: String?
    public var destinationUrl: String
    /// The prompt as extracted (at most 10,000 characters).
    public var content: String
    public var promptTruncated: Bool
    /// The conversation scheme that read the body (`openai-chat-completions`).
    public var scheme: String
    public var assessment: PromptDetector.Assessment
    /// What the policy did, which may differ from the detector's verdict (report-only policies log but allow).
    public var action: PromptDetector.Verdict
    public var policyId: String?
    public var ruleId: String?
    /// The client's session, when it sent one.
    public var sessionId: String?

    /// An insight for an extracted prompt and its assessment; `action` is the detector's verdict unless a policy says
    /// otherwise.
    public init(transactionId: String, eventId: String, createdDateTime: Date, tenantId: String, userPrincipalName: String?,
                destinationUrl: String, prompt: PromptExtraction.Prompt, scheme: ConversationScheme,
                assessment: PromptDetector.Assessment, action: PromptDetector.Verdict? = nil) {
        self.transactionId = transactionId; self.eventId = eventId; self.createdDateTime = createdDateTime
        self.tenantId = tenantId; self.userPrincipalName = userPrincipalName; self.destinationUrl = destinationUrl
        self.content = prompt.text; self.promptTruncated = prompt.truncated; self.scheme = scheme.name
        self.assessment = assessment; self.action = action ?? assessment.verdict
    }

    /// The stored object (its id is ``eventId``, time-ordered, so the newest come first as traffic records do).
    public var object: StoredObject {
        StoredObject(tenant: tenantId, id: eventId, kind: .generativeAIInsight, body: body)
    }

    /// The Graph shape.
    public var body: [String: JSONValue] {
        [
            "@odata.type": "#microsoft.graph.networkaccess.generativeAIInsight",
            "transactionId": .string(transactionId), "eventId": .string(eventId),
            "createdDateTime": .string(Timestamp.format(createdDateTime)),
            "activity": "prompt", "subactivity": "chat-interaction", "eventType": "prompt",
            "content": .string(content), "destinationUrl": .string(destinationUrl),
            "userPrincipalName": .optional(userPrincipalName), "sessionId": .string(sessionId ?? ""),
            "mcpClientName": .null, "mcpServerName": .null,
            // Tessera's own properties.
            "promptInjectionAction": .string(action.rawValue),
            "promptInjectionScore": .double((assessment.score * 1000).rounded() / 1000),
            "promptInjectionFamily": assessment.verdict == .allow ? .null : .string(assessment.family.rawValue),
            "conversationScheme": .string(scheme), "promptTruncated": .bool(promptTruncated),
            "policyId": .optional(policyId), "ruleId": .optional(ruleId),
        ]
    }
}
