/// A Windows security identifier (MS-DTYP 2.4.2), as `S-1-5-21-…-1104`.
public struct SecurityIdentifier: Hashable, Sendable, CustomStringConvertible {
    public let revision: UInt8
    public let authority: UInt64
    public let subAuthorities: [UInt32]

    public init(revision: UInt8 = 1, authority: UInt64, subAuthorities: [UInt32]) {
        self.revision = revision
        self.authority = authority
        self.subAuthorities = subAuthorities
    }

    /// The binary form (MS-DTYP 2.4.2.2), as LDAP's `objectSid` holds it.
    public init(bytes: some Collection<UInt8>) throws {
        self = try LittleEndianReader.read(Array(bytes)[...], what: "a SID") { reader in
            let sid = try SecurityIdentifier(reading: &reader, count: nil)
            guard reader.remaining == 0 else {
                throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: a SID has trailing bytes")
            }
            return sid
        }
    }

    /// RPC_SID in NDR: the sub-authority count, then revision, count, authority (big-endian) and sub-authorities.
    init(reading reader: inout LittleEndianReader, count expected: UInt32?) throws {
        revision = try reader.u8()
        let count = try reader.u8()
        guard count <= 15, expected.map({ $0 == UInt32(count) }) ?? true else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: a SID's sub-authority count is wrong")
        }
        authority = try reader.read(6).reduce(0) { $0 << 8 | UInt64($1) }
        subAuthorities = try (0..<count).map { _ in try reader.u32() }
    }

    /// The SID of a relative identifier in this domain.
    public func appending(_ rid: UInt32) -> SecurityIdentifier {
        SecurityIdentifier(revision: revision, authority: authority, subAuthorities: subAuthorities + [rid])
    }

    /// The binary form (MS-DTYP 2.4.2.2), as LDAP's `objectSid` holds it and as a filter on it must give it.
    public var bytes: [UInt8] {
        var out: [UInt8] = [revision, UInt8(subAuthorities.count)]
        out += (0..<6).reversed().map { UInt8(truncatingIfNeeded: authority >> (8 * UInt64($0))) }
        for value in subAuthorities { out += (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * UInt32($0))) } }
        return out
    }

    public var description: String {
        "S-\(revision)-\(authority)" + subAuthorities.map { "-\($0)" }.joined()
    }
}
