import Foundation
import Logging
import Synchronization
import TesseraCore

/// Where Tessera asks Conditional Access: each tenant's policies and named locations compiled once into a
/// ``ConditionalAccessEngine``, again only when the tenant's change log has moved (a policy written on another node
/// applies at the next request after that node's commit).
final class ConditionalAccessGate: Sendable {
    /// What application keywords stand for here: Entra's, with Tessera's admin center among the admin portals.
    static let applicationGroups = ConditionalAccessEngine.defaultApplicationGroups.merging(
        ["microsoftadminportals": [AdminCenter.appID]], uniquingKeysWith: { $0.union($1) })

    private let engines = Mutex<[String: (sequence: Int64, engine: ConditionalAccessEngine)]>([:])

    /// A user's groups and directory roles, transitively, with the user, read once per change of the tenant: every
    /// sign-in, refresh and admin page asks, and nested groups cost a query per level.
    private let memberships = Mutex<[String: Membership]>([:])
    private struct Membership { let sequence: Int64; let user: StoredObject?; let groups: Set<String>; let roles: Set<String> }
    /// Kept for this many users at most (then started afresh): enough for every active user of a large tenant.
    static let membershipCapacity = 50_000

    /// The user, the groups it is in and the directory roles it holds, all transitively, as of the tenant's current
    /// change sequence.
    func membership(app: TesseraApp, tenant: TenantRecord, userID: String) async throws -> (StoredObject?, Set<String>, Set<String>) {
        let key = tenant.id + "/" + userID
        if let cached = memberships.withLock({ $0[key] }), cached.sequence == tenant.changeSequence {
            return (cached.user, cached.groups, cached.roles)
        }
        let tenantID = tenant.id
        let directory = app.directory
        let (user, groups, roles) = try await app.store.read { tx in
            let groups = try await directory.transitiveGroups(tenant: tenantID, of: userID, tx: tx)
            return (try await tx.object(tenant: tenantID, id: userID), groups,
                    try await directory.directoryRoles(tenant: tenantID, principal: userID, groups: groups, tx: tx))
        }
        let entry = Membership(sequence: tenant.changeSequence, user: user, groups: Set(groups), roles: roles)
        memberships.withLock { cache in
            if cache.count >= Self.membershipCapacity { cache.removeAll(keepingCapacity: true) }
            cache[key] = entry
        }
        return (user, entry.groups, roles)
    }

    /// The tenant's engine, compiled from what is stored now.
    func engine(for tenant: TenantRecord, store: any DirectoryStore) async throws -> ConditionalAccessEngine {
        if let cached = engines.withLock({ $0[tenant.id] }), cached.sequence == tenant.changeSequence { return cached.engine }
        let tenantID = tenant.id
        let (policies, locations, strengths) = try await store.read { tx in
            (try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.conditionalAccessPolicy])),
             try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.namedLocation])),
             try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.authenticationStrengthPolicy])))
        }
        let engine = ConditionalAccessEngine(policies: policies.filter { $0.deletedAt == nil }.map { .object($0.body) },
                                             namedLocations: locations.filter { $0.deletedAt == nil }.map { .object($0.body) },
                                             // A custom strength the engine cannot read is left out: policies requiring it fail closed.
                                             authenticationStrengths: strengths.compactMap { AuthenticationStrength(body: .object($0.body)) },
                                             applicationGroups: Self.applicationGroups)
        engines.withLock { $0[tenant.id] = (tenant.changeSequence, engine) }
        return engine
    }
}

extension ConditionalAccessGate {
    /// The decision for a signed-in browser session's sign-in to `clientID`, from this request. A tenant with no policy
    /// to evaluate costs a sign-in nothing: no user, group or role reads (every policy is then `notEnabled`).
    func decide(app: TesseraApp, tenant: TenantRecord, session: SignInSessions.Session, clientID: String,
                request: APIRequest, authenticationContexts: Set<String> = []) async throws -> ConditionalAccessDecision {
        let engine = try await engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return Self.idle(engine, tenant: tenant, userID: session.userID, clientID: clientID, now: app.clock.now) }
        var facts = try await userFacts(app: app, tenant: tenant, userID: session.userID, target: .application(appID: clientID),
                                        amr: session.amr, aaguid: session.aaguid, authTime: session.authTime,
                                        clientAddress: request.clientAddress, userAgent: request.header("user-agent"),
                                        deviceCredential: DeviceCredential(request: request))
        facts.authenticationContexts = authenticationContexts
        return engine.decide(facts)
    }

    /// The authentication contexts a `claims` request parameter asks for, the way MSAL passes on a claims challenge:
    /// `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` (or `values`). Anything else in it is ignored, as
    /// Entra ignores claims it does not act on; a parameter that is not JSON, or a context that is not `c1`…`c99`, is an
    /// error.
    static func authenticationContexts(claims: String?) throws -> Set<String> {
        guard let claims, !claims.isEmpty else { return [] }
        guard let parsed = try? JSONParser.parse(Array(claims.utf8)), parsed.objectValue != nil else {
            throw OAuthError.invalidRequest(90008, "The claims parameter is not a valid JSON object.")
        }
        guard let acrs = parsed["access_token"]?["acrs"] else { return [] }
        let values = (acrs["values"]?.arrayValue?.compactMap(\.stringValue) ?? []) + (acrs["value"]?.stringValue.map { [$0] } ?? [])
        for value in values {
            guard value.count >= 2, value.count <= 3, value.first == "c", let number = Int(value.dropFirst()), (1...99).contains(number) else {
                throw OAuthError.invalidRequest(90008, "The claims parameter names an authentication context '\(value)' that is not c1 to c99.")
            }
        }
        return Set(values)
    }

    /// The methods a session's `amr` records, as Conditional Access counts them: a passkey is `fido2`, a Temporary
    /// Access Pass `temporaryAccessPassOneTime`.
    static func methods(amr: [String], aaguid: String? = nil, at time: Date) -> [SignInFacts.MethodUse] {
        var methods: [SignInFacts.MethodUse] = []
        if amr.contains("fido") { methods.append(.init(.fido2, at: time, aaguid: aaguid)) }
        if amr.contains("tap") { methods.append(.init(.temporaryAccessPassOneTime, at: time)) }
        return methods
    }

    /// Conditional Access for registering security information (Entra's `urn:user:registersecurityinfo` user action)
    /// with what the user signed in with, such as a Temporary Access Pass: nil when it may go on, else the refusal,
    /// which is in the sign-in log.
    func registration(app: TesseraApp, tenantID: String, user: StoredObject, amr: [String], request: APIRequest) async throws -> DirectoryError? {
        guard let tenant = try await app.tenantRecord(tenantID) else { return nil }
        let engine = try await engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return nil }
        let now = app.clock.now
        let facts = try await userFacts(app: app, tenant: tenant, userID: user.id, target: .userAction(.registerSecurityInformation), amr: amr,
                                        authTime: Int64(now.timeIntervalSince1970), clientAddress: request.clientAddress,
                                        userAgent: request.header("user-agent"))
        let decision = engine.decide(facts)
        guard decision.outcome != .allow else { return nil }
        await SignInLog(app: app, tenant: tenantID).record(
            SignInEvent(kind: .interactiveUser, principal: user, appID: Self.securityInfoAppID, appDisplayName: "My Signins",
                        amr: amr, authTime: Int64(now.timeIntervalSince1970), decision: decision,
                        failure: (53003, "Access has been blocked by Conditional Access policies."), clientAppUsed: "Browser"),
            request: request)
        return DirectoryError(.accessDenied, "AADSTS53003: Access has been blocked by Conditional Access policies: registering security information is not allowed from here with how you signed in (correlation id \(request.requestID)).")
    }

    /// Entra's code and reason for a refused sign-in: AADSTS53000 when what is missing is a compliant device, AADSTS53001
    /// a hybrid joined one, AADSTS53003 (blocked by Conditional Access) otherwise.
    static func refusal(_ decision: ConditionalAccessDecision) -> (code: Int, reason: String) {
        let blocked = (53003, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
        guard case .needs(let sets) = decision.outcome, !sets.isEmpty,
              sets.allSatisfy({ set in !set.requirements.isEmpty && set.requirements.allSatisfy { $0 == .compliantDevice || $0 == .hybridJoinedDevice } })
        else { return blocked }
        if sets.allSatisfy({ $0.requirements.contains(.compliantDevice) }) {
            return (53000, "Conditional Access policy requires a compliant device, and the device is not compliant.")
        }
        if sets.allSatisfy({ $0.requirements.contains(.hybridJoinedDevice) }) {
            return (53001, "Conditional Access policy requires a domain joined device, and the device is not domain joined.")
        }
        return blocked
    }

    /// Entra's "My Signins" application, where security information is registered.
    static let securityInfoAppID = "19db86c3-b2b9-44cc-b339-36da233a3be2"

    /// The decision of an engine that evaluates nothing: every policy `notEnabled`, without reading the directory.
    static func idle(_ engine: ConditionalAccessEngine, tenant: TenantRecord, userID: String, clientID: String, now: Date) -> ConditionalAccessDecision {
        engine.decide(SignInFacts(tenantID: tenant.id, subject: .user(id: userID, groupIDs: [], roleTemplateIDs: [], external: nil),
                                  target: .application(appID: clientID), now: now))
    }

    /// A user's sign-in as Conditional Access sees it: the user's groups and roles (transitively), guest or member,
    /// the application, where the request came from and what it runs, and the session's methods and when.
    func userFacts(app: TesseraApp, tenant: TenantRecord, userID: String, clientID: String, amr: [String], authTime: Int64,
                   clientAddress: String?, userAgent: String?) async throws -> SignInFacts {
        try await userFacts(app: app, tenant: tenant, userID: userID, target: .application(appID: clientID), amr: amr, authTime: authTime,
                            clientAddress: clientAddress, userAgent: userAgent)
    }

    /// A user's sign-in for `target` (an application, or a user action such as registering security information).
    /// The device is the one `deviceCredential` proves (see ``DeviceCredential`` for what counts), nil without one.
    func userFacts(app: TesseraApp, tenant: TenantRecord, userID: String, target: SignInFacts.Target, amr: [String], aaguid: String? = nil,
                   authTime: Int64, clientAddress: String?, userAgent: String?,
                   deviceCredential: DeviceCredential? = nil) async throws -> SignInFacts {
        let (user, groups, roles) = try await membership(app: app, tenant: tenant, userID: userID)
        let tenantID = tenant.id
        // An external user's methods were used at home: they count here only when this tenant trusts that tenant's MFA.
        let home = try await CrossTenantSignIn(app: app).home(tenant: tenantID, user: user)
        let external = (user?.body["userType"]?.stringValue).flatMap {
            SignInFacts.ExternalUserKind(userType: $0, homeTenantID: home?.tenantID, tenantID: tenantID)
        }
        let authenticated = Date(timeIntervalSince1970: TimeInterval(authTime))
        let methods = home.map { $0.access.acceptsPartnerMFA } == false ? [] : Self.methods(amr: amr, aaguid: aaguid, at: authenticated)
        // Likewise a device of the home tenant shows only what this tenant trusts of that tenant's devices.
        let device = try await deviceCredential?.facts(app: app, tenantID: tenantID, home: home)
        return SignInFacts(tenantID: tenantID, subject: .user(id: userID, groupIDs: groups, roleTemplateIDs: roles, external: external),
                           target: target, clientAppType: .browser,
                           platform: userAgent.flatMap(DevicePlatform.init(userAgent:)),
                           clientIP: clientAddress.flatMap(IPAddress.init), country: app.countries.country(for: clientAddress),
                           device: device, methodsUsed: methods, now: app.clock.now)
    }
}

extension TokenEndpoint {
    /// Conditional Access at a refresh: the session the token came from must still satisfy the tenant's policies, from
    /// where the request comes now. Anything the user could fix by signing in again is `interaction_required` with a
    /// `claims` challenge naming the policies (as MSAL expects, to pass to its next interactive request); a block is
    /// AADSTS53003.
    func requireConditionalAccess(refreshing code: AuthorizationCode, authenticationContexts: Set<String>) async throws -> ConditionalAccessDecision {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else {
            return ConditionalAccessGate.idle(engine, tenant: tenant, userID: code.userID, clientID: code.clientID, now: app.clock.now)
        }
        var facts = try await app.conditionalAccess.userFacts(
            app: app, tenant: tenant, userID: code.userID, target: .application(appID: code.clientID), amr: code.amr, aaguid: code.aaguid,
            authTime: code.authTime, clientAddress: request.clientAddress, userAgent: request.header("user-agent"),
            deviceCredential: DeviceCredential(request: request))
        facts.authenticationContexts = authenticationContexts
        let decision = engine.decide(facts)
        let refusal: OAuthError
        switch decision.outcome {
        case .allow:
            return decision
        case .needs(let sets) where sets.allSatisfy({ $0.requirements.contains { $0.isInteractive } }):
            let ids = sets.map { JSONValue.string($0.policyID) }
            let claims = JSONValue.object(["access_token": ["capolids": ["essential": true, "values": .array(ids)]]]).serialized
            refusal = OAuthError(error: "interaction_required", code: 50076,
                                 description: "Due to a configuration change made by your administrator, or because you moved to a new location, you must sign in again.",
                                 claims: claims)
        case .needs, .block:
            let refused = ConditionalAccessGate.refusal(decision)
            refusal = OAuthError(error: "invalid_grant", code: refused.code, description: refused.reason)
        }
        if let user = try await app.activeUser(tenant: tenant.id, id: code.userID) {
            let application = try await app.application(tenant: tenant.id, appID: code.clientID)
            await SignInLog(app: app, tenant: tenant.id).record(
                SignInEvent(kind: .nonInteractiveUser, principal: user, appID: code.clientID,
                            appDisplayName: application?.body["displayName"]?.stringValue, amr: code.amr, authTime: code.authTime,
                            decision: decision, failure: (refusal.code, refusal.description), clientAppUsed: "Mobile Apps and Desktop clients"),
                request: request)
        }
        throw refusal
    }


    /// Conditional Access for workload identities: a client credentials request is decided like a sign-in of the
    /// service principal, from where it came, for the resource it asks for. A service principal cannot answer a prompt,
    /// so anything short of allow refuses the token (AADSTS53003).
    func requireConditionalAccess(client: Client, resourceAppID: String) async throws -> ConditionalAccessDecision {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        let facts = SignInFacts(tenantID: tenant.id, subject: .servicePrincipal(id: client.servicePrincipal.id),
                                target: .application(appID: resourceAppID), clientAppType: .other,
                                clientIP: request.clientAddress.flatMap(IPAddress.init),
                                country: app.countries.country(for: request.clientAddress), now: app.clock.now)
        let decision = engine.decide(facts)
        guard case .allow = decision.outcome else {
            let policies = decision.policies.filter { $0.result == .failure }.map(\.id)
            app.logger.notice("Conditional Access refused a token", metadata: [
                "tenant": .string(tenant.id), "servicePrincipal": .string(client.servicePrincipal.id),
                "policies": .string(policies.joined(separator: ",")), "source": .string(request.clientAddress ?? "-")])
            let refusal = OAuthError(error: "invalid_grant", code: 53003,
                                     description: "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
            await SignInLog(app: app, tenant: tenant.id).record(
                SignInEvent(kind: .servicePrincipal, principal: client.servicePrincipal,
                            appID: client.application.body["appId"]?.stringValue ?? "",
                            appDisplayName: client.application.body["displayName"]?.stringValue, resourceID: resourceAppID,
                            decision: decision, failure: (refusal.code, refusal.description)),
                request: request)
            throw refusal
        }
        return decision
    }
}

extension AuthorizeEndpoint {
    /// Conditional Access for an interactive sign-in to `clientID`, after the passkey step and before the code: the
    /// signed-in user (groups and roles, transitively; guest or member), where the browser is, what it runs, and how
    /// and when the session authenticated. The decision, and the answer when the sign-in may not go on: a new sign-in
    /// when only re-authentication is missing (sign-in frequency), else Entra's error page with the code and correlation
    /// id (that refusal is in the sign-in log).
    func conditionalAccess(session: SignInSessions.Session, clientID: String, application: StoredObject, authenticationContexts: Set<String>,
                           continuation: [(name: String, value: String)]) async throws -> (ConditionalAccessDecision, refusal: APIResponse?) {
        let tenantID = tenant.id
        let decision = try await app.conditionalAccess.decide(app: app, tenant: tenant, session: session, clientID: clientID, request: request,
                                                              authenticationContexts: authenticationContexts)
        switch decision.outcome {
        case .allow:
            return (decision, nil)
        case .needs(let sets) where sets.allSatisfy({ $0.requirements.contains(.reauthentication) }):
            // Sign-in frequency: the session is too old for this app; sign in again, then come back.
            let back = "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(
                continuation.filter { $0.name != Self.signedInAfter } + [(Self.signedInAfter, String(Int64(app.clock.now.timeIntervalSince1970)))])
            return (decision, APIResponse(status: 302, headers: [("Location", "/\(request.segments[0])/login?" + Self.encode([("continue", back)])),
                                                                 ("Cache-Control", "no-store")]))
        case .needs, .block:
            let policies = decision.policies.filter { $0.result == .failure }.map(\.displayName)
            let correlation = request.requestID
            app.logger.notice("Conditional Access refused a sign-in", metadata: [
                "tenant": .string(tenantID), "user": .string(session.userID), "client": .string(clientID),
                "policies": .string(policies.joined(separator: "; ")), "request-id": .string(correlation)])
            let refused = ConditionalAccessGate.refusal(decision)
            if let user = try await app.activeUser(tenant: tenantID, id: session.userID) {
                await SignInLog(app: app, tenant: tenantID).record(
                    SignInEvent(kind: .interactiveUser, principal: user, appID: clientID,
                                appDisplayName: application.body["displayName"]?.stringValue, amr: session.amr, authTime: session.authTime,
                                decision: decision, failure: refused,
                                clientAppUsed: "Browser"),
                    request: request)
            }
            return (decision, AccessBlockedPage.render(tenant: tenant, code: refused.code, correlationID: correlation, now: app.clock.now))
        }
    }
}
