import Crypto
import Foundation
import SwiftASN1
import TesseraCore
import X509

/// How a registered device proves it is itself: by its device certificate (and the key it holds, which the caller
/// checks). The certificate counts only while everything that made it count still holds, so deleting the device
/// (`DELETE /devices/{id}`), disabling it (`accountEnabled: false`) or registering it again with a new key (which
/// replaces its `alternativeSecurityIds`) revokes it at once, with no revocation list to publish.
enum DeviceAuthentication {
    /// Why a certificate was refused (the message names the reason; it holds no secret).
    struct Refusal: Error, Equatable {
        enum Reason: Equatable { case invalid, notFound, disabled }
        let reason: Reason
        let message: String
        /// The device a certificate of this tenant's CA named, for the sign-in log (nil when the certificate is not
        /// one: nothing it says can be trusted).
        var device: SignInEvent.DeviceDetail?

        init(_ reason: Reason = .invalid, message: String, device: SignInEvent.DeviceDetail? = nil) {
            self.reason = reason
            self.message = message
            self.device = device
        }

        static func == (lhs: Refusal, rhs: Refusal) -> Bool { lhs.reason == rhs.reason && lhs.message == rhs.message }
    }

    /// The device `certificate` belongs to, when it chains to the tenant's device CA (the current one, or one rotated away
    /// and not yet retired: ``DeviceCertificateAuthority/rotate(tenant:store:sealing:now:)``), is within its validity, and names
    /// (`CN=<deviceId>`) a device that exists, is enabled and lists this certificate among its `alternativeSecurityIds`.
    static func device(presenting certificate: Certificate, tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws
        -> StoredObject
    {
        let issuers = try await DeviceCertificateAuthority.issuers(tenant: tenant, store: store, sealing: sealing)
        guard !issuers.isEmpty else { throw Refusal(message: "No device has registered in this tenant.") }
        guard let issuer = DeviceCertificateAuthority.issuer(of: certificate, among: issuers) else {
            throw Refusal(message: "The certificate was not issued by this tenant's device certificate authority.")
        }
        let deviceID = certificate.subject.lazy.flatMap({ $0 }).first(where: { $0.type == .RDNAttributeType.commonName })
            .flatMap({ String($0.value) }).flatMap { Identifier.isGUID($0) ? $0 : nil }
        // A CA rotated away still vouches for its certificates until it is retired (the devices register again).
        if case .retired(let at) = issuer.state {
            throw Refusal(message: "The device certificate was issued by this tenant's previous device certificate authority, retired on "
                + "\(Timestamp.format(at)): the device must register again for a certificate from the current one.",
                          device: deviceID.map { .init(deviceId: $0) })
        }
        let acceptedUntil: Date? = if case .previous(let until) = issuer.state { until } else { nil }
        guard certificate.notValidBefore <= now, now <= certificate.notValidAfter,
              issuer.certificate.notValidBefore <= now, now <= issuer.certificate.notValidAfter, acceptedUntil.map({ now <= $0 }) ?? true
        else { throw Refusal(message: "The device certificate is outside its validity period.") }
        guard let deviceID else { throw Refusal(message: "The device certificate's subject names no device id.") }

        let device = try await store.read { tx in
            try await tx.query(ObjectQuery(tenant: tenant, kinds: [.device],
                                           filter: .compare(PropertyPath(["deviceId"]), .eq, .string(deviceID)), limit: 1)).first
        }
        guard let device, device.deletedAt == nil else {
            throw Refusal(.notFound, message: "The device \(deviceID) no longer exists.", device: .init(deviceId: deviceID))
        }
        guard device.body["accountEnabled"] == .bool(true) else {
            throw Refusal(.disabled, message: "The device \(deviceID) is disabled.", device: .init(device: device))
        }

        let der = try certificate.derBytes
        let thumbprint = Insecure.SHA1.hash(data: der).map { String(format: "%02X", $0) }.joined()
        let expected = Array((try DeviceRegistration.alternativeSecurityID(certificate, thumbprint: thumbprint))["key"]?.stringValue?.utf8 ?? "".utf8)
        let listed = (device.body["alternativeSecurityIds"]?.arrayValue ?? []).contains { id in
            id["type"]?.intValue == 2 && Secrets.constantTimeEquals(Array((id["key"]?.stringValue ?? "").utf8), expected)
        }
        guard listed else {
            throw Refusal(message: "The device \(deviceID) no longer lists this certificate: it was replaced or revoked.",
                          device: .init(device: device))
        }
        return device
    }
}
