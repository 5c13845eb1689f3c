import Crypto

/// MS-PAC's Privilege Attribute Certificate, as the KDC puts it in a service ticket's authorization data: the
/// logon information, the client information, and the server and KDC signatures.
public struct PAC: Sendable {
    /// MS-PAC 2.4's ulType values this library reads.
    enum BufferType: UInt32 {
        case logonInfo = 1, serverChecksum = 6, kdcChecksum = 7, clientInfo = 10
    }

    /// A PAC_SIGNATURE_DATA (MS-PAC 2.8): its checksum type and signature.
    public struct Signature: Sendable {
        public let type: Int32
        public let signature: [UInt8]
        /// Where the signature bytes are in the PAC, to zero them for verification.
        let range: Range<Int>
    }

    /// The logon information (KERB_VALIDATION_INFO).
    public let logonInfo: LogonInfo
    /// PAC_CLIENT_INFO's name, which must be the ticket's client name.
    public let clientName: String
    /// PAC_CLIENT_INFO's ClientId, in seconds since 1970, which must be the ticket's authtime.
    public let clientTime: Int64
    /// The server signature, verified with the service's key.
    public let serverSignature: Signature
    /// The KDC signature: parsed, not verified (only the KDC holds the krbtgt key).
    public let kdcSignature: Signature
    /// The ulType of every buffer, in order.
    public let bufferTypes: [UInt32]

    /// MS-PAC 2.3's PACTYPE: cBuffers, Version 0, then PAC_INFO_BUFFERs (ulType, cbBufferSize, Offset). Read in
    /// place: `bytes` is the slice of the decrypted ticket that holds it, kept for the server checksum.
    init(bytes: ArraySlice<UInt8>) throws {
        let pac = bytes
        let buffers = try LittleEndianReader.read(pac, what: "the PAC") { r in
            let count = try r.u32()
            guard try r.u32() == 0, count >= 1, count <= 64 else {
                throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC's header is not version 0")
            }
            var buffers = [(type: UInt32, data: Range<Int>)]()
            buffers.reserveCapacity(Int(count))
            for _ in 0..<count {
                let type = try r.u32()
                let size = Int(try r.u32())
                let offset = try r.u64()
                guard offset <= UInt64(pac.count), UInt64(size) <= UInt64(pac.count) - offset else {
                    throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: a PAC buffer lies outside the PAC")
                }
                buffers.append((type, Int(offset)..<(Int(offset) + size)))
            }
            return buffers
        }
        /// The one buffer of `type`, as offsets from the PAC's start.
        func only(_ type: BufferType) throws -> Range<Int> {
            var found: Range<Int>?
            var count = 0
            for buffer in buffers where buffer.type == type.rawValue {
                found = buffer.data
                count += 1
            }
            guard count == 1, let found else {
                throw KerberosError(
                    .pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC has \(count) buffers of type \(type.rawValue), not one")
            }
            return found
        }
        func buffer(_ type: BufferType) throws -> ArraySlice<UInt8> {
            let range = try only(type)
            return pac[(pac.startIndex + range.lowerBound)..<(pac.startIndex + range.upperBound)]
        }
        bufferTypes = buffers.map(\.type)
        logonInfo = try LogonInfo(ndr: try buffer(.logonInfo))
        (clientName, clientTime) = try Self.clientInfo(try buffer(.clientInfo))
        serverSignature = try Self.signature(try buffer(.serverChecksum), at: try only(.serverChecksum).lowerBound)
        kdcSignature = try Self.signature(try buffer(.kdcChecksum), at: try only(.kdcChecksum).lowerBound)
        self.bytes = pac
    }

    private let bytes: ArraySlice<UInt8>

    /// MS-PAC 2.8.1: the server signature is the keyed checksum, with the service key and key usage 17
    /// (KERB_NON_KERB_CKSUM_SALT), of the whole PAC with the server and KDC signatures zeroed: hashed in place, zeros
    /// fed for the two signatures.
    func verifyServerSignature(with key: ServiceKeys.PreparedKey) throws {
        let profile = key.profile
        let type = ChecksumType(rawValue: serverSignature.type)
        guard try type.profile().type == profile.type else {
            throw KerberosError(
                .pacInvalid,
                "KRB_AP_ERR_MODIFIED: the PAC's server checksum type \(serverSignature.type) does not match the "
                    + "service key's \(key.key.encryptionType)")
        }
        var mac = key.pacChecksum
        var at = 0
        /// The bytes up to `signature`, then zeros for it.
        func hash(through signature: Range<Int>) throws {
            // Two signatures that overlap are not a PAC any KDC makes.
            guard signature.lowerBound >= at else {
                throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC's signatures overlap")
            }
            mac.update(bytes[(bytes.startIndex + at)..<(bytes.startIndex + signature.lowerBound)])
            mac.update(Self.zeros[..<signature.count])
            at = signature.upperBound
        }
        let (server, kdc) = (serverSignature.range, kdcSignature.range)
        try hash(through: server.lowerBound < kdc.lowerBound ? server : kdc)
        try hash(through: server.lowerBound < kdc.lowerBound ? kdc : server)
        mac.update(bytes[(bytes.startIndex + at)...])
        guard serverSignature.signature.count == profile.macLength, mac.verify(truncatedTo: serverSignature.signature)
        else {
            throw KerberosError(
                .pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC's server checksum does not verify with the service key")
        }
    }

    /// What the signatures are hashed as (the longest is 24 bytes).
    private static let zeros = [UInt8](repeating: 0, count: 24)

    /// A PAC_SIGNATURE_DATA at `offset` in the PAC: its type and signature, and where the signature lies.
    private static func signature(_ buffer: ArraySlice<UInt8>, at offset: Int) throws -> Signature {
        try LittleEndianReader.read(buffer, what: "a PAC signature") { try signature(&$0, at: offset) }
    }

    private static func signature(_ r: inout LittleEndianReader, at offset: Int) throws -> Signature {
        let type = Int32(bitPattern: try r.u32())
        let length: Int
        switch type {
        case 15, 16: length = 12
        case 19, -138: length = 16
        case 20: length = 24
        default:
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC signature type \(type) is unknown")
        }
        let start = offset + 4
        let signature = Array(try r.read(length))
        return Signature(type: type, signature: signature, range: start..<(start + length))
    }

    /// MS-PAC 2.7's PAC_CLIENT_INFO: ClientId (a FILETIME), NameLength in bytes, Name in UTF-16LE.
    private static func clientInfo(_ bytes: ArraySlice<UInt8>) throws -> (String, Int64) {
        try LittleEndianReader.read(bytes, what: "the PAC's client info") { try clientInfo(&$0) }
    }

    private static func clientInfo(_ r: inout LittleEndianReader) throws -> (String, Int64) {
        let fileTime = try r.u64()
        let length = Int(try r.u16())
        guard length % 2 == 0 else { throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the client info's name is odd") }
        let name = LogonInfo.utf16LittleEndian(try r.read(length))
        // FILETIME counts 100 ns intervals since 1601-01-01.
        let seconds = Int64(fileTime / 10_000_000) - 11_644_473_600
        return (name, seconds)
    }
}
