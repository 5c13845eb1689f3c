import Foundation
import Sync
import TesseraCore

/// How a source's batches reach the target tenant: in process, when the target is a tenant of this deployment and the
/// job names no other (`BaseAddress`), or over HTTPS to the target's deployment, presenting the credential that
/// deployment granted the source tenant (`SecretToken`; `tessera sync cross-tenant grant` there makes one).
enum CrossTenantSyncTransport {
    case local(CrossTenantSyncImport, TenantRecord)
    case remote(any OutboundHTTP, URL, token: String)
    /// The job cannot reach its target; each batch is refused with this.
    case unreachable(CrossTenantSyncReport.Failure)

    init(app: TesseraApp, target: String, secrets: [String: String]) async throws {
        if let base = secrets["BaseAddress"], !base.isEmpty {
            guard let url = URL(string: base.hasSuffix("/") ? String(base.dropLast()) : base), url.scheme == "https",
                  let endpoint = URL(string: url.absoluteString + "/\(target)/crossTenantSynchronization/batches") else {
                self = .unreachable(.init(code: "CredentialsMissing", message: "BaseAddress '\(base)' is not an https:// URL."))
                return
            }
            guard let token = secrets["SecretToken"], !token.isEmpty else {
                self = .unreachable(.init(code: "CredentialsMissing",
                                          message: "A target on another deployment needs the SecretToken that deployment granted this tenant."))
                return
            }
            self = .remote(app.outbound, endpoint, token: token)
            return
        }
        guard let record = try await app.tenantRecord(target) else {
            self = .unreachable(.init(code: "CredentialsMissing",
                                      message: "Tenant '\(target)' is not in this deployment: give its deployment's URL as BaseAddress and the credential it granted as SecretToken."))
            return
        }
        self = .local(CrossTenantSyncImport(directory: app.directory, clock: app.clock), record)
    }

    func send(_ batch: CrossTenantSyncBatch) async throws -> CrossTenantSyncReport {
        switch self {
        case .local(let importer, let target):
            return try await importer.apply(batch, target: target)
        case .unreachable(let failure):
            var report = CrossTenantSyncReport()
            report.status = "refused"
            report.refusal = failure
            return report
        case .remote(let http, let url, let token):
            let body = try JSONEncoder().encode(batch)
            let response: OutboundResponse
            do {
                response = try await http.send(OutboundRequest(method: "POST", url: url, headers: [
                    ("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: Array(body)))
            } catch {
                return Self.refused("TargetUnreachable", "The target deployment at \(url.host ?? "?") could not be reached: \(error)")
            }
            guard response.status == 200 else {
                let message = (try? JSONParser.parse(response.body))?["error"]?["message"]?.stringValue ?? "HTTP \(response.status)"
                let code = response.status == 401 || response.status == 403 ? "CredentialsInvalid" : "TargetError"
                return Self.refused(code, "The target deployment refused the batch: \(message)")
            }
            return try JSONDecoder().decode(CrossTenantSyncReport.self, from: Data(response.body))
        }
    }

    static func refused(_ code: String, _ message: String) -> CrossTenantSyncReport {
        var report = CrossTenantSyncReport()
        report.status = "refused"
        report.refusal = .init(code: code, message: message)
        return report
    }
}
