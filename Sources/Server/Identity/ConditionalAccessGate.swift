import Foundation
import Logging
import Synchronization
import TesseraCore

/// Where Tessera asks Conditional Access: each tenant's policies and named locations compiled once into a
/// ``ConditionalAccessEngine``, again only when the tenant's change log has moved (a policy written on another node
/// applies at the next request after that node's commit).
final class ConditionalAccessGate: Sendable {
    private let engines = Mutex<[String: (sequence: Int64, engine: ConditionalAccessEngine)]>([:])

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
                                             authenticationStrengths: strengths.compactMap { AuthenticationStrength(body: .object($0.body)) })
        engines.withLock { $0[tenant.id] = (tenant.changeSequence, engine) }
        return engine
    }
}

extension ConditionalAccessGate {
    /// The decision for a signed-in browser session's sign-in to `clientID`, from this request; nil when the tenant
    /// has no policy to evaluate (then a sign-in costs nothing: no user, group or role reads).
    func decide(app: TesseraApp, tenant: TenantRecord, session: SignInSessions.Session, clientID: String,
                request: APIRequest) async throws -> ConditionalAccessDecision? {
        let engine = try await engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return nil }
        let facts = try await userFacts(app: app, tenant: tenant, userID: session.userID, clientID: clientID, amr: session.amr,
                                        authTime: session.authTime, clientAddress: request.clientAddress,
                                        userAgent: request.header("user-agent"))
        return engine.decide(facts)
    }

    /// A user's sign-in as Conditional Access sees it: the user's groups and roles (transitively), guest or member,
    /// the application, where the request came from and what it runs, and the session's methods and when.
    func userFacts(app: TesseraApp, tenant: TenantRecord, userID: String, clientID: String, amr: [String], authTime: Int64,
                   clientAddress: String?, userAgent: String?) async throws -> SignInFacts {
        let tenantID = tenant.id
        let directory = app.directory
        let (user, groups) = try await app.store.read { tx in
            (try await tx.object(tenant: tenantID, id: userID), try await directory.transitiveGroups(tenant: tenantID, of: userID, tx: tx))
        }
        let roles = try await app.directory.directoryRoles(tenant: tenantID, principal: userID)
        let external = (user?.body["userType"]?.stringValue).flatMap {
            SignInFacts.ExternalUserKind(userType: $0, homeTenantID: nil, tenantID: tenantID)
        }
        let authenticated = Date(timeIntervalSince1970: TimeInterval(authTime))
        let methods: [SignInFacts.MethodUse] = amr.contains("fido") ? [.init(.fido2, at: authenticated)] : []
        return SignInFacts(tenantID: tenantID, subject: .user(id: userID, groupIDs: Set(groups), roleTemplateIDs: roles, external: external),
                           target: .application(appID: clientID), clientAppType: .browser,
                           platform: userAgent.flatMap(DevicePlatform.init(userAgent:)),
                           clientIP: clientAddress.flatMap(IPAddress.init), country: app.countries.country(for: clientAddress),
                           methodsUsed: methods, now: app.clock.now)
    }
}

extension TokenEndpoint {
    /// Conditional Access at a refresh: the session the token came from must still satisfy the tenant's policies, from
    /// where the request comes now. Anything the user could fix by signing in again is `interaction_required` with a
    /// `claims` challenge naming the policies (as MSAL expects, to pass to its next interactive request); a block is
    /// AADSTS53003.
    func requireConditionalAccess(refreshing code: AuthorizationCode) async throws {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return }
        let facts = try await app.conditionalAccess.userFacts(
            app: app, tenant: tenant, userID: code.userID, clientID: code.clientID, amr: code.amr, authTime: code.authTime,
            clientAddress: request.clientAddress, userAgent: request.header("user-agent"))
        let decision = engine.decide(facts)
        switch decision.outcome {
        case .allow:
            return
        case .needs(let sets) where sets.allSatisfy({ $0.requirements.contains { $0.isInteractive } }):
            let ids = sets.map { JSONValue.string($0.policyID) }
            let claims = JSONValue.object(["access_token": ["capolids": ["essential": true, "values": .array(ids)]]]).serialized
            throw OAuthError(error: "interaction_required", code: 50076,
                             description: "Due to a configuration change made by your administrator, or because you moved to a new location, you must sign in again.",
                             claims: claims)
        case .needs, .block:
            throw OAuthError(error: "invalid_grant", code: 53003,
                             description: "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
        }
    }


    /// Conditional Access for workload identities: a client credentials request is decided like a sign-in of the
    /// service principal, from where it came, for the resource it asks for. A service principal cannot answer a prompt,
    /// so anything short of allow refuses the token (AADSTS53003).
    func requireConditionalAccess(client: Client, resourceAppID: String) async throws {
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
            throw OAuthError(error: "invalid_grant", code: 53003,
                             description: "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
        }
    }
}

extension AuthorizeEndpoint {
    /// Conditional Access for an interactive sign-in to `clientID`, after the passkey step and before the code: the
    /// signed-in user (groups and roles, transitively; guest or member), where the browser is, what it runs, and how
    /// and when the session authenticated. Nil when the sign-in may go on; otherwise the answer: a new sign-in when
    /// only re-authentication is missing (sign-in frequency), else Entra's error page with the code and correlation id.
    func conditionalAccess(session: SignInSessions.Session, clientID: String, continuation: [(name: String, value: String)]) async throws -> APIResponse? {
        let tenantID = tenant.id
        guard let decision = try await app.conditionalAccess.decide(app: app, tenant: tenant, session: session, clientID: clientID,
                                                                    request: request)
        else { return nil }
        switch decision.outcome {
        case .allow:
            return nil
        case .needs(let sets) where sets.allSatisfy({ $0.requirements.contains(.reauthentication) }):
            // Sign-in frequency: the session is too old for this app; sign in again, then come back.
            let back = "/\(request.segments[0])/oauth2/v2.0/authorize?" + Self.encode(
                continuation.filter { $0.name != Self.signedInAfter } + [(Self.signedInAfter, String(Int64(app.clock.now.timeIntervalSince1970)))])
            return APIResponse(status: 302, headers: [("Location", "/\(request.segments[0])/login?" + Self.encode([("continue", back)])),
                                                      ("Cache-Control", "no-store")])
        case .needs, .block:
            let policies = decision.policies.filter { $0.result == .failure }.map(\.displayName)
            let correlation = request.requestID
            app.logger.notice("Conditional Access refused a sign-in", metadata: [
                "tenant": .string(tenantID), "user": .string(session.userID), "client": .string(clientID),
                "policies": .string(policies.joined(separator: "; ")), "request-id": .string(correlation)])
            return AccessBlockedPage.render(tenant: tenant, code: 53003, correlationID: correlation, now: app.clock.now)
        }
    }
}
