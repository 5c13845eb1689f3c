public import Backup
import Foundation
import Logging
public import TesseraCore
public import X509

/// Everything a request handler needs: the store, the directory service, the signing key and settings.
/// Built once at start; immutable afterwards. A class: every handler holds it (`IdentityPlatform(app:)`, `GraphAPI(app:)`,
/// …), and a struct of some thirty references was copied, each reference retained and released, at each of them.
public final class TesseraApp: Sendable {
    public let store: any DirectoryStore
    public let directory: DirectoryService
    /// Daily snapshots, difference reports and recovery (issue 5).
    public let backup: BackupService
    /// The token-signing keys (current, next, previous), as this node last read them from the store.
    let signingKeys: SigningKeyRingCache
    /// Signs and checks WebAuthn challenges, so any replica can finish a ceremony another began.
    let passkeyChallenges: PasskeyChallenges
    public let clock: any TimeSource
    /// Attestation roots the operator trusts (`serve --attestation-roots`): a passkey whose attestation chains to
    /// one is `attested`, which profiles that enforce attestation require.
    public let attestationRoots: [Certificate]
    /// Largest request body accepted, in bytes.
    public let maxBodyBytes: Int
    /// The names the deployment answers to and the proxies it trusts.
    public let network: NetworkPolicy
    /// Which country a client address is in, for country named locations (`serve --country-database`); empty when
    /// no database was loaded, and then every country is unknown.
    public let countries: CountryDatabase
    let logger: Logger
    /// Token-endpoint lookups, valid while a tenant's change log stands still.
    let tokenCache = TokenCache()
    let tenantCache = TenantCache()
    /// Applications by client id, and the Graph scopes a user has granted a client, for the sign-in path.
    let applicationCache = SignInCache<StoredObject>()
    let consentCache = SignInCache<Set<String>>()
    /// Users by id for the sign-in path (`TesseraApp.signInUser`), and the session-and-client records this process has
    /// written or found (`SessionClients.record`), so a sign-in reads and writes neither again.
    let userCache = SignInCache<StoredObject>()
    /// Passkeys by credential id for the sign-in path (`PasskeySignIn`): the statement that starts the session checks
    /// the passkey is still at the version kept.
    let passkeyCache = SignInCache<StoredObject>()
    /// Sessions this process has just started, for the `/authorize` request after the passkey step (`SignInSessionCache`).
    let signInSessionCache = SignInSessionCache()
    let recordedSessionClients = BoundedTable<Bool>()
    /// Smart lockout and per-source throttling of failed authentication.
    let throttle = SignInThrottle()
    /// Each tenant's Conditional Access policies, compiled.
    let conditionalAccess = ConditionalAccessGate()
    let passkeyPolicies = Fido2ConfigurationCache()
    /// Counters and timers for `/metrics`.
    public let telemetry: Telemetry
    /// Recovery jobs running in the background; graceful shutdown waits for them.
    let jobs = BackgroundJobs()
    /// Draining and stopping on SIGTERM (`/readyz` says 503 while draining; recovery jobs hand themselves back).
    public let lifecycle = NodeLifecycle()
    /// Requests this server makes to others: the OpenID Connect providers of B2B with other deployments.
    public let outbound: any OutboundHTTP
    /// Logout tokens on their way to the apps a session signed into (OpenID Connect Back-Channel Logout).
    let backChannelLogout = BackChannelLogoutQueue()
    /// Grants whose authorization code was replayed: their access tokens are refused (RFC 6749 §4.1.2).
    let revokedGrants = RevokedGrants()
    /// Bearer tokens whose signature was checked, so Graph callers' tokens are not verified at every request.
    let verifiedTokens = VerifiedTokens()

    init(store: any DirectoryStore, directory: DirectoryService, backup: BackupService, signingKeys: SigningKeyRingCache,
         passkeyChallenges: PasskeyChallenges, clock: any TimeSource, attestationRoots: [Certificate], maxBodyBytes: Int,
         network: NetworkPolicy, countries: CountryDatabase, logger: Logger, telemetry: Telemetry, outbound: any OutboundHTTP) {
        self.store = store
        self.directory = directory
        self.backup = backup
        self.signingKeys = signingKeys
        self.passkeyChallenges = passkeyChallenges
        self.clock = clock
        self.attestationRoots = attestationRoots
        self.maxBodyBytes = maxBodyBytes
        self.network = network
        self.countries = countries
        self.logger = logger
        self.telemetry = telemetry
        self.outbound = outbound
    }

    /// Opens the app over a migrated store, loading (or creating) the signing key.
    public static func make(store: any DirectoryStore, clock: any TimeSource = SystemTimeSource(),
                            maxBodyBytes: Int = 4 * 1024 * 1024, attestationRoots: [Certificate] = [],
                            backupRetentionDays: Int = 5, network: NetworkPolicy = .init(),
                            countries: CountryDatabase = .empty, outbound: (any OutboundHTTP)? = nil,
                            keyEncryption: KeyEncryptionKey? = nil, signingKeyRotation: Double? = nil) async throws -> TesseraApp {
        let telemetry = Telemetry()
        let store = InstrumentedStore(base: store, telemetry: telemetry)
        try await store.migrate()
        // The deployment's keys, sealed with the key-encryption key (by default $TESSERA_KEY_ENCRYPTION_KEY's) when there is one.
        let secrets = DeploymentSecrets(keyEncryption: try keyEncryption ?? KeyEncryptionKey.load(file: nil))
        let ring = try await SigningKeyRing.loadOrCreate(store: store, secrets: secrets, now: clock.now)
        let challenges = try await PasskeyChallenges.loadOrCreate(store: store, secrets: secrets)
        // Every tenant's CA and Kerberos keys: a key-encryption key that does not open them stops here; plain ones are sealed.
        try await secrets.sealTenantKeys(store: store)
        return TesseraApp(store: store, directory: DirectoryService(store: store, clock: clock),
                          backup: BackupService(store: store, clock: clock, retentionDays: backupRetentionDays), signingKeys: SigningKeyRingCache(ring: ring, secrets: secrets, rotationPeriod: signingKeyRotation),
                          passkeyChallenges: challenges, clock: clock, attestationRoots: attestationRoots,
                          maxBodyBytes: maxBodyBytes, network: network, countries: countries, logger: Logger(label: "tessera"), telemetry: telemetry,
                          outbound: try outbound ?? NIOOutboundHTTP())
    }

    /// Seconds a caller refused with 503 because the database is unavailable should wait before retrying: about the
    /// time a node takes to find a promoted standby.
    static let unavailableRetryAfter = 2

    /// Handles one request: identity platform, Graph or health.
    public func handle(_ request: APIRequest) async -> APIResponse {
        do {
            await refreshSigningKeys()
            // One signing key for the whole request, so a rotation in between cannot pair one key's kid with another's signature.
            return try await SigningKeyRingCache.$requestKey.withValue(signingKeys.ring.current) { try await route(request) }
        } catch let error as DirectoryError {
            var response = APIResponse.error(error, request: request, now: clock.now)
            // The store's 503 (its database unreachable or failing over) is retryable: say when, as /readyz does.
            if error.code == .serviceUnavailable { response.headers.append(("Retry-After", String(Self.unavailableRetryAfter))) }
            return response
        } catch let error as OAuthError {
            return error.response
        } catch {
            // Never echo internals to the client; log them for the operator.
            logger.error("Unhandled error on \(request.method) /\(request.segments.joined(separator: "/")): \(String(describing: error))")
            return .error(DirectoryError(.internalError, "An unexpected error occurred."), request: request, now: clock.now)
        }
    }

    func route(_ request: APIRequest) async throws -> APIResponse {
        let s = request.segments
        guard let first = s.first else {
            return .text("Tessera is running. Graph: /v1.0, identity platform: /{tenant}/v2.0/.well-known/openid-configuration\n")
        }
        switch first {
        case "healthz": return .text("ok")
        case "readyz" where s.count == 1: return await Readiness(store: store, logger: logger, draining: lifecycle.isDraining).respond(request, now: clock.now)
        case "metrics" where s.count == 1:
            // Counts only, but an operator's: served to this machine and to the proxies the deployment trusts.
            guard request.clientAddress.map(network.mayScrape) ?? true else { throw DirectoryError.notFound("/metrics") }
            return APIResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"), ("Cache-Control", "no-store")],
                               body: telemetry.exposition())
        case "v1.0", "beta": return try await GraphAPI(app: self).handle(request)
        case "oidc" where s == ["oidc", "userinfo"]: return try await UserInfo(app: self).respond(request)
        case "admin": return try await AdminCenter(app: self).handle(request)
        case "EnrollmentServer": return try await DeviceRegistration(app: self).handle(request)
        case _ where CrossTenantSyncEndpoint.isRoute(s): return try await CrossTenantSyncEndpoint(app: self).respond(request)
        default: return try await IdentityPlatform(app: self).handle(request)
        }
    }
}
