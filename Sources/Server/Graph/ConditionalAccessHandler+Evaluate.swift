import Foundation
import TesseraCore

/// Conditional Access What If: Graph's `POST /identity/conditionalAccess/evaluate`, answered by the tenant's compiled
/// engine, the one every real sign-in and token asks, from facts built the way a real sign-in builds them (the user's
/// transitive groups and roles, guest or member).
extension ConditionalAccessHandler {
    func evaluate() async throws -> APIResponse {
        guard context.request.method == "POST" else {
            throw DirectoryError(.methodNotAllowed, "The HTTP method '\(context.request.method)' is not allowed on this resource.")
        }
        try context.caller.require(anyOf: Caller.permissions(for: .conditionalAccessPolicy, write: false))
        let question = try WhatIfQuestion(body: try context.request.jsonObject())
        let app = api.app
        guard let tenant = try await app.tenantRecord(context.tenant) else { throw DirectoryError.notFound(context.tenant) }
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        let facts = try await question.facts(app: app, tenant: tenant)
        let answers = WhatIfAnswer.combine(facts.map { engine.decide($0).policies }, question: question)
        let tenantID = tenant.id
        let stored = try await app.store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.conditionalAccessPolicy]))
        }
        let policies = Dictionary(stored.filter { $0.deletedAt == nil }.map { ($0.id.lowercased(), $0) }, uniquingKeysWith: { a, _ in a })
        var value: [JSONValue] = []
        for answer in answers where answer.applies || !question.appliedPoliciesOnly {
            // A policy deleted since the engine was compiled is no longer the tenant's: it is not answered for.
            guard let policy = policies[answer.policyID] else { continue }
            var body = Renderer.render(policy, select: nil)
            body["policyApplies"] = .bool(answer.applies)
            body["analysisReasons"] = .string(answer.serializedReasons)
            value.append(body)
        }
        return .json(["@odata.context": .string("\(context.base)/$metadata#Collection(microsoft.graph.whatIfAnalysisResult)"),
                      "value": .array(value)])
    }
}

/// One policy's What If answer: whether it applies, and Graph's `whatIfAnalysisReasons` for why not.
struct WhatIfAnswer: Sendable, Equatable {
    var policyID: String
    var applies: Bool
    /// The `whatIfAnalysisReasons` members that hold (none when the policy applies and nothing is to be said).
    var reasons: Set<String>

    /// Graph's `whatIfAnalysisReasons` members in their declared order, the order a flags value lists them in.
    static let members = [
        "notEnoughInformation", "invalidCondition", "users", "workloadIdentities", "application", "userActions",
        "authenticationContext", "devicePlatform", "devices", "clientApps", "location", "signInRisk", "emptyPolicy",
        "invalidPolicy", "policyNotEnabled", "userRisk", "time", "insiderRisk", "authenticationFlow",
    ]

    /// The flags as Graph serialises them: comma-separated in declared order, `notSet` when there are none.
    var serializedReasons: String {
        reasons.isEmpty ? "notSet" : Self.members.filter(reasons.contains).joined(separator: ",")
    }

    /// The answer the engine's result for one sign-in gives.
    ///
    /// A policy the engine cannot evaluate fails closed: it takes part in the sign-in (the sign-in would be refused), so
    /// it applies, and its reason says why: `invalidPolicy` when the policy cannot be read, `invalidCondition` when one
    /// of its conditions cannot.
    init(_ result: AppliedPolicy, question: WhatIfQuestion) {
        policyID = result.id
        if result.result == .notEnabled {
            (applies, reasons) = (false, ["policyNotEnabled"])
        } else if result.failedClosedBecause != nil {
            (applies, reasons) = (true, [result.applied ? "invalidCondition" : "invalidPolicy"])
        } else if case .authenticationContext = question.context, result.applied,
                  !result.conditionsSatisfied.contains(.authenticationContext) {
            // A question about data behind an authentication context names no application: the policies that apply
            // are those that target the context, as in Microsoft's example.
            (applies, reasons) = (false, ["authenticationContext"])
        } else if result.applied {
            (applies, reasons) = (true, [])
        } else {
            applies = false
            var unmet = result.conditionsNotSatisfied
            // Graph has no flag of its own for service principal risk: it is a workload identity condition.
            if unmet.contains(.servicePrincipalRisk) { unmet.remove(.servicePrincipalRisk); unmet.insert(.workloadIdentities) }
            reasons = Set(unmet.names)
        }
    }

    /// The answers for a question over several applications: a policy applies when it applies to a sign-in to any of
    /// them; otherwise its reasons are every reason it had not to apply.
    static func combine(_ decisions: [[AppliedPolicy]], question: WhatIfQuestion) -> [WhatIfAnswer] {
        guard var answers = decisions.first?.map({ WhatIfAnswer($0, question: question) }) else { return [] }
        for results in decisions.dropFirst() {
            for (index, result) in results.enumerated() where index < answers.count && !answers[index].applies {
                let other = WhatIfAnswer(result, question: question)
                if other.applies {
                    answers[index] = other
                } else {
                    answers[index].reasons.formUnion(other.reasons)
                }
            }
        }
        return answers
    }
}

extension WhatIfQuestion {
    /// The sign-ins the question describes, one per application it names: the facts a real sign-in gathers (for a user,
    /// transitive groups and directory roles, guest or member; for anyone, the country the client address is in), then
    /// the question's other conditions (a country given overrides the address's).
    func facts(app: TesseraApp, tenant: TenantRecord) async throws -> [SignInFacts] {
        let tenantID = tenant.id
        var base: SignInFacts
        switch identity {
        case .user(let id?, let external):
            let object = try await app.store.read { tx in try await tx.object(tenant: tenantID, id: id) }
            guard let object, object.kind == .user, object.deletedAt == nil else {
                throw DirectoryError.badRequest("Invalid value specified for property 'signInIdentity.userId': no user '\(id)' in this tenant.")
            }
            base = try await app.conditionalAccess.userFacts(
                app: app, tenant: tenant, userID: id, clientID: "", amr: [], authTime: Int64(app.clock.now.timeIntervalSince1970),
                clientAddress: conditions.ipAddress, userAgent: nil)
            if let external, case .user(let id, let groups, let roles, _) = base.subject {
                base.subject = .user(id: id, groupIDs: groups, roleTemplateIDs: roles, external: external)
            }
        case .user(nil, let external):
            base = SignInFacts(tenantID: tenantID, subject: .user(id: "", groupIDs: [], roleTemplateIDs: [], external: external),
                               target: .application(appID: ""), clientIP: conditions.ipAddress.flatMap(IPAddress.init),
                               country: app.countries.country(for: conditions.ipAddress), now: app.clock.now)
        case .servicePrincipal(let id):
            let object = try await app.store.read { tx in try await tx.object(tenant: tenantID, id: id) }
            guard let object, object.kind == .servicePrincipal, object.deletedAt == nil else {
                throw DirectoryError.badRequest(
                    "Invalid value specified for property 'signInIdentity.servicePrincipalId': no service principal '\(id)' in this tenant.")
            }
            // As at the token endpoint: a workload identity's request is a client credentials grant (client app `other`),
            // in the country its address is in.
            base = SignInFacts(tenantID: tenantID, subject: .servicePrincipal(id: id), target: .application(appID: ""),
                               clientAppType: .other, clientIP: conditions.ipAddress.flatMap(IPAddress.init),
                               country: app.countries.country(for: conditions.ipAddress), now: app.clock.now)
        }
        if let type = conditions.clientAppType { base.clientAppType = type }
        base.platform = conditions.platform
        if let country = conditions.country { base.country = country }
        base.device = conditions.device
        base.userRisk = conditions.userRisk
        base.signInRisk = conditions.signInRisk
        base.servicePrincipalRisk = conditions.servicePrincipalRisk
        base.insiderRisk = conditions.insiderRisk
        base.transferMethod = conditions.transferMethod
        switch context {
        case .applications(let ids):
            return ids.map { id in
                var facts = base
                facts.target = .application(appID: id)
                return facts
            }
        case .userAction(let action):
            base.target = .userAction(action)
            return [base]
        case .authenticationContext(let value):
            base.authenticationContexts = [value]
            return [base]
        }
    }
}
