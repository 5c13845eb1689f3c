import Foundation
import NIOCore
import TesseraCore

/// What the proxy does with the gatekeeper's answer for a tunnel or a plain request: refuse it (the error, its extra
/// header fields and `innerError`; a refusal that names a tenant is recorded there as a `block`), or let it through
/// with its traffic record begun.
enum AdmissionOutcome {
    case refused(ProxyError, headers: [(String, String)], innerError: [String: JSONValue])
    case admitted(TrafficRecord, ProxyUser, FilteringEngine.Verdict)
}

extension ProxyShared {
    /// Where a tunnel or a plain request goes, as its traffic record names it.
    struct Destination {
        var method: String
        var host: String
        var port: Int
        /// The path of a plain request; nil for a tunnel.
        var path: String?
    }

    /// The challenge of a 407.
    static let challenge = ("Proxy-Authenticate", "Bearer realm=\"Tessera\", error=\"invalid_token\"")

    func outcome(_ result: Result<ProxyAdmission, any Error>, _ destination: Destination, client: SocketAddress?) -> AdmissionOutcome {
        switch result {
        case .failure:
            return .refused(ProxyError(.internalError, "The proxy could not decide on this request."), headers: [], innerError: [:])
        case .success(.unauthenticated(let reason)):
            return .refused(ProxyError(.authenticationRequired, reason), headers: [Self.challenge], innerError: [:])
        case .success(.deviceNotAccepted(let tenant, let device, let reason)):
            var record = record(destination, tenant: tenant, user: nil, device: device, verdict: .init(), application: nil, client: client)
            record.action = .block
            recorder?.submit(record)
            return .refused(ProxyError(.authenticationRequired, reason), headers: [Self.challenge], innerError: [:])
        case .success(.refused(let user, let refusal, let application)):
            var record = record(destination, tenant: user.tenantID, user: user, device: user.device, verdict: .init(),
                                application: application, client: client)
            record.action = .block
            recorder?.submit(record)
            return .refused(ProxyError(.conditionalAccess, refusal.message), headers: [],
                            innerError: ["conditionalAccessPolicyId": .string(refusal.conditionalAccessPolicyID),
                                         "destination": .string(destination.host)])
        case .success(.decided(let user, let verdict, let application)):
            var record = record(destination, tenant: user.tenantID, user: user, device: user.device, verdict: verdict,
                                application: application, client: client)
            if let match = verdict.enforced, match.action == .block {
                record.action = .block
                recorder?.submit(record)
                let (error, inner) = ProxyResponse.blockedError(host: destination.host, match: match, application: application)
                return .refused(error, headers: [], innerError: inner)
            }
            return .admitted(record, user, verdict)
        }
    }

    /// A new traffic record for one tunnel or plain request.
    func record(_ destination: Destination, tenant: String, user: ProxyUser?, device: ProxyDevice?, verdict: FilteringEngine.Verdict,
                application: TrafficRecord.Application?, client: SocketAddress?) -> TrafficRecord {
        let now = self.now()
        var record = TrafficRecord(transactionId: nextID(at: now), createdDateTime: now, tenantId: tenant,
                                   destinationFQDN: destination.host, origin: "proxy")
        record.userId = user?.userID
        record.userPrincipalName = user?.userPrincipalName
        record.deviceId = device?.deviceId
        record.deviceOperatingSystem = device?.operatingSystem
        record.deviceOperatingSystemVersion = device?.operatingSystemVersion
        record.sourceIp = client?.ipAddress
        record.sourcePort = client?.port
        record.destinationPort = destination.port
        let port = destination.port == 80 ? "" : ":\(destination.port)"
        record.destinationUrl = destination.path.map { "http://\(destination.host)\(port)\($0)" }
        record.httpMethod = destination.method
        record.application = application
        record.filtering = verdict
        if verdict.enforced?.action == .alert { record.action = .alert }
        return record
    }
}
