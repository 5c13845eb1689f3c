public import Crypto
public import WebAuthn

/// A software authenticator for unit tests of the verifier and of Tessera's passkey endpoints: it builds ceremonies byte
/// by byte, so a test can change exactly one thing and re-sign. The proof that real authenticators verify is in the
/// vectors and the Chromium tests, not here.
public struct SoftAuthenticator {
    public let key = P256.Signing.PrivateKey()

    public init() {}
    public var rpID = "example.org"
    public var origin = "https://example.org"
    public var credentialID = [UInt8](repeating: 0xC1, count: 32)
    public var userHandle: [UInt8] = [0x75, 0x73, 0x65, 0x72]
    public var aaguid = [UInt8](repeating: 0xAA, count: 16)

    /// One knob per thing a ceremony can get wrong.
    public struct Ceremony {
        public init() {}
        public var challenge: [UInt8] = Array("a challenge of sixteen+ bytes".utf8)
        public var type: String?
        public var origin: String?
        public var crossOrigin: Bool?
        public var topOrigin: String?
        public var tokenBinding: String?
        public var extraClientData = ""
        public var rpIDForHash: String?
        public var flags: AuthenticatorData.Flags = [.userPresent, .userVerified]
        public var signCount: UInt32 = 1
        public var format = "none"
        public var statement: CBORValue?
        public var packedSelf = false
        public var credentialID: [UInt8]?
        public var rawID: [UInt8]?
        public var id: String?
        public var coseKey: [UInt8]?
        public var authDataSuffix: [UInt8] = []
        public var corruptSignature = false
        public var userHandle: [UInt8]??
        public var responseType = "public-key"
        public var attested: Bool?
    }

    public var coseKey: [UInt8] {
        let raw = Array(key.publicKey.rawRepresentation)
        return CBOREncoder.encode(.map([
            .init(.int(1), .int(2)), .init(.int(3), .int(-7)), .init(.int(-1), .int(1)),
            .init(.int(-2), .bytes(Array(raw[0..<32]))), .init(.int(-3), .bytes(Array(raw[32..<64]))),
        ]))
    }

    public func clientData(_ c: Ceremony, type: String) -> [UInt8] {
        var json = "{\"type\":\"\(c.type ?? type)\",\"challenge\":\"\(Base64URL.encode(c.challenge))\",\"origin\":\"\(c.origin ?? origin)\""
        if let cross = c.crossOrigin { json += ",\"crossOrigin\":\(cross)" }
        if let top = c.topOrigin { json += ",\"topOrigin\":\"\(top)\"" }
        if let binding = c.tokenBinding { json += ",\"tokenBinding\":{\"status\":\"\(binding)\"}" }
        return Array((json + c.extraClientData + "}").utf8)
    }

    public func authenticatorData(_ c: Ceremony, attested: Bool) -> [UInt8] {
        var flags = c.flags
        if attested { flags.insert(.attestedCredentialData) }
        var data = Array(SHA256.hash(data: Array((c.rpIDForHash ?? rpID).utf8)))
        data.append(flags.rawValue)
        data += withUnsafeBytes(of: c.signCount.bigEndian, Array.init)
        if attested {
            let id = c.credentialID ?? credentialID
            data += aaguid + [UInt8(id.count >> 8), UInt8(id.count & 0xFF)] + id + (c.coseKey ?? coseKey)
        }
        return data + c.authDataSuffix
    }

    public func sign(_ data: [UInt8], corrupt: Bool) -> [UInt8] {
        var signature = Array(try! key.signature(for: data).derRepresentation)
        if corrupt { signature[signature.count - 1] ^= 0x01 }
        return signature
    }

    public func register(_ c: Ceremony = Ceremony()) -> RegistrationResponse {
        let clientDataJSON = clientData(c, type: "webauthn.create")
        let authData = authenticatorData(c, attested: c.attested ?? true)
        var statement = c.statement ?? .map([])
        var format = c.format
        if c.packedSelf {
            format = "packed"
            let signature = sign(authData + Array(SHA256.hash(data: clientDataJSON)), corrupt: c.corruptSignature)
            statement = .map([.init(.text("alg"), .int(-7)), .init(.text("sig"), .bytes(signature))])
        }
        let object = CBOREncoder.encode(.map([
            .init(.text("fmt"), .text(format)), .init(.text("attStmt"), statement), .init(.text("authData"), .bytes(authData)),
        ]))
        let raw = c.rawID ?? credentialID
        return RegistrationResponse(id: c.id ?? Base64URL.encode(raw), rawID: raw, type: c.responseType,
                                    clientDataJSON: clientDataJSON, attestationObject: object)
    }

    public func authenticate(_ c: Ceremony = Ceremony()) -> AuthenticationResponse {
        let clientDataJSON = clientData(c, type: "webauthn.get")
        let authData = authenticatorData(c, attested: false)
        let signature = sign(authData + Array(SHA256.hash(data: clientDataJSON)), corrupt: c.corruptSignature)
        let raw = c.rawID ?? credentialID
        return AuthenticationResponse(id: c.id ?? Base64URL.encode(raw), rawID: raw, type: c.responseType,
                                      clientDataJSON: clientDataJSON, authenticatorData: authData, signature: signature,
                                      userHandle: c.userHandle ?? userHandle)
    }

    public func stored(signCount: UInt32 = 0, backupEligible: Bool = false) throws -> StoredCredential {
        StoredCredential(id: credentialID, publicKey: try CredentialPublicKey(cose: coseKey), signCount: signCount,
                         backupEligible: backupEligible, userHandle: userHandle)
    }
}
