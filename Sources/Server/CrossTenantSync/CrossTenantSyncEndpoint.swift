public import Foundation
import Logging
import Sync
public import TesseraCore

/// The credentials a target tenant grants source tenants of other deployments, so that their synchronization jobs
/// may push batches to it (`POST /{tenant}/crossTenantSynchronization/batches`). A credential is
/// `<grant id>.<secret>`; only the secret's salted digest is kept (the tenant setting `crossTenantSyncGrants`), and it
/// is bound to one source tenant: a batch from any other is refused. What the batches may do is still decided by the
/// target's cross-tenant access settings (`identitySynchronization`), as for a source in the same deployment.
public struct CrossTenantSyncGrants: Sendable {
    public let store: any DirectoryStore

    public init(store: any DirectoryStore) {
        self.store = store
    }

    public struct Grant: Codable, Sendable, Hashable {
        public var id: String
        public var sourceTenantID: String
        var digest: String
        public var createdDateTime: String
    }

    static let key = "crossTenantSyncGrants"

    public func list(tenant: String) async throws -> [Grant] {
        guard let json = try await store.read({ tx in try await tx.setting(tenant: tenant, key: Self.key) }) else { return [] }
        return try JSONDecoder().decode([Grant].self, from: Data(json.serializedBytes))
    }

    func save(_ grants: [Grant], tenant: String) async throws {
        let value = try JSONParser.parse(Array(try JSONEncoder().encode(grants)))
        try await store.write { tx in try await tx.putSetting(tenant: tenant, key: Self.key, value: value) }
    }

    /// Grants `source` a new credential for pushing into `tenant`, and returns it (shown once).
    public func grant(tenant: String, source: String, now: Date) async throws -> (grant: Grant, credential: String) {
        guard Identifier.isGUID(source) else { throw DirectoryError.badRequest("'\(source)' is not a tenant id.") }
        let secret = Secrets.randomToken(bytes: 32)
        let grant = Grant(id: Identifier.make(), sourceTenantID: source.lowercased(), digest: Secrets.digest(secret),
                          createdDateTime: Timestamp.format(now))
        try await save(try await list(tenant: tenant) + [grant], tenant: tenant)
        return (grant, "\(grant.id).\(secret)")
    }

    /// Withdraws a credential: batches presenting it are refused from now on.
    public func revoke(tenant: String, id: String) async throws {
        let grants = try await list(tenant: tenant)
        guard grants.contains(where: { $0.id == id.lowercased() }) else { throw DirectoryError.notFound(id) }
        try await save(grants.filter { $0.id != id.lowercased() }, tenant: tenant)
    }

    /// The grant a presented credential proves, if any (the secret compared in constant time).
    func verify(tenant: String, credential: String) async throws -> Grant? {
        let parts = credential.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return nil }
        guard let grant = try await list(tenant: tenant).first(where: { $0.id == parts[0].lowercased() }) else { return nil }
        return Secrets.matches(parts[1], digest: grant.digest) ? grant : nil
    }
}

/// `POST /{tenant}/crossTenantSynchronization/batches`: a batch from a source tenant of another deployment, with the
/// credential this tenant granted it (`Authorization: Bearer <credential>`), answered with what was done
/// (`CrossTenantSyncReport`).
struct CrossTenantSyncEndpoint {
    let app: TesseraApp

    static func isRoute(_ segments: [String]) -> Bool {
        segments.count == 3 && segments[1] == "crossTenantSynchronization" && segments[2] == "batches"
    }

    func respond(_ request: APIRequest) async throws -> APIResponse {
        guard request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST.") }
        guard let target = try await app.tenantRecord(request.segments[0]) else { throw DirectoryError.notFound(request.segments[0]) }
        let grant: CrossTenantSyncGrants.Grant
        switch try await authenticate(request, target: target.id) {
        case .granted(let proved): grant = proved
        case .throttled(let seconds): return TesseraResponder.throttled(seconds)
        }
        let batch: CrossTenantSyncBatch
        do {
            batch = try JSONDecoder().decode(CrossTenantSyncBatch.self, from: Data(request.body))
        } catch {
            throw DirectoryError.badRequest("The body is not a cross-tenant synchronization batch.")
        }
        guard batch.sourceTenantID == grant.sourceTenantID else {
            throw DirectoryError(.accessDenied, "This credential was granted to tenant '\(grant.sourceTenantID)', not to '\(batch.sourceTenantID)'.")
        }
        let report = try await CrossTenantSyncImport(directory: app.directory, clock: app.clock).apply(batch, target: target)
        return .json(try JSONParser.parse(Array(try JSONEncoder().encode(report))))
    }

    /// The grant the request's credential proves, under the smart lockout the token endpoint uses: a source that keeps
    /// presenting wrong credentials is slowed and then refused (429 with `Retry-After`) before any secret is compared,
    /// and a grant guessed at from one address stays usable from others.
    func authenticate(_ request: APIRequest, target: String) async throws -> Authentication {
        let now = app.clock.now
        let authorization = request.header("authorization") ?? ""
        let credential = authorization.lowercased().hasPrefix("bearer ") ? String(authorization.dropFirst(7)) : nil
        let account = credential.map { "crossTenantSync:\(target):\($0.split(separator: ".", maxSplits: 1).first.map(String.init) ?? "")" }
        if let refusal = app.throttle.check(account: account, source: request.clientAddress, now: now) {
            app.telemetry.throttled(kind: "crossTenantSync")
            return .throttled(retryAfter: refusal.retryAfter(now: now))
        }
        guard let credential, let grant = try await CrossTenantSyncGrants(store: app.store).verify(tenant: target, credential: credential) else {
            if app.throttle.failed(account: account, source: request.clientAddress, now: now) != nil {
                app.telemetry.lockout(kind: "crossTenantSync")
                app.logger.warning("Cross-tenant synchronization credential locked out after repeated failures",
                                   metadata: ["tenant": .string(target), "source": .string(request.clientAddress ?? "-")])
            }
            throw DirectoryError(.invalidToken, "The cross-tenant synchronization credential is missing or not valid for this tenant.")
        }
        if let account { app.throttle.succeeded(account: account, source: request.clientAddress) }
        return .granted(grant)
    }

    enum Authentication {
        case granted(CrossTenantSyncGrants.Grant)
        case throttled(retryAfter: Int)
    }
}
