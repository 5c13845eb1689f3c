/// The AES-CTS decryption of a ticket's encrypted part alone, with Ke derived once: no HMAC, no parsing, no PAC.
/// It is the floor `tessera bench kerberos` measures AP-REQ validation against.
public struct RawTicketDecryption: Sendable {
    private let cipher: ArraySlice<UInt8>
    private let keys: UsageKeys
    private let macLength: Int

    /// Prepares the decryption of `token`'s ticket with the matching key of `keys`.
    public init(token: some Collection<UInt8>, keys: ServiceKeys) throws {
        let request = try APRequest(token: token)
        let encrypted = request.ticket.encryptedPart
        guard let key = try keys.candidates(type: encrypted.encryptionType, version: encrypted.keyVersion).first else {
            throw KerberosError.malformed("no key for the ticket")
        }
        self.cipher = encrypted.cipher
        self.keys = key.ticket
        self.macLength = key.profile.macLength
    }

    /// Decrypts once; returns the plaintext's length.
    public func run() throws -> Int {
        try AESCTS.decrypt(cipher.dropLast(macLength), key: keys.encryption).count
    }
}
