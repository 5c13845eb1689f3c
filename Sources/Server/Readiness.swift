import Foundation
import Logging
import Store
import TesseraCore

/// A store that can say whether it is ready to serve: its database answers and its schema is migrated.
protocol ReadinessReporting: Sendable {
    /// The migration steps the database has not recorded yet; throws when the database cannot be reached.
    func pendingMigrations() async throws -> [Int]
    /// Whether writes are being refused for a full disk (until one succeeds again).
    var isDiskFull: Bool { get }
}

extension SQLDirectoryStore: ReadinessReporting {}

extension InstrumentedStore: ReadinessReporting {
    func pendingMigrations() async throws -> [Int] {
        guard let base = base as? any ReadinessReporting else { return [] }
        return try await base.pendingMigrations()
    }

    var isDiskFull: Bool { (base as? any ReadinessReporting)?.isDiskFull ?? false }
}

/// `GET /readyz`: 200 while the database answers within `timeout` and every migration this build knows is applied;
/// otherwise 503 with `Retry-After` and a Graph error saying why, so a load balancer takes the node out of rotation
/// (and `/healthz`, the process being up, keeps it from being restarted for a database outage).
struct Readiness {
    let store: any DirectoryStore
    let logger: Logger
    /// The node has begun a graceful shutdown: it still serves, but the load balancer should send nothing new.
    var draining = false
    var timeout: Duration = .seconds(2)
    /// Seconds a client or load balancer should wait before asking again.
    static let retryAfter = 5

    func respond(_ request: APIRequest, now: Date) async -> APIResponse {
        guard let reason = await unreadiness() else { return .text("ok") }
        var response = APIResponse.error(DirectoryError(.serviceUnavailable, reason), request: request, now: now)
        response.headers.append(("Retry-After", String(Self.retryAfter)))
        response.headers.append(("Cache-Control", "no-store"))
        return response
    }

    /// Why the node is not ready, or nil when it is.
    func unreadiness() async -> String? {
        if draining { return "Not ready: the node is shutting down." }
        guard let store = store as? any ReadinessReporting else { return nil }
        if store.isDiskFull { return "Not ready: the database's disk is full; writes are refused until space is freed." }
        let pending: [Int]?
        do {
            pending = try await Deadline.within(timeout) { try await store.pendingMigrations() }
        } catch let error as SchemaNewerThanBuild {
            return "Not ready: \(error.description)."
        } catch {
            // The driver's error goes to the operator's log (PostgresNIO's describes nothing secret); the caller gets the gist.
            logger.warning("Not ready: the database could not be reached: \(String(describing: error))")
            return "Not ready: the database cannot be reached."
        }
        guard let pending else {
            logger.warning("Not ready: the database did not answer within \(timeout).")
            return "Not ready: the database did not answer within \(timeout)."
        }
        guard pending.isEmpty else {
            return "Not ready: the database schema is not migrated (steps \(pending.map(String.init).joined(separator: ", ")) are pending)."
        }
        return nil
    }
}
