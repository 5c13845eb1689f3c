import Foundation
public import InternetAccess
import Synchronization
import TesseraCore

/// What `tessera proxy` asks for each connection: the `Proxy-Authorization: Bearer` access token validated as the
/// resource APIs validate tokens (signature with the tenant-wide key, lifetime, audience, an issuer of this
/// deployment) plus revocation (a deleted or disabled user is refused, and so is a token issued before the user's
/// `signInSessionsValidFromDateTime`, which `revokeSignInSessions` sets); then Conditional Access for the Internet Access
/// traffic profile (``ConditionalAccessEngine/internetAccessAppID``) gives the security profiles on the user's
/// traffic, and the filtering engine decides the destination and the prompt policy.
///
/// Costs per connection: the engine, the user's groups and roles, the tenant's filtering and prompt policies and its
/// catalog (custom apps, score overrides, sanction tags) are each cached until the tenant's change sequence moves (read
/// from the tenant record, itself at most a second old): every one of those writes is in the change log.
public struct NetworkAccessGatekeeper: ProxyGatekeeper {
    let app: TesseraApp
    let catalog: AICatalog
    /// The URL the tokens' issuer is under (what `serve` is reached at).
    let issuerBase: String
    let cache = FilteringCache()

    public init(app: TesseraApp, catalog: AICatalog, issuerBase: String) {
        self.app = app
        self.catalog = catalog
        self.issuerBase = issuerBase.hasSuffix("/") ? String(issuerBase.dropLast()) : issuerBase
    }

    public func admit(_ request: ProxyAdmissionRequest) async throws -> ProxyAdmission {
        let jwt: JWT
        do {
            jwt = try Caller.verifiedToken(request.proxyAuthorization, app: app, base: issuerBase)
        } catch {
            return .unauthenticated(error.message)
        }
        guard jwt.claims["idtyp"]?.stringValue == "user", let tenantID = jwt.claims["tid"]?.stringValue,
              let userID = jwt.claims["oid"]?.stringValue?.lowercased() else {
            return .unauthenticated("The proxy takes a signed-in user's access token, not an application's.")
        }
        guard let tenant = try await app.tenantRecord(tenantID) else { return .unauthenticated("Invalid issuer or tenant.") }
        let (user, _, _) = try await app.conditionalAccess.membership(app: app, tenant: tenant, userID: userID)
        guard let user, user.deletedAt == nil, user.body["accountEnabled"]?.boolValue != false else {
            return .unauthenticated("The user's account is disabled or deleted: the token is revoked.")
        }
        if Self.revoked(jwt, user: user) {
            return .unauthenticated("The user's sign-in sessions were revoked after this token was issued: sign in again.")
        }
        let (scopes, refusal) = try await conditionalAccess(tenant: tenant, userID: userID, jwt: jwt, request: request)
        let filtering = try await cache.entry(tenant: tenant, store: app.store, shipped: catalog,
                                              year: Calendar(identifier: .gregorian).component(.year, from: app.clock.now))
        let catalog = filtering.catalog
        let index = catalog.app(forHost: request.host)
        let aiApp = index.map { catalog.apps[$0] }
        let destination = FilteringEngine.Destination(host: request.host, path: request.path, app: aiApp,
                                                      sanction: aiApp.flatMap { filtering.sanctions[$0.id] } ?? .none)
        let verdict = filtering.engine.decide(destination, scopes: scopes)
        let application = index.map { i in
            TrafficRecord.Application(catalogId: catalog.apps[i].id, name: catalog.apps[i].name, category: catalog.apps[i].category,
                                      score: catalog.scores[i],
                                      activity: request.path.map { catalog.activity(app: i, host: request.host, path: $0) } ?? .none)
        }
        let proxyUser = ProxyUser(tenantID: tenant.id, userID: userID,
                                  userPrincipalName: user.body["userPrincipalName"]?.stringValue ?? jwt.claims["upn"]?.stringValue,
                                  deviceID: jwt.claims["deviceid"]?.stringValue)
        if let refusal { return .refused(proxyUser, refusal, application: application) }
        return .decided(proxyUser, verdict, application: application)
    }

    /// Whether the token was issued before the user's sign-in sessions were revoked (`signInSessionsValidFromDateTime`,
    /// whole seconds: a token of that same second stands).
    static func revoked(_ jwt: JWT, user: StoredObject) -> Bool {
        guard let from = user.body["signInSessionsValidFromDateTime"]?.stringValue.flatMap(Timestamp.parse) else { return false }
        guard let issued = jwt.claims["iat"]?.doubleValue else { return true }
        return issued < from.timeIntervalSince1970.rounded(.down)
    }

    /// Conditional Access for this user's internet traffic: the security profiles the applying policies put on it, and
    /// why it is refused when a policy blocks the user or asks for grant controls the token does not show (its `amr`,
    /// as at the token endpoint: multifactor authentication or another authentication strength; device controls are
    /// not shown by a proxy's token, so a policy that asks for them refuses).
    func conditionalAccess(tenant: TenantRecord, userID: String, jwt: JWT, request: ProxyAdmissionRequest) async throws
        -> (profiles: [FilteringEngine.ProfileInScope], refusal: ProxyRefusal?) {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return ([], nil) }
        let facts = try await app.conditionalAccess.userFacts(
            app: app, tenant: tenant, userID: userID, target: .application(appID: ConditionalAccessEngine.internetAccessAppID),
            amr: jwt.claims["amr"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            authTime: jwt.claims["iat"]?.intValue ?? Int64(app.clock.now.timeIntervalSince1970),
            clientAddress: request.clientAddress, userAgent: request.userAgent)
        let decision = engine.decide(facts)
        let policies = decision.policies
        let profiles = policies.compactMap { policy in
            policy.filteringProfileID.map {
                FilteringEngine.ProfileInScope(profileID: $0, conditionalAccessPolicyID: policy.id,
                                               reportOnly: policy.result.rawValue.hasPrefix("reportOnly"))
            }
        }
        return (profiles, Self.refusal(decision.outcome, names: Dictionary(policies.map { ($0.id, $0.displayName) }) { first, _ in first }))
    }

    /// What the user is told when Conditional Access keeps their traffic out; nil when it lets it through.
    static func refusal(_ outcome: ConditionalAccessDecision.Outcome, names: [String: String]) -> ProxyRefusal? {
        switch outcome {
        case .allow:
            return nil
        case .block(let ids):
            let id = ids.first ?? ""
            return ProxyRefusal(conditionalAccessPolicyID: id,
                                message: "Your organization's Conditional Access policy '\(names[id] ?? id)' blocks your internet access through this proxy.")
        case .needs(let sets):
            guard let first = sets.first else { return nil }
            let wanted = first.requirements.map { requirement -> String in
                switch requirement {
                case .authenticationStrength(let strength): "a sign-in with \(strength.displayName.lowercased())"
                case .compliantDevice: "a compliant device"
                case .hybridJoinedDevice: "a Microsoft Entra hybrid joined device"
                case .reauthentication: "a more recent sign-in"
                case .unsupported(let control): "'\(control)'"
                }
            }
            let again = first.requirements.contains(where: \.isInteractive) ? " Sign in again to get a token that does." : ""
            return ProxyRefusal(conditionalAccessPolicyID: first.policyID,
                                message: "Your organization's Conditional Access policy '\(names[first.policyID] ?? first.policyID)' requires "
                                    + "\(wanted.joined(separator: first.anyOf ? " or " : " and ")) for internet access, which your access token does not show.\(again)")
        }
    }
}

/// Each tenant's filtering engine (its profiles, filtering and prompt policies), catalog (the shipped apps, its custom
/// apps and score overrides) and sanction tags, as of a change sequence.
final class FilteringCache: Sendable {
    struct Entry: Sendable {
        let sequence: Int64
        let engine: FilteringEngine
        let catalog: AICatalog
        let sanctions: [String: AppSanctions.State]
    }

    private let entries = Mutex<[String: Entry]>([:])

    func entry(tenant: TenantRecord, store: any DirectoryStore, shipped: AICatalog, year: Int) async throws -> Entry {
        if let cached = entries.withLock({ $0[tenant.id] }), cached.sequence == tenant.changeSequence { return cached }
        let tenantID = tenant.id
        let objects = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.filteringProfile, .filteringPolicy, .promptPolicy]))
        }.filter { $0.deletedAt == nil }
        let engine = FilteringEngine(profiles: objects.filter { $0.kind == .filteringProfile }.compactMap(FilteringProfile.init(stored:)),
                                     policies: objects.filter { $0.kind == .filteringPolicy }.compactMap(FilteringPolicy.init(stored:)),
                                     promptPolicies: objects.filter { $0.kind == .promptPolicy }.compactMap(PromptPolicy.init(stored:)))
        let settings = try await AppSanctions.settings(tenant: tenantID, store: store)
        let entry = Entry(sequence: tenant.changeSequence, engine: engine, catalog: settings.catalog(shipped: shipped, year: year),
                          sanctions: settings.sanctions)
        entries.withLock { table in
            if table.count >= 10_000 { table.removeAll(keepingCapacity: true) }
            table[tenantID] = entry
        }
        return entry
    }
}
