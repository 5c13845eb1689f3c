import Crypto
import Foundation

/// Tenant restrictions v2's signal, as Microsoft defines it for corporate proxies and managed devices:
///
///     sec-Restrict-Tenant-Access-Policy: <restricting tenant id>:<policy id>
///
/// where the policy id is the `id` of the restricting tenant's `/policies/crossTenantAccessPolicy/default`. The
/// identity platform enforces that tenant's `tenantRestrictions` on a request that carries it; a forward proxy adds it
/// to the requests it sends to the identity platform (``value``). Only tenant ids and policy ids are in it: nothing
/// secret.
public struct TenantRestrictionHeader: Sendable, Hashable, CustomStringConvertible {
    /// The header's name (HTTP header names are case-insensitive).
    public static let name = "sec-Restrict-Tenant-Access-Policy"

    /// The tenant whose tenant restrictions apply (lowercase).
    public let restrictingTenantID: String
    /// The restricting tenant's policy id (lowercase).
    public let policyID: String

    /// The header for `tenantID`'s own policy.
    public init(restrictingTenantID tenantID: String) {
        self.restrictingTenantID = tenantID.lowercased()
        self.policyID = Self.policyID(tenant: tenantID)
    }

    /// Why a header value is not one.
    public struct Malformed: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
    }

    /// Reads a header value: two GUIDs separated by a colon, surrounding spaces ignored.
    public init(parsing value: String) throws(Malformed) {
        let parts = value.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            throw Malformed(description: "The \(Self.name) header must be '<tenant id>:<policy id>'.")
        }
        let tenant = String(parts[0]), policy = String(parts[1])
        guard Identifier.isGUID(tenant) else {
            throw Malformed(description: "The \(Self.name) header's tenant id is not a GUID.")
        }
        guard Identifier.isGUID(policy) else {
            throw Malformed(description: "The \(Self.name) header's policy id is not a GUID.")
        }
        restrictingTenantID = tenant.lowercased()
        policyID = policy.lowercased()
    }

    /// The header's value.
    public var value: String { "\(restrictingTenantID):\(policyID)" }
    public var description: String { "\(Self.name): \(value)" }

    /// Whether `policyID` is the restricting tenant's policy.
    public var namesItsTenantsPolicy: Bool { policyID == Self.policyID(tenant: restrictingTenantID) }

    /// A tenant's cross-tenant access policy id: a name-based GUID (RFC 9562 version 5 layout over SHA-256 of the
    /// tenant id), the same on every node and for the tenant's whole life, so a header configured once stays right.
    public static func policyID(tenant: String) -> String {
        var bytes = Array(SHA256.hash(data: Array("tessera-cross-tenant-access-policy:\(tenant.lowercased())".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let characters = Array(bytes.map { String(format: "%02x", $0) }.joined())
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }
}
