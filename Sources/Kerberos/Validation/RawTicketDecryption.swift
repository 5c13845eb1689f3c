/// The decryption of a ticket's encrypted part alone, with its keys derived once: no parsing, no PAC, no
/// authenticator. The floor `tessera bench kerberos` measures AP-REQ validation against, two ways: the enctype's
/// decryption as RFC 3961 defines it (for aes-cts-hmac-sha1-96, AES-CTS and the HMAC-SHA1-96 check), and AES-CTS
/// alone.
public struct RawTicketDecryption: Sendable {
    private let cipher: ArraySlice<UInt8>
    private let keys: UsageKeys
    private let profile: EncryptionProfile

    /// Prepares the decryption of `token`'s ticket with the matching key of `keys`.
    public init(token: some Collection<UInt8>, keys: ServiceKeys) throws {
        let request = try APRequest(token: token)
        let encrypted = request.ticket.encryptedPart
        guard let key = try keys.candidates(type: encrypted.encryptionType, version: encrypted.keyVersion).first else {
            throw KerberosError.malformed("no key for the ticket")
        }
        self.cipher = encrypted.cipher
        self.keys = key.ticket
        self.profile = key.profile
    }

    /// The enctype's decryption (AES-CTS, then the HMAC over the plaintext checked); returns the plaintext's length.
    public func decryptAndVerify() throws -> Int {
        try profile.decrypt(cipher, keys: keys).count
    }

    /// AES-CTS alone, the HMAC neither computed nor checked; returns the plaintext's length.
    public func decryptOnly() throws -> Int {
        try keys.encryption.decryptCTS(cipher.dropLast(profile.macLength)).count
    }
}
