import Crypto
import SwiftASN1
public import Foundation
import TenantPKI
public import TesseraCore
public import X509

/// Rotating a tenant's inspection CA without breaking clients: ``rotate(tenant:store:sealing:now:overlap:)`` makes a new CA
/// that is published at once (clients are told to trust it beside the old one) but signs leaves only from the end of
/// the overlap; then it becomes the CA, and the old one stays published until the last leaf it signed has expired.
/// Kept in the tenant setting `tlsInspectionCertificateAuthorityRotation` beside the CA's own, sealed as it is (the
/// next CA's key is in it).
///
/// A rotation and the carrying out of one first lock the CA's own setting (``lockRotation(tenant:in:)``), so of two at
/// once on two nodes the second reads what the first wrote: a second rotation is refused as pending instead of replacing
/// the first one's next CA, which clients may already have been given.
extension InspectionCertificateAuthority {
    static let rotationKey = "tlsInspectionCertificateAuthorityRotation"

    static func rotationSetting(tenant: String) -> SealedSetting { SealedSetting(tenant: tenant, key: rotationKey) }

    /// The CA that signs leaves now, and every CA clients must trust now (the signing one first).
    public struct Authorities: Sendable {
        public let signing: InspectionCertificateAuthority
        public let published: [Certificate]
        /// When a pending rotation's CA starts signing, if one is pending.
        public let nextActiveFrom: Date?

        /// The published CAs as one PEM bundle, for clients' trust stores.
        public var pem: String {
            get throws { try published.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") }
        }
    }

    /// Why a rotation was refused.
    public struct RotationError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Makes the tenant's next inspection CA, published now and signing from `now + overlap` (at least a day, so
    /// clients can be told first); refused while another rotation is pending.
    @discardableResult
    public static func rotate(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date, overlap: TimeInterval) async throws
        -> Authorities
    {
        guard overlap >= 86_400 else { throw RotationError(description: "the overlap must be at least a day, for clients to be told") }
        _ = try await loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: now)
        let stamp = Timestamp.format(now)
        let next = try TenantCertificateAuthority.make(subject: try DistinguishedName {
            CommonName("Tessera TLS Inspection CA \(stamp)")
            OrganizationalUnitName(tenant)
        }, lifetime: kind.lifetime, now: now)
        let value = try next.stored
        let setting = rotationSetting(tenant: tenant)
        try await store.write { tx in
            try await lockRotation(tenant: tenant, in: tx)
            var rotation = try await sealing.read(setting, in: tx)?.objectValue ?? [:]
            if rotation["next"] != nil, let from = rotation["activeFrom"]?.stringValue {
                throw RotationError(description: "a rotation is pending: its CA signs from \(from)")
            }
            rotation["next"] = value
            rotation["activeFrom"] = .string(Timestamp.format(now.addingTimeInterval(overlap)))
            try await sealing.write(.object(rotation), setting, in: tx)
        }
        return try await current(tenant: tenant, store: store, sealing: sealing, now: now)
    }

    /// Locks the tenant's inspection CA setting to the end of `tx`, first in every change of the rotation setting: the CA
    /// exists by then (made on first use) where the rotation setting may not yet, and a row there is none of cannot be
    /// locked (``DirectoryWriter/lockedSetting(tenant:key:)``).
    private static func lockRotation(tenant: String, in tx: any DirectoryWriter) async throws {
        _ = try await tx.lockedSetting(tenant: tenant, key: kind.setting(tenant: tenant).key)
    }

    /// The signing and published CAs as of `now`, made on first use; a rotation whose overlap has ended is carried out
    /// here (once: the first caller's transaction moves it, the others read the result).
    public static func current(tenant: String, store: any DirectoryStore, sealing: KeySealing, now: Date) async throws -> Authorities {
        let signing = try await loadOrCreate(tenant: tenant, store: store, sealing: sealing, now: now)
        let setting = rotationSetting(tenant: tenant)
        let rotation = try await sealing.load(setting, store: store)
        if let next = rotation?["next"], let from = rotation?["activeFrom"]?.stringValue.flatMap(Timestamp.parse), now >= from {
            try await store.write { tx in
                // Another node may have moved it already.
                try await lockRotation(tenant: tenant, in: tx)
                guard let still = try await sealing.read(setting, in: tx), still["next"] == next else { return }
                try await sealing.write(next, kind.setting(tenant: tenant), in: tx)
                try await sealing.write([
                    "previous": .string(try signing.certificate.serializeAsPEM().pemString),
                    "previousUntil": .string(Timestamp.format(from.addingTimeInterval(leafLifetime))),
                ], setting, in: tx)
            }
            return try await current(tenant: tenant, store: store, sealing: sealing, now: now)
        }
        var published = [signing.certificate]
        var nextActiveFrom: Date?
        if let next = rotation?["next"], let from = rotation?["activeFrom"]?.stringValue.flatMap(Timestamp.parse) {
            published.append(try TenantCertificateAuthority(stored: next).certificate)
            nextActiveFrom = from
        }
        if let pem = rotation?["previous"]?.stringValue, let until = rotation?["previousUntil"]?.stringValue.flatMap(Timestamp.parse), now < until {
            published.append(try Certificate(pemEncoded: pem))
        }
        return Authorities(signing: signing, published: published, nextActiveFrom: nextActiveFrom)
    }
}
