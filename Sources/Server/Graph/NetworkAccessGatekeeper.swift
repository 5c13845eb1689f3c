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
        let scopes = try await profilesInScope(tenant: tenant, userID: userID, jwt: jwt, request: request)
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
        return .decided(proxyUser, verdict, application: application)
    }

    /// Whether the token was issued before the user's sign-in sessions were revoked (`signInSessionsValidFromDateTime`,
    /// whole seconds: a token of that same second stands).
    static func revoked(_ jwt: JWT, user: StoredObject) -> Bool {
        guard let from = user.body["signInSessionsValidFromDateTime"]?.stringValue.flatMap(Timestamp.parse) else { return false }
        guard let issued = jwt.claims["iat"]?.doubleValue else { return true }
        return issued < from.timeIntervalSince1970.rounded(.down)
    }

    /// The security profiles the applying Conditional Access policies put on this user's internet traffic.
    func profilesInScope(tenant: TenantRecord, userID: String, jwt: JWT, request: ProxyAdmissionRequest) async throws -> [FilteringEngine.ProfileInScope] {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return [] }
        let facts = try await app.conditionalAccess.userFacts(
            app: app, tenant: tenant, userID: userID, target: .application(appID: ConditionalAccessEngine.internetAccessAppID),
            amr: jwt.claims["amr"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            authTime: jwt.claims["iat"]?.intValue ?? Int64(app.clock.now.timeIntervalSince1970),
            clientAddress: request.clientAddress, userAgent: request.userAgent)
        return engine.decide(facts).policies.compactMap { policy in
            policy.filteringProfileID.map {
                FilteringEngine.ProfileInScope(profileID: $0, conditionalAccessPolicyID: policy.id,
                                               reportOnly: policy.result.rawValue.hasPrefix("reportOnly"))
            }
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
