import Synchronization
import TesseraCore

/// What the token endpoint derives from the directory for one client and resource: the client's app and
/// service principal, and the roles it holds on the resource. Valid while the tenant's change log has
/// not moved, so a revoked secret, a removed assignment or a disabled app takes effect at the next
/// request; rebuilt from the store on any miss.
final class TokenCache: Sendable {
    struct Client: Sendable {
        let sequence: Int64
        let application: StoredObject
        let servicePrincipal: StoredObject?
    }

    struct Grant: Sendable {
        let sequence: Int64
        let resource: StoredObject
        let roles: [String]
    }

    private let clients = Mutex<[String: Client]>([:])
    private let grants = Mutex<[String: Grant]>([:])
    private let limit = 10_000

    func client(tenant: TenantRecord, clientId: String) -> Client? {
        clients.withLock { $0["\(tenant.id)|\(clientId)"] }.flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ client: Client, tenant: String, clientId: String) {
        clients.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table["\(tenant)|\(clientId)"] = client
        }
    }

    func grant(tenant: TenantRecord, principal: String, resource: String) -> Grant? {
        grants.withLock { $0["\(tenant.id)|\(principal)|\(resource)"] }.flatMap { $0.sequence == tenant.changeSequence ? $0 : nil }
    }

    func store(_ grant: Grant, tenant: String, principal: String, resource: String) {
        grants.withLock { table in
            if table.count >= limit { table.removeAll(keepingCapacity: true) }
            table["\(tenant)|\(principal)|\(resource)"] = grant
        }
    }
}
