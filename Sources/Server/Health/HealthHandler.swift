import Foundation
import TesseraCore

/// `/beta/connectHealth`: Tessera's API for Connect Health (Microsoft publishes no Graph API for it; the alerts take
/// the shape of Connect Health's own). Global and Hybrid Identity Administrators register and remove agents; they,
/// Global Readers and Security Readers read.
///
/// - `POST /beta/connectHealth/agents` `{"role": "sync"|"adds", "machineName", "agentVersion", "certificateSigningRequest"}`
///   → 201 with the agent, its client `certificate`, the `caCertificate` and the `uploadUrl` of the health listener
/// - `GET /beta/connectHealth/agents`, `GET /beta/connectHealth/agents/{id}`, `DELETE /beta/connectHealth/agents/{id}`
/// - `GET /beta/connectHealth/alerts[?state=active]`: every agent's alerts, active first, newest first
struct HealthHandler {
    let api: GraphAPI
    let context: RequestContext
    var app: TesseraApp { api.app }
    var health: HealthService { HealthService(directory: app.directory, clock: app.clock) }

    func handle(_ path: [String]) async throws -> APIResponse {
        let method = context.request.method
        let caller = context.caller
        do {
            switch (path.first, path.count, method) {
            case ("agents", 1, "GET"):
                try await health.require(caller, oneOf: HealthService.readers, to: "read health agents")
                let now = app.clock.now
                let agents = try await health.agents(tenant: caller.tenant).map { $0.json(now: now) }
                return .json(["@odata.context": .string("\(context.base)/$metadata#connectHealth/agents"), "value": .array(agents)])
            case ("agents", 1, "POST"):
                let body: JSONValue
                do { body = try JSONParser.parse(context.request.body) } catch { throw DirectoryError.badRequest("The body is not valid JSON.") }
                var agent = try await health.register(body, as: caller, uploadURL: try await health.uploadURL(), sealing: app.keySealing)
                agent["@odata.context"] = .string("\(context.base)/$metadata#connectHealth/agents/$entity")
                return .json(agent, status: 201)
            case ("agents", 2, "GET"):
                try await health.require(caller, oneOf: HealthService.readers, to: "read health agents")
                guard let agent = try await health.agent(tenant: caller.tenant, id: path[1]) else { throw DirectoryError.notFound(path[1]) }
                return .json(agent.rendered(now: app.clock.now))
            case ("agents", 2, "DELETE"):
                try await health.unregister(path[1], as: caller)
                return .noContent
            case ("alerts", 1, "GET"):
                try await health.require(caller, oneOf: HealthService.readers, to: "read health alerts")
                let state = context.request.query.first { $0.name == "state" }?.value
                guard state == nil || state == "active" || state == "all" else {
                    throw DirectoryError.badRequest("state must be 'active' or 'all'.")
                }
                let alerts = try await health.alerts(tenant: caller.tenant, activeOnly: state == "active")
                return .json(["@odata.context": .string("\(context.base)/$metadata#connectHealth/alerts"), "value": .array(alerts)])
            case ("agents", 1...2, _), ("alerts", 1, _):
                throw DirectoryError(.methodNotAllowed, "\(method) is not supported here.")
            default:
                throw DirectoryError(.badRequest, "Resource not found for the segment '\(path.last ?? "connectHealth")'.")
            }
        } catch let error as HealthError {
            return APIResponse.json(error.body, status: error.status)
        }
    }
}
