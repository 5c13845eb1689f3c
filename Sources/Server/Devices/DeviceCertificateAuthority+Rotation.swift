import Crypto
public import Foundation
import SwiftASN1
import TenantPKI
public import TesseraCore
import X509

/// Rotating a tenant's device CA as Entra's device certificates live through one: ``rotate(tenant:store:sealing:now:)``
/// makes a new CA (its key sealed as the CA's own is, in the same setting) that every registration uses from then on,
/// and keeps the previous CA's certificate — not its key: it issues nothing more — so the certificates it issued keep
/// authenticating until they expire, or until ``retire(tenant:store:now:thumbprint:)`` refuses them (the devices
/// register again). The previous CAs are kept in the tenant setting `deviceCertificateAuthorityRotation` (certificates
/// only, so it is not sealed): `{"previous": [{"certificate": PEM, "rotatedAt": time, "retiredAt": time?}]}`.
///
/// Nothing is cached: every check of a device certificate (``DeviceAuthentication``, the proxy's, the token endpoint's)
/// reads the CA and this setting in one read, so every node and proxy of a cluster follows a rotation or a retirement
/// at the next connection or sign-in.
///
/// Rotations and retirements are serialised: each takes the tenant's rotation lock (``lockRotation(tenant:in:)``)
/// before it reads, so of two at once — two nodes, two administrators — the second works on what the first wrote and no
/// new CA or retirement is lost. Each writes a directory audit entry (`/auditLogs/directoryAudits`) in its transaction:
/// who, what and when, the CAs by thumbprint (never a key).
extension DeviceCertificateAuthority {
    static let rotationKey = "deviceCertificateAuthorityRotation"
    /// The kind of the audit entries of rotations and retirements (the target is a CA, not a directory object).
    static let auditKind = ObjectKind(rawValue: "deviceCertificateAuthority")

    /// A CA the tenant's device certificates may chain to, and how far it still counts.
    struct Issuer: Sendable {
        enum State: Sendable, Equatable {
            /// The CA registrations use now.
            case current
            /// Replaced: its certificates count until `acceptedUntil` (when the last it could have issued expires).
            case previous(acceptedUntil: Date)
            /// Retired at the date: its certificates are refused.
            case retired(Date)
        }
        let certificate: Certificate
        /// When it was replaced; nil for the current CA.
        let rotatedAt: Date?
        let retiredAt: Date?

        var state: State {
            guard let rotatedAt else { return .current }
            if let retiredAt { return .retired(retiredAt) }
            return .previous(acceptedUntil: Self.acceptedUntil(certificate, rotatedAt: rotatedAt))
        }

        /// When the last certificate a CA replaced at `rotatedAt` issued expires: it issued none after its rotation
        /// (give or take a registration that loaded it just before), none for longer than a device certificate's
        /// lifetime, and none outliving itself.
        static func acceptedUntil(_ certificate: Certificate, rotatedAt: Date) -> Date {
            min(rotatedAt.addingTimeInterval(DeviceCertificateAuthority.deviceCertificateLifetime + 300), certificate.notValidAfter)
        }

        /// The CA certificate's SHA-1 thumbprint (upper-case hex), as administrators name it.
        var thumbprint: String {
            get throws { Insecure.SHA1.hash(data: try certificate.derBytes).map { String(format: "%02X", $0) }.joined() }
        }
    }

    /// Every CA of the tenant a device certificate may chain to: the current one first, then the previous ones, newest
    /// first. Empty until the first device registers.
    static func issuers(tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> [Issuer] {
        let setting = kind.setting(tenant: tenant)
        let (current, rotation) = try await store.read { tx in
            (try await tx.setting(tenant: tenant, key: setting.key), try await tx.setting(tenant: tenant, key: rotationKey))
        }
        guard let current, current != .null else { return [] }
        // Only the certificate is needed; a sealed CA is opened (and so checked against the key-encryption key) as before.
        var issuers = [Issuer(certificate: try TenantCertificateAuthority(stored: try sealing.open(current, setting)).certificate, rotatedAt: nil, retiredAt: nil)]
        for entry in (rotation?["previous"]?.arrayValue ?? []).reversed() { issuers.append(try Issuer(entry)) }
        return issuers
    }

    /// The tenant's CA that signed `certificate` (its issuer name and signature), nil when none did.
    static func issuer(of certificate: Certificate, tenant: String, store: any DirectoryStore, sealing: KeySealing) async throws -> Issuer? {
        issuer(of: certificate, among: try await issuers(tenant: tenant, store: store, sealing: sealing))
    }

    /// Which of `issuers` signed `certificate`, nil when none did.
    static func issuer(of certificate: Certificate, among issuers: [Issuer]) -> Issuer? {
        let candidates = issuers.filter { $0.certificate.subject == certificate.issuer }
        // Every CA of the tenant has the same name: the certificate's authority key identifier says which to try first.
        let named = certificate.issuerKeyIdentifier
        let ordered = candidates.filter { $0.subjectKeyIdentifier == named && named != nil } + candidates.filter { $0.subjectKeyIdentifier != named || named == nil }
        return ordered.first { $0.certificate.publicKey.isValidSignature(certificate.signature, for: certificate) }
    }

    /// Why a rotation or retirement was refused.
    struct RotationError: Error, Sendable, CustomStringConvertible {
        let description: String
    }

    /// Makes the tenant's new device CA, which issues every certificate from now on; the CA it replaces stays accepted
    /// for the certificates it issued. Refused when no device has registered (there is no CA to rotate). Audited as
    /// `actor`'s.
    static func rotate(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date, actor: Actor = .system) async throws -> [Issuer] {
        let next = try TenantCertificateAuthority.make(subject: try kind.subject(tenant), lifetime: kind.lifetime, now: now)
        let value = try next.stored
        let setting = kind.setting(tenant: tenant)
        let nextThumbprint = try Issuer(certificate: next.certificate, rotatedAt: nil, retiredAt: nil).thumbprint
        try await store.write { tx in
            try await lockRotation(tenant: tenant, in: tx)
            guard let stored = try await sealing.read(setting, in: tx) else {
                throw RotationError(description: "no device has registered in this tenant: it has no device certificate authority to rotate")
            }
            let replaced = try TenantCertificateAuthority(stored: stored)
            var previous = Self.unexpired(try await tx.setting(tenant: tenant, key: rotationKey), now: now)
            previous.append(["certificate": .string(try replaced.certificate.serializeAsPEM().pemString), "rotatedAt": .string(Timestamp.format(now))])
            try await sealing.write(value, setting, in: tx)
            try await tx.putSetting(tenant: tenant, key: rotationKey, value: ["previous": .array(previous)])
            let oldThumbprint = try Issuer(certificate: replaced.certificate, rotatedAt: now, retiredAt: nil).thumbprint
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: nextThumbprint, kind: auditKind, operation: "update", activity: "Rotate device certificate authority",
                actor: actor.initiatedBy, at: Timestamp.format(now),
                details: ["displayName": "Device certificate authority",
                          "modifiedProperties": [["displayName": "thumbprint", "oldValue": .string("\"\(oldThumbprint)\""),
                                                  "newValue": .string("\"\(nextThumbprint)\"")]],
                          "additionalDetails": [["key": "previousAcceptedUntil",
                                                 "value": .string(Timestamp.format(Issuer.acceptedUntil(replaced.certificate, rotatedAt: now)))]]]))
        }
        return try await issuers(tenant: tenant, store: store, sealing: sealing)
    }

    /// Retires the tenant's previous device CAs (the one whose thumbprint is given, else every one not yet retired):
    /// the certificates they issued are refused from now on, and those devices must register again. Each retired CA is
    /// audited as `actor`'s.
    static func retire(tenant: String, store: any DirectoryStore, now: Date, thumbprint: String?, actor: Actor = .system) async throws -> [Issuer] {
        try await store.write { tx -> [Issuer] in
            try await lockRotation(tenant: tenant, in: tx)
            var previous = Self.unexpired(try await tx.setting(tenant: tenant, key: rotationKey), now: now)
            var retired: [Issuer] = []
            for index in previous.indices {
                let issuer = try Issuer(previous[index])
                guard case .previous = issuer.state else { continue }
                if let thumbprint, try issuer.thumbprint != thumbprint.uppercased().replacingOccurrences(of: ":", with: "") { continue }
                previous[index]["retiredAt"] = .string(Timestamp.format(now))
                retired.append(issuer)
            }
            guard !retired.isEmpty else {
                throw RotationError(description: thumbprint.map { "no previous device certificate authority of this tenant has the thumbprint \($0) and is still accepted" }
                    ?? "this tenant has no previous device certificate authority still accepted: there is nothing to retire")
            }
            try await tx.putSetting(tenant: tenant, key: rotationKey, value: ["previous": .array(previous)])
            try await tx.record(try retired.map { issuer in
                ChangeRecord(
                    tenant: tenant, objectId: try issuer.thumbprint, kind: auditKind, operation: "update", activity: "Retire device certificate authority",
                    actor: actor.initiatedBy, at: Timestamp.format(now),
                    details: ["displayName": "Device certificate authority",
                              "modifiedProperties": [["displayName": "retiredAt", "oldValue": nil, "newValue": .string("\"\(Timestamp.format(now))\"")]],
                              "additionalDetails": [["key": "rotatedAt", "value": .optional(issuer.rotatedAt.map(Timestamp.format))]]])
            })
            return try previous.reversed().map(Issuer.init)
        }
    }

    /// Takes the tenant's rotation lock in `tx`, first in every rotation and retirement: the row of the tenant's device
    /// CA setting, locked until `tx` ends (``DirectoryWriter/lockedSetting(tenant:key:)``; the CA exists whenever there
    /// is anything to rotate or retire), so a second rotation or retirement waits there for the first to commit and then
    /// reads what it wrote. The CA's sealing at start (``KeySealing``) locks the same row.
    private static func lockRotation(tenant: String, in tx: any DirectoryTransaction) async throws {
        _ = try await tx.lockedSetting(tenant: tenant, key: kind.setting(tenant: tenant).key)
    }

    /// The stored previous CAs, without those whose every certificate has expired by `now` (nothing of theirs counts,
    /// retired or not).
    private static func unexpired(_ rotation: JSONValue?, now: Date) -> [JSONValue] {
        (rotation?["previous"]?.arrayValue ?? []).filter { entry in
            guard let issuer = try? Issuer(entry), let rotatedAt = issuer.rotatedAt else { return false }
            return Issuer.acceptedUntil(issuer.certificate, rotatedAt: rotatedAt) > now
        }
    }
}

extension DeviceCertificateAuthority.Issuer {
    /// A previous CA as the rotation setting keeps it.
    init(_ entry: JSONValue) throws {
        guard let pem = entry["certificate"]?.stringValue, let rotatedAt = entry["rotatedAt"]?.stringValue.flatMap(Timestamp.parse) else {
            throw DeviceCertificateAuthority.RotationError(description: "a previous device certificate authority is stored without its certificate or rotation time")
        }
        self.init(certificate: try Certificate(pemEncoded: pem), rotatedAt: rotatedAt,
                  retiredAt: entry["retiredAt"]?.stringValue.flatMap(Timestamp.parse))
    }

    /// The CA key's identifier, as the certificates it issued name it.
    var subjectKeyIdentifier: ArraySlice<UInt8>? {
        (try? certificate.extensions.subjectKeyIdentifier)??.keyIdentifier
    }

    /// The issuer as `tessera device ca status` prints it.
    var summary: DeviceCertificateAuthorities.Summary {
        get throws {
            let (role, until): (String, Date?) = switch state {
            case .current: ("current", nil)
            case .previous(let until): ("previous", until)
            case .retired: ("retired", nil)
            }
            return .init(role: role, thumbprint: try thumbprint, notValidAfter: certificate.notValidAfter, rotatedAt: rotatedAt,
                         acceptedUntil: until, retiredAt: retiredAt)
        }
    }
}

extension Certificate {
    /// The authority key identifier's key identifier, nil when it has none.
    var issuerKeyIdentifier: ArraySlice<UInt8>? {
        (try? extensions.authorityKeyIdentifier)??.keyIdentifier
    }
}

/// `tessera device ca rotate|retire|status`: a tenant's device certificate authorities, for the command line.
public enum DeviceCertificateAuthorities {
    /// One CA as the commands print it (never its key).
    public struct Summary: Sendable {
        /// `current`, `previous` (its certificates still accepted) or `retired`.
        public let role: String
        public let thumbprint: String
        public let notValidAfter: Date
        public let rotatedAt: Date?
        /// Until when a previous CA's certificates are accepted at the latest (the last it issued expires then).
        public let acceptedUntil: Date?
        public let retiredAt: Date?
    }

    /// Why a command was refused: the message says what to do.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Rotates the tenant's device CA: registrations get certificates from a new CA at once, and those of the CA it
    /// replaces keep working until they expire or it is retired. Returns every CA, current first.
    /// Audited (`/auditLogs/directoryAudits`) as `actor`'s.
    public static func rotate(tenant: String, store: any DirectoryStore, keyEncryption: KeyEncryptionKey?, now: Date, actor: Actor) async throws -> [Summary] {
        try await refusing {
            try await DeviceCertificateAuthority.rotate(tenant: tenant, store: store, sealing: KeySealing(keyEncryption: keyEncryption), now: now, actor: actor)
                .map { try $0.summary }
        }
    }

    /// Retires the tenant's previous device CAs (or the one with `thumbprint`): their certificates are refused from now
    /// on. Returns the previous CAs. Audited as `actor`'s.
    public static func retire(tenant: String, store: any DirectoryStore, now: Date, thumbprint: String?, actor: Actor) async throws -> [Summary] {
        try await refusing {
            try await DeviceCertificateAuthority.retire(tenant: tenant, store: store, now: now, thumbprint: thumbprint, actor: actor).map { try $0.summary }
        }
    }

    /// The tenant's device CAs, current first (none until a device registers).
    public static func list(tenant: String, store: any DirectoryStore, keyEncryption: KeyEncryptionKey?) async throws -> [Summary] {
        try await DeviceCertificateAuthority.issuers(tenant: tenant, store: store, sealing: KeySealing(keyEncryption: keyEncryption)).map { try $0.summary }
    }

    private static func refusing<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as DeviceCertificateAuthority.RotationError { throw Refusal(description: error.description) }
    }
}
