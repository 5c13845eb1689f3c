import Foundation
import InternetAccess
import SwiftASN1
import TesseraCore
import X509

/// Device certificates as proxy authentication (the proxy's TLS listener): a client that presents the certificate its
/// tenant's device CA issued at registration is that device, and its registered owner (else its registered user) is the
/// user of the connection. The certificate counts exactly as it does for the device's own sign-in
/// (``DeviceAuthentication``): issued by the tenant's device CA, within its validity and the CA's, naming a device that
/// exists, is enabled and still lists this certificate; so deleting the device, disabling it or registering it again
/// with a new key refuses it at the next connection.
extension NetworkAccessGatekeeper {
    /// Who a connection authenticated as, and how.
    struct ProxyCaller: Sendable {
        let tenant: TenantRecord
        /// Nil for a device's own traffic.
        let userID: String?
        let user: StoredObject?
        /// The methods of the token's sign-in (`amr`) and when it was; none for a device certificate alone.
        let amr: [String]
        let authTime: Int64
        let tokenUPN: String?
        /// The token's `deviceid` claim, when a token was presented.
        let tokenDeviceID: String?
        /// The device a certificate proved.
        let device: StoredObject?
    }

    enum Authentication: Sendable {
        case authenticated(ProxyCaller)
        case refused(ProxyAdmission)
    }

    /// A certificate that does not authenticate, with the admission that says why.
    struct DeviceRefusal: Error {
        let admission: ProxyAdmission
    }

    /// The tenant and device a presented certificate (DER) proves, or why it proves none. The tenant is the one whose
    /// device CA issued it (the CA's subject names the tenant, `OU=<tenant id>`); the rest is ``DeviceAuthentication``.
    func presentedDevice(_ der: [UInt8]) async throws -> Result<(tenant: TenantRecord, object: StoredObject), DeviceRefusal> {
        let unknown = DeviceRefusal(admission: .unauthenticated(
            "The client certificate was not issued by a device certificate authority of this deployment."))
        guard let certificate = try? Certificate(derEncoded: der) else { return .failure(unknown) }
        let units = certificate.issuer.lazy.flatMap { $0 }.filter { $0.type == .RDNAttributeType.organizationalUnitName }
        guard let tenantID = units.first.flatMap({ String($0.value) }), Identifier.isGUID(tenantID),
              let tenant = try await app.tenantRecord(tenantID)
        else { return .failure(unknown) }
        do {
            return .success((tenant, try await DeviceAuthentication.device(presenting: certificate, tenant: tenant.id, store: app.store, sealing: app.keySealing,
                                                                            now: app.clock.now)))
        } catch let refusal as DeviceAuthentication.Refusal {
            // A device the tenant's CA named (an expired certificate of its own too) is recorded in the tenant's traffic
            // log; a certificate that is not the CA's names nothing that can be believed.
            var named = refusal.device.map { ProxyDevice(deviceId: $0.deviceId, displayName: $0.displayName, operatingSystem: $0.operatingSystem) }
            if named == nil { named = try await signedDeviceID(certificate, tenant: tenant.id).map { ProxyDevice(deviceId: $0) } }
            guard let device = named, !device.deviceId.isEmpty else {
                return .failure(DeviceRefusal(admission: .unauthenticated(refusal.message)))
            }
            return .failure(DeviceRefusal(admission: .deviceNotAccepted(tenantID: tenant.id, device: device, reason: refusal.message)))
        }
    }

    /// The device id (`CN`) of a certificate a device CA of the tenant signed (the current one, or one rotated away,
    /// retired or not), whatever its validity; nil for any other.
    func signedDeviceID(_ certificate: Certificate, tenant: String) async throws -> String? {
        guard try await DeviceCertificateAuthority.issuer(of: certificate, tenant: tenant, store: app.store, sealing: app.keySealing) != nil
        else { return nil }
        let names = certificate.subject.lazy.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
        return names.first.flatMap { String($0.value) }.flatMap { Identifier.isGUID($0) ? $0.lowercased() : nil }
    }

    /// The user of a connection that presented only a device certificate: the device's registered owner, else its
    /// registered user, who must be enabled; a device with neither (a hybrid joined computer) is its own traffic.
    func deviceUser(_ device: StoredObject, tenant: TenantRecord) async throws -> Authentication {
        let tenantID = tenant.id, deviceObject = device.id
        let candidates = try await app.store.read { tx in
            try await tx.targets(tenant: tenantID, source: deviceObject, relation: "owners").sorted()
                + tx.targets(tenant: tenantID, source: deviceObject, relation: "registeredUsers").sorted()
        }
        let proxyDevice = Self.proxyDevice(device)
        let name = proxyDevice.displayName ?? proxyDevice.deviceId
        guard let userID = candidates.first else {
            return .authenticated(ProxyCaller(tenant: tenant, userID: nil, user: nil, amr: [], authTime: Int64(app.clock.now.timeIntervalSince1970),
                                              tokenUPN: nil, tokenDeviceID: nil, device: device))
        }
        let (user, _, _) = try await app.conditionalAccess.membership(app: app, tenant: tenant, userID: userID)
        guard let user, user.kind == .user, user.deletedAt == nil, user.body["accountEnabled"]?.boolValue != false else {
            return .refused(.deviceNotAccepted(tenantID: tenantID, device: proxyDevice, reason:
                "The registered owner of the device \(name) is disabled or deleted."))
        }
        return .authenticated(ProxyCaller(tenant: tenant, userID: userID, user: user, amr: [],
                                          authTime: Int64(app.clock.now.timeIntervalSince1970), tokenUPN: nil, tokenDeviceID: nil,
                                          device: device))
    }

    /// A registered device as the traffic record names it.
    static func proxyDevice(_ device: StoredObject) -> ProxyDevice {
        ProxyDevice(deviceId: device.body["deviceId"]?.stringValue ?? "", displayName: device.body["displayName"]?.stringValue,
                    operatingSystem: device.body["operatingSystem"]?.stringValue,
                    operatingSystemVersion: device.body["operatingSystemVersion"]?.stringValue)
    }
}
