/// Authenticator data (WebAuthn §6.1): what the authenticator signs about itself and the ceremony.
public struct AuthenticatorData: Sendable {
    /// The flags byte.
    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        /// UP: the user was present.
        public static let userPresent = Flags(rawValue: 0x01)
        /// UV: the user was verified (biometric, PIN).
        public static let userVerified = Flags(rawValue: 0x04)
        /// BE: the credential may be backed up (synced) — fixed for the credential's life.
        public static let backupEligible = Flags(rawValue: 0x08)
        /// BS: the credential is backed up now.
        public static let backupState = Flags(rawValue: 0x10)
        /// AT: attested credential data follows.
        public static let attestedCredentialData = Flags(rawValue: 0x40)
        /// ED: extensions follow.
        public static let extensionData = Flags(rawValue: 0x80)
    }

    /// The bytes as signed.
    public let raw: [UInt8]
    /// SHA-256 of the RP ID the authenticator scoped the credential to.
    public let rpIDHash: ArraySlice<UInt8>
    public let flags: Flags
    public let signCount: UInt32
    /// Present in registrations.
    public let attestedCredential: AttestedCredentialData?
    /// Authenticator extension outputs, tolerated and kept for the caller.
    public let extensions: CBORValue?

    /// Parses authenticator data, refusing truncation, trailing bytes and flags that disagree with the contents.
    public init(_ bytes: [UInt8]) throws(WebAuthnError) {
        raw = bytes
        guard bytes.count >= 37 else {
            throw WebAuthnError(.authDataMalformed, "authenticator data is \(bytes.count) bytes; at least 37 are needed")
        }
        rpIDHash = bytes[0..<32]
        flags = Flags(rawValue: bytes[32])
        signCount = UInt32(bytes[33]) << 24 | UInt32(bytes[34]) << 16 | UInt32(bytes[35]) << 8 | UInt32(bytes[36])
        var offset = 37
        if flags.contains(.attestedCredentialData) {
            guard bytes.count >= offset + 18 else {
                throw WebAuthnError(.authDataMalformed, "the AT flag is set but the attested credential data is truncated")
            }
            let aaguid = AAGUID(bytes: Array(bytes[offset..<offset + 16]))
            let idLength = Int(bytes[offset + 16]) << 8 | Int(bytes[offset + 17])
            offset += 18
            guard bytes.count >= offset + idLength else {
                throw WebAuthnError(.authDataMalformed, "the credential id (\(idLength) bytes) runs past the end")
            }
            let credentialID = Array(bytes[offset..<offset + idLength])
            offset += idLength
            let keyValue: CBORValue
            let keyEnd: Int
            do {
                (keyValue, keyEnd) = try CBORDecoder(limits: .ctap2).decodePrefix(bytes, from: offset)
            } catch {
                throw WebAuthnError(.credentialPublicKeyMalformed, "the credential public key: \(error.message)")
            }
            let keyBytes = Array(bytes[offset..<keyEnd])
            offset = keyEnd
            attestedCredential = AttestedCredentialData(
                aaguid: aaguid, credentialID: credentialID,
                publicKeyResult: Result { () throws(WebAuthnError) in try CredentialPublicKey(cose: keyValue, encoded: keyBytes) },
                publicKeyBytes: keyBytes)
        } else {
            attestedCredential = nil
        }
        if flags.contains(.extensionData) {
            do throws(WebAuthnError) {
                let (value, end) = try CBORDecoder(limits: .ctap2).decodePrefix(bytes, from: offset)
                guard value.mapValue != nil else { throw WebAuthnError(.authDataMalformed, "extension data is not a CBOR map") }
                extensions = value
                offset = end
            } catch {
                throw WebAuthnError(.authDataMalformed, "extension data: \(error.message)")
            }
        } else {
            extensions = nil
        }
        guard offset == bytes.count else {
            throw WebAuthnError(.authDataMalformed, "\(bytes.count - offset) bytes after the authenticator data; a flag (AT or ED) is missing")
        }
    }

    public var userPresent: Bool { flags.contains(.userPresent) }
    public var userVerified: Bool { flags.contains(.userVerified) }
    public var backupEligible: Bool { flags.contains(.backupEligible) }
    public var backupState: Bool { flags.contains(.backupState) }
}

/// The credential an authenticator created, inside registration authenticator data.
public struct AttestedCredentialData: Sendable {
    public let aaguid: AAGUID
    public let credentialID: [UInt8]
    /// The key, or why it could not be decoded (kept so the inspector can still show the rest).
    let publicKeyResult: Result<CredentialPublicKey, WebAuthnError>
    /// The COSE key bytes as the authenticator wrote them.
    public let publicKeyBytes: [UInt8]

    /// The decoded public key.
    public func publicKey() throws(WebAuthnError) -> CredentialPublicKey { try publicKeyResult.get() }
}

/// An authenticator model identifier (16 bytes; all zero when the authenticator does not say).
public struct AAGUID: Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses the `8-4-4-4-12` hexadecimal form, in any case.
    public init?(_ text: String) {
        let digits = text.lowercased().filter { $0 != "-" }
        guard digits.count == 32, text.count == 36 || text.count == 32 else { return nil }
        var out: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            out.append(byte)
            index = next
        }
        bytes = out
    }

    public static let zero = AAGUID(bytes: [UInt8](repeating: 0, count: 16))

    /// Lowercase `8-4-4-4-12`.
    public var description: String {
        let h = hex(bytes)
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }
}
