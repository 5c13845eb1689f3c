import Logging

/// A background task that failed for one tenant (or, with no tenant, before any tenant was reached). The sweep it
/// belongs to logged it and went on: one tenant's failure never stops the work for the others.
public struct TenantFailure: Sendable, Equatable, CustomStringConvertible {
    /// The tenant, or nil when the tenants could not be listed.
    public let tenant: String?
    /// What was being done, e.g. "daily snapshot".
    public let task: String
    /// The error, as the log shows it.
    public let message: String

    public var description: String { "\(task) of tenant \(tenant ?? "(all)") failed: \(message)" }
}

/// Runs a sweep's steps, each on its own: a step that throws is logged and kept as a ``TenantFailure``, and the
/// next step and the next tenant still run.
struct TenantSweep {
    let logger: Logger
    private(set) var failures: [TenantFailure] = []

    init(logger: Logger) { self.logger = logger }

    /// `body`'s result, or nil when it threw (logged and recorded). With `job` and `telemetry`, its duration and outcome
    /// go to `/metrics` as `tessera_job_duration_seconds{kind=job}`.
    @discardableResult
    mutating func attempt<Result>(_ task: String, tenant: String?, job: String? = nil, telemetry: Telemetry? = nil,
                                  _ body: () async throws -> Result) async -> Result? {
        let start = ContinuousClock.now
        do {
            let result = try await body()
            if let job { telemetry?.job(kind: job, succeeded: true, duration: ContinuousClock.now - start) }
            return result
        } catch {
            if let job { telemetry?.job(kind: job, succeeded: false, duration: ContinuousClock.now - start) }
            let failure = TenantFailure(tenant: tenant, task: task, message: String(describing: error))
            logger.error("\(failure)")
            failures.append(failure)
            return nil
        }
    }
}
