/// MS-PAC 2.2.2's GROUP_MEMBERSHIP: a group's RID in the domain and its SE_GROUP attributes.
public struct GroupMembership: Hashable, Sendable {
    public let rid: UInt32
    public let attributes: UInt32
}

/// MS-PAC 2.2.1's KERB_SID_AND_ATTRIBUTES: a SID and its SE_GROUP attributes.
public struct SIDAndAttributes: Hashable, Sendable {
    public let sid: SecurityIdentifier
    public let attributes: UInt32
}

/// MS-PAC 2.5's KERB_VALIDATION_INFO (the PAC's logon information), NDR-decoded: who the client is and the groups
/// the KDC put in the ticket.
public struct LogonInfo: Sendable {
    /// The account's sAMAccountName (`WS01$` for a computer).
    public let userName: String
    public let fullName: String
    /// The NetBIOS domain name (`CORP`).
    public let domainName: String
    public let logonServer: String
    /// The domain's SID; the account's is this plus ``userId``.
    public let domainSid: SecurityIdentifier
    /// The account's relative identifier.
    public let userId: UInt32
    /// The RID of the account's primary group (515, Domain Computers, for a computer).
    public let primaryGroupId: UInt32
    /// The RIDs of the domain groups the account is a member of, with their SE_GROUP attributes.
    public let groups: [GroupMembership]
    /// Other SIDs (universal groups of other domains, the asserted-identity SIDs), with their attributes.
    public let extraSids: [SIDAndAttributes]
    /// Resource groups (domain-local groups of a resource domain), if the KDC compressed them here.
    public let resourceGroupDomainSid: SecurityIdentifier?
    public let resourceGroups: [GroupMembership]
    /// MS-PAC's UserAccountControl: the USER_* flags of MS-SAMR 2.2.1.12 (USER_ACCOUNT_DISABLED 0x1,
    /// USER_WORKSTATION_TRUST_ACCOUNT 0x80, …), 0 when the KDC does not set it.
    public let userAccountControl: UInt32
    /// MS-PAC's UserFlags (LOGON_EXTRA_SIDS 0x20, LOGON_RESOURCE_GROUPS 0x200).
    public let userFlags: UInt32

    /// The account's SID (`S-1-5-21-…-RID`), what Entra stores as `onPremisesSecurityIdentifier`.
    public var userSid: SecurityIdentifier { domainSid.appending(userId) }

    /// Every group SID the ticket carries: the primary group, the domain groups, extra SIDs and resource groups.
    public var groupSids: [SecurityIdentifier] {
        var sids = [domainSid.appending(primaryGroupId)]
        sids += groups.map { domainSid.appending($0.rid) }.filter { $0 != sids[0] }
        sids += extraSids.map(\.sid)
        if let resourceGroupDomainSid { sids += resourceGroups.map { resourceGroupDomainSid.appending($0.rid) } }
        return sids
    }

    init(ndr bytes: ArraySlice<UInt8>) throws {
        self = try LittleEndianReader.read(bytes, what: "the PAC's logon info") { try LogonInfo(reading: &$0) }
    }

    private init(reading r: inout LittleEndianReader) throws {
        // MS-RPCE 2.2.6: the type serialization version 1 common header (version 1, little-endian, length 8) and
        // the private header (object length, filler), then the top-level pointer's referent ID.
        guard try r.u8() == 1, try r.u8() == 0x10, try r.u16() == 8 else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the logon info is not NDR type serialization version 1")
        }
        try r.skip(4)
        let objectLength = try r.u32()
        try r.skip(4)
        guard Int(objectLength) <= r.remaining, try r.u32() != 0 else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the logon info's header is inconsistent")
        }

        // The fixed part, in the order of MS-PAC 2.5.
        try r.skip(6 * 8)  // LogonTime, LogoffTime, KickOffTime, PasswordLastSet, PasswordCanChange, PasswordMustChange
        let effectiveNameHeader = try Self.unicodeHeader(&r)
        let fullNameHeader = try Self.unicodeHeader(&r)
        // LogonScript, ProfilePath, HomeDirectory, HomeDirectoryDrive: checked, not kept.
        let unusedHeaders = (try Self.unicodeHeader(&r), try Self.unicodeHeader(&r), try Self.unicodeHeader(&r),
                             try Self.unicodeHeader(&r))
        _ = try r.u16()  // LogonCount
        _ = try r.u16()  // BadPasswordCount
        let userId = try r.ndrU32()
        let primaryGroupId = try r.ndrU32()
        let groupCount = try r.ndrU32()
        let groupPointer = try r.ndrU32()
        let userFlags = try r.ndrU32()
        try r.skip(16)  // UserSessionKey
        let logonServerHeader = try Self.unicodeHeader(&r)
        let domainNameHeader = try Self.unicodeHeader(&r)
        let domainIdPointer = try r.ndrU32()
        try r.skip(8)  // Reserved1
        let userAccountControl = try r.ndrU32()
        try r.skip(4 + 8 + 8 + 4 + 4)  // SubAuthStatus, LastSuccessfulILogon, LastFailedILogon, FailedILogonCount, Reserved3
        let sidCount = try r.ndrU32()
        let extraSidsPointer = try r.ndrU32()
        let resourceDomainPointer = try r.ndrU32()
        let resourceGroupCount = try r.ndrU32()
        let resourceGroupsPointer = try r.ndrU32()

        // The deferred referents, in the order their pointers appeared.
        let userName = try Self.unicodeBody(&r, effectiveNameHeader)
        let fullName = try Self.unicodeBody(&r, fullNameHeader)
        try Self.skipUnicodeBody(&r, unusedHeaders.0)
        try Self.skipUnicodeBody(&r, unusedHeaders.1)
        try Self.skipUnicodeBody(&r, unusedHeaders.2)
        try Self.skipUnicodeBody(&r, unusedHeaders.3)
        let groups = groupPointer == 0 ? [] : try Self.groupArray(&r, count: groupCount)
        let logonServer = try Self.unicodeBody(&r, logonServerHeader)
        let domainName = try Self.unicodeBody(&r, domainNameHeader)
        guard domainIdPointer != 0 else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the logon info has no domain SID")
        }
        let domainSid = try Self.sid(&r)
        var extraSids = [SIDAndAttributes]()
        if extraSidsPointer != 0 {
            // Each entry is 8 bytes: a count the buffer cannot hold is refused before anything is reserved for it.
            guard try r.ndrU32() == sidCount, Int(sidCount) <= r.remaining / 8 else {
                throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the extra SIDs' count is inconsistent")
            }
            let entries = try (0..<sidCount).map { _ in (pointer: try r.ndrU32(), attributes: try r.ndrU32()) }
            for entry in entries where entry.pointer != 0 {
                extraSids.append(SIDAndAttributes(sid: try Self.sid(&r), attributes: entry.attributes))
            }
        }
        let resourceDomain = resourceDomainPointer == 0 ? nil : try Self.sid(&r)
        let resourceGroups = resourceGroupsPointer == 0 ? [] : try Self.groupArray(&r, count: resourceGroupCount)

        self.userName = userName
        self.fullName = fullName
        self.domainName = domainName
        self.logonServer = logonServer
        self.domainSid = domainSid
        self.userId = userId
        self.primaryGroupId = primaryGroupId
        self.groups = groups
        self.extraSids = extraSids
        self.resourceGroupDomainSid = resourceDomain
        self.resourceGroups = resourceGroups
        self.userAccountControl = userAccountControl
        self.userFlags = userFlags
    }

    /// RPC_UNICODE_STRING's inline part: Length and MaximumLength in bytes, and the buffer's pointer.
    private static func unicodeHeader(_ r: inout LittleEndianReader) throws -> (length: UInt16, pointer: UInt32) {
        try r.align(4)
        let length = try r.u16()
        _ = try r.u16()
        return (length, try r.u32())
    }

    /// The conformant varying array of WCHARs the pointer refers to: MaxCount, Offset, ActualCount, characters.
    private static func unicodeBody(_ r: inout LittleEndianReader, _ header: (length: UInt16, pointer: UInt32)) throws
        -> String
    {
        guard let characters = try unicodeBodyLength(&r, header) else { return "" }
        return utf16LittleEndian(try r.read(characters * 2))
    }

    /// The same array, checked and passed over.
    private static func skipUnicodeBody(_ r: inout LittleEndianReader, _ header: (length: UInt16, pointer: UInt32))
        throws
    {
        guard let characters = try unicodeBodyLength(&r, header) else { return }
        try r.skip(characters * 2)
    }

    /// The array's header, checked against the string's: the number of characters that follow, nil for a null pointer.
    private static func unicodeBodyLength(_ r: inout LittleEndianReader, _ header: (length: UInt16, pointer: UInt32))
        throws -> Int?
    {
        guard header.pointer != 0 else { return nil }
        _ = try r.ndrU32()
        let offset = try r.ndrU32()
        let actual = try r.ndrU32()
        guard offset == 0, UInt64(actual) * 2 == UInt64(header.length) else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: a logon info string's length is inconsistent")
        }
        return Int(actual)
    }

    /// UTF-16LE text (its code units: a trailing odd byte is ignored); ASCII, as account and domain names are, is copied straight into the
    /// string's UTF-8 storage.
    static func utf16LittleEndian(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.withUnsafeBytes { utf16LittleEndian($0) }
    }

    static func utf16LittleEndian(_ bytes: UnsafeRawBufferPointer) -> String {
        let count = bytes.count / 2
        var isASCII = true
        var index = bytes.startIndex
        while index + 1 < bytes.endIndex {  // a trailing odd byte is no code unit
            if bytes[index] >= 0x80 || bytes[index + 1] != 0 {
                isASCII = false
                break
            }
            index += 2
        }
        if isASCII {
            return String(unsafeUninitializedCapacity: count) { buffer in
                for unit in 0..<count { buffer[unit] = bytes[bytes.startIndex + 2 * unit] }
                return count
            }
        }
        var units = [UInt16]()
        units.reserveCapacity(count)
        for unit in 0..<count {
            units.append(UInt16(bytes[bytes.startIndex + 2 * unit]) | UInt16(bytes[bytes.startIndex + 2 * unit + 1]) << 8)
        }
        return String(decoding: units, as: UTF16.self)
    }

    private static func groupArray(_ r: inout LittleEndianReader, count: UInt32) throws -> [GroupMembership] {
        guard try r.ndrU32() == count, Int(count) <= r.remaining / 8 else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: a group array's count is inconsistent")
        }
        return try (0..<count).map { _ in GroupMembership(rid: try r.ndrU32(), attributes: try r.ndrU32()) }
    }

    private static func sid(_ r: inout LittleEndianReader) throws -> SecurityIdentifier {
        let count = try r.ndrU32()
        return try SecurityIdentifier(reading: &r, count: count)
    }
}
