import Foundation
public import InternetAccess
import Logging
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
        let caller: ProxyCaller
        switch try await authenticate(request) {
        case .authenticated(let authenticated): caller = authenticated
        case .refused(let admission):
            app.logger.info("proxy authentication refused", metadata: [
                "reason": .string(Self.reason(admission)), "source": .string(request.clientAddress ?? "-"), "destination": .string(request.host)])
            return admission
        }
        let tenant = caller.tenant
        let (scopes, refusal) = try await conditionalAccess(caller, request: request)
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
        let proxyUser = ProxyUser(tenantID: tenant.id, userID: caller.userID,
                                  userPrincipalName: caller.user?.body["userPrincipalName"]?.stringValue ?? caller.tokenUPN,
                                  device: caller.device.map(Self.proxyDevice) ?? caller.tokenDeviceID.map { ProxyDevice(deviceId: $0) })
        if let refusal { return .refused(proxyUser, refusal, application: application) }
        return .decided(proxyUser, verdict, application: application)
    }

    /// The 407's reason of a refused admission.
    static func reason(_ admission: ProxyAdmission) -> String {
        switch admission {
        case .unauthenticated(let reason), .deviceNotAccepted(_, _, let reason): reason
        case .decided, .refused: ""
        }
    }

    /// Who is behind a connection: the user of the access token (`Proxy-Authorization: Bearer`), or the registered owner
    /// (else registered user) of the device whose certificate the client presented on the TLS listener, or that device
    /// alone when it has neither (a hybrid joined computer has none); and that device, when a certificate proved it.
    /// With both, the token names the user and the certificate the device, and both must hold (and be of one tenant).
    func authenticate(_ request: ProxyAdmissionRequest) async throws -> Authentication {
        var device: (tenant: TenantRecord, object: StoredObject)?
        if let der = request.clientCertificate {
            switch try await presentedDevice(der) {
            case .success(let found): device = found
            case .failure(let refusal): return .refused(refusal.admission)
            }
        }
        guard request.proxyAuthorization == nil, let device else {
            let jwt: JWT
            do {
                jwt = try Caller.verifiedToken(request.proxyAuthorization, app: app, base: issuerBase)
            } catch {
                return .refused(.unauthenticated(error.message))
            }
            guard jwt.claims["idtyp"]?.stringValue == "user", let tenantID = jwt.claims["tid"]?.stringValue,
                  let userID = jwt.claims["oid"]?.stringValue?.lowercased() else {
                return .refused(.unauthenticated("The proxy takes a signed-in user's access token, not an application's."))
            }
            guard let tenant = try await app.tenantRecord(tenantID) else { return .refused(.unauthenticated("Invalid issuer or tenant.")) }
            if let device, device.tenant.id != tenant.id {
                return .refused(.unauthenticated("The device certificate is of another tenant than the access token."))
            }
            let (user, _, _) = try await app.conditionalAccess.membership(app: app, tenant: tenant, userID: userID)
            guard let user, user.deletedAt == nil, user.body["accountEnabled"]?.boolValue != false else {
                return .refused(.unauthenticated("The user's account is disabled or deleted: the token is revoked."))
            }
            if Self.revoked(jwt, user: user) {
                return .refused(.unauthenticated("The user's sign-in sessions were revoked after this token was issued: sign in again."))
            }
            if let refusal = try await app.revokedGrants.refusal(jwt, app: app) { return .refused(.unauthenticated(refusal)) }
            return .authenticated(ProxyCaller(
                tenant: tenant, userID: userID, user: user, amr: jwt.claims["amr"]?.arrayValue?.compactMap(\.stringValue) ?? [],
                authTime: jwt.claims["iat"]?.intValue ?? Int64(app.clock.now.timeIntervalSince1970), tokenUPN: jwt.claims["upn"]?.stringValue,
                tokenDeviceID: jwt.claims["deviceid"]?.stringValue, device: device?.object))
        }
        return try await deviceUser(device.object, tenant: device.tenant)
    }

    /// Conditional Access for this user's internet traffic: the security profiles the applying policies put on it, and
    /// why it is refused when a policy blocks the user or asks for grant controls the connection does not show (the
    /// token's `amr`, as at the token endpoint: multifactor authentication or another authentication strength; a device
    /// certificate shows no method at all; the device's compliance and hybrid join when a certificate proved the device,
    /// as a device credential shows them at sign-in). A device's own traffic (no user) is decided as the device's own
    /// sign-in is at the token endpoint: the device object as the subject, with its facts.
    func conditionalAccess(_ caller: ProxyCaller, request: ProxyAdmissionRequest) async throws
        -> (profiles: [FilteringEngine.ProfileInScope], refusal: ProxyRefusal?) {
        let tenant = caller.tenant
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        guard engine.evaluatesAnything else { return ([], nil) }
        let target = SignInFacts.Target.application(appID: ConditionalAccessEngine.internetAccessAppID)
        var facts: SignInFacts
        if let userID = caller.userID {
            facts = try await app.conditionalAccess.userFacts(
                app: app, tenant: tenant, userID: userID, target: target, amr: caller.amr, authTime: caller.authTime,
                clientAddress: request.clientAddress, userAgent: request.userAgent)
        } else {
            facts = SignInFacts(tenantID: tenant.id, subject: .servicePrincipal(id: caller.device?.id ?? ""), target: target, clientAppType: .other,
                                clientIP: request.clientAddress.flatMap(IPAddress.init), country: app.countries.country(for: request.clientAddress),
                                now: app.clock.now)
        }
        if let device = caller.device { facts.device = DeviceCredential.facts(of: device) }
        let decision = engine.decide(facts)
        let policies = decision.policies
        let profiles = policies.compactMap { policy in
            policy.filteringProfileID.map {
                FilteringEngine.ProfileInScope(profileID: $0, conditionalAccessPolicyID: policy.id,
                                               reportOnly: policy.result.rawValue.hasPrefix("reportOnly"))
            }
        }
        let names = Dictionary(policies.map { ($0.id, $0.displayName) }) { first, _ in first }
        return (profiles, Self.refusal(decision.outcome, names: names, shown: caller.device == nil ? .token : .connection))
    }

    /// Whether the token was issued before the user's sign-in sessions were revoked (`signInSessionsValidFromDateTime`,
    /// whole seconds: a token of that same second stands).
    static func revoked(_ jwt: JWT, user: StoredObject) -> Bool {
        guard let from = user.body["signInSessionsValidFromDateTime"]?.stringValue.flatMap(Timestamp.parse) else { return false }
        guard let issued = jwt.claims["iat"]?.doubleValue else { return true }
        return issued < from.timeIntervalSince1970.rounded(.down)
    }

    /// What a connection showed Conditional Access: an access token alone, or a device certificate (with or without one).
    enum Shown: String {
        case token = "your access token"
        case connection = "this connection"
    }

    /// What the user is told when Conditional Access keeps their traffic out; nil when it lets it through.
    static func refusal(_ outcome: ConditionalAccessDecision.Outcome, names: [String: String], shown: Shown = .token) -> ProxyRefusal? {
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
                                    + "\(wanted.joined(separator: first.anyOf ? " or " : " and ")) for internet access, which \(shown.rawValue) does not show.\(again)")
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
