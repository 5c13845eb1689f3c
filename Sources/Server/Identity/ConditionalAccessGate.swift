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
        let (policies, locations) = try await store.read { tx in
            (try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.conditionalAccessPolicy])),
             try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.namedLocation])))
        }
        let engine = ConditionalAccessEngine(policies: policies.filter { $0.deletedAt == nil }.map { .object($0.body) },
                                             namedLocations: locations.filter { $0.deletedAt == nil }.map { .object($0.body) })
        engines.withLock { $0[tenant.id] = (tenant.changeSequence, engine) }
        return engine
    }
}

extension TokenEndpoint {
    /// Conditional Access for workload identities: a client credentials request is decided like a sign-in of the
    /// service principal, from where it came, for the resource it asks for. A service principal cannot answer a prompt,
    /// so anything short of allow refuses the token (AADSTS53003).
    func requireConditionalAccess(client: Client, resourceAppID: String) async throws {
        let engine = try await app.conditionalAccess.engine(for: tenant, store: app.store)
        let facts = SignInFacts(tenantID: tenant.id, subject: .servicePrincipal(id: client.servicePrincipal.id),
                                target: .application(appID: resourceAppID), clientAppType: .other,
                                clientIP: request.clientAddress.flatMap(IPAddress.init), now: app.clock.now)
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
