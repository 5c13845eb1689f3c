/// The cryptography one validation of a token cannot skip, and nothing else, for `tessera bench kerberos` to set a
/// validation against: the ticket's decryption and integrity check with the service key, the authenticator's with the
/// session key (its usage-11 keys derived first), the PAC's server checksum (the HMAC over the PAC with its
/// signatures zeroed, compared), and the AP-REP's sealing (its usage-12 keys derived, a random confounder, AES-CTS and
/// the HMAC). Each part runs on the bytes of the token it was prepared from, with the primitives a validation uses.
/// The token is parsed and opened once, here, so parsing, the PAC's decoding, the replay cache and DER writing are
/// left out: what a validation spends beyond this is overhead.
public struct UnskippableCryptography: Sendable {
    /// The parts, each timed on its own.
    public enum Part: String, CaseIterable, Sendable {
        case ticket = "ticket decrypt and verify"
        case authenticator = "authenticator keys, decrypt and verify"
        case pacChecksum = "PAC server checksum"
        case reply = "AP-REP keys, encrypt and MAC"
    }

    private let ticketCipher: ArraySlice<UInt8>
    private let serviceKey: ServiceKeys.PreparedKey
    private let authenticatorCipher: ArraySlice<UInt8>
    private let sessionKey: SessionKey
    /// The PAC as its server checksum covers it: both signatures zeroed.
    private let zeroedPAC: [UInt8]
    private let pacSignature: [UInt8]
    /// The EncAPRepPart a validation of this token encrypts.
    private let replyPart: [UInt8]
    private static let randomPool = RandomPool()

    /// Opens `token` with `keys` once to find what each part works on.
    public init(token: some Collection<UInt8>, keys: ServiceKeys) throws {
        let request = try APRequest(token: token)
        let encrypted = request.ticket.encryptedPart
        guard let key = try keys.candidates(type: encrypted.encryptionType, version: encrypted.keyVersion).first else {
            throw KerberosError.malformed("no key for the ticket")
        }
        let ticketPart = try EncTicketPart(derEncoded: key.profile.decrypt(encrypted.cipher, keys: key.ticket))
        let authenticator = try Authenticator(
            derEncoded: ticketPart.sessionKey.decrypt(request.authenticator.cipher, usage: Authenticator.keyUsage))
        guard let pacBytes = try AuthorizationElement.pac(in: ticketPart.authorizationData) else {
            throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the ticket carries no PAC (AD-WIN2K-PAC)")
        }
        let pac = try PAC(bytes: pacBytes)
        var zeroed = Array(pacBytes)
        for range in [pac.serverSignature.range, pac.kdcSignature.range] {
            zeroed.replaceSubrange(range, with: repeatElement(0, count: range.count))
        }
        ticketCipher = encrypted.cipher
        serviceKey = key
        authenticatorCipher = request.authenticator.cipher
        sessionKey = ticketPart.sessionKey
        zeroedPAC = zeroed
        pacSignature = pac.serverSignature.signature
        replyPart = APReply.encryptedPart(
            authenticatorTime: authenticator.time, microseconds: authenticator.microseconds,
            sequenceNumber: authenticator.sequenceNumber)
    }

    /// Runs `part` once; returns a byte count, so that nothing is optimised away.
    public func run(_ part: Part) throws -> Int {
        switch part {
        case .ticket:
            return try serviceKey.profile.decrypt(ticketCipher, keys: serviceKey.ticket).count
        case .authenticator:
            return try sessionKey.decrypt(authenticatorCipher, usage: Authenticator.keyUsage).count
        case .pacChecksum:
            var mac = serviceKey.pacChecksum
            mac.update(zeroedPAC)
            guard mac.verify(truncatedTo: pacSignature) else {
                throw KerberosError(.pacInvalid, "KRB_AP_ERR_MODIFIED: the PAC's server checksum does not verify")
            }
            return zeroedPAC.count
        case .reply:
            let confounder = Self.randomPool.bytes(16)
            return try sessionKey.encrypt(replyPart, usage: APReply.keyUsage, confounder: confounder).count
        }
    }
}
