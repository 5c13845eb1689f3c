import Crypto
import _CryptoExtras

/// A credential public key decoded from its COSE form (RFC 9052/9053), ready to verify signatures.
///
/// Decode it once when the credential is registered or loaded and keep it: verifying an assertion then costs one
/// signature check and no parsing of the key.
public struct CredentialPublicKey: Sendable {
    /// The key and how it signs.
    enum Key: Sendable {
        case p256(P256.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)
        case p521(P521.Signing.PublicKey)
        case ed25519(Curve25519.Signing.PublicKey)
        case rsa(_RSA.Signing.PublicKey, RSAScheme)
    }

    let key: Key
    /// The algorithm the key is for (COSE label 3).
    public let algorithm: COSEAlgorithm
    /// The COSE_Key as the authenticator encoded it.
    public let cose: [UInt8]

    /// COSE key type (label 1), curve (label -1) and coordinates, for comparing with attested keys.
    enum Material: Equatable {
        case ec(curve: Int, x: [UInt8], y: [UInt8])
        case okp(curve: Int, x: [UInt8])
        case rsa(n: [UInt8], e: [UInt8])
    }
    let material: Material

    /// Decodes a COSE_Key, which must be in CTAP2 canonical CBOR and have nothing after it.
    public init(cose bytes: [UInt8]) throws(WebAuthnError) {
        let value: CBORValue
        do {
            value = try CBORDecoder(limits: .ctap2).decode(bytes)
        } catch {
            throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key is not valid CBOR: \(error.message)")
        }
        try self.init(cose: value, encoded: bytes)
    }

    init(cose value: CBORValue, encoded: [UInt8]) throws(WebAuthnError) {
        guard value.mapValue != nil else { throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key is not a map") }
        guard let kty = value[intKey: 1]?.int else { throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key has no key type (1)") }
        guard let alg = value[intKey: 3]?.int else { throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key has no algorithm (3)") }
        self.algorithm = COSEAlgorithm(alg)
        self.cose = encoded
        func bytes(_ label: Int) throws(WebAuthnError) -> [UInt8] {
            guard let b = value[intKey: label]?.bytesValue else {
                throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key lacks byte string parameter \(label)")
            }
            return b
        }
        // An algorithm this library cannot verify is unsupported; one it can, named on a key of another type, is a
        // malformed key.
        guard algorithm.isSupported else {
            throw WebAuthnError(.credentialPublicKeyUnsupported, "\(algorithm) is not an algorithm this verifier supports")
        }
        func mismatch() -> WebAuthnError {
            WebAuthnError(.credentialPublicKeyMalformed, "COSE key type \(kty) cannot be used with \(COSEAlgorithm(alg))")
        }
        do {
            switch kty {
            case 2: // EC2
                guard let crv = value[intKey: -1]?.int else { throw WebAuthnError(.credentialPublicKeyMalformed, "the EC2 key has no curve (-1)") }
                let x = try bytes(-2), y = try bytes(-3)
                material = .ec(curve: crv, x: x, y: y)
                let size: Int
                switch (crv, algorithm) {
                case (1, .es256): size = 32
                case (2, .es384): size = 48
                case (3, .es512): size = 66
                case (1, _), (2, _), (3, _): throw mismatch()
                default: throw WebAuthnError(.credentialPublicKeyUnsupported, "EC2 curve \(crv) is not supported")
                }
                guard x.count == size, y.count == size else {
                    throw WebAuthnError(.credentialPublicKeyMalformed, "EC2 coordinates must be \(size) bytes each")
                }
                let raw = x + y
                switch crv {
                case 1: key = .p256(try P256.Signing.PublicKey(rawRepresentation: raw))
                case 2: key = .p384(try P384.Signing.PublicKey(rawRepresentation: raw))
                default: key = .p521(try P521.Signing.PublicKey(rawRepresentation: raw))
                }
            case 1: // OKP
                guard let crv = value[intKey: -1]?.int else { throw WebAuthnError(.credentialPublicKeyMalformed, "the OKP key has no curve (-1)") }
                guard crv == 6 else { throw WebAuthnError(.credentialPublicKeyUnsupported, "OKP curve \(crv) is not supported (only Ed25519)") }
                guard algorithm == .eddsa else { throw mismatch() }
                let x = try bytes(-2)
                guard x.count == 32 else { throw WebAuthnError(.credentialPublicKeyMalformed, "an Ed25519 key is 32 bytes") }
                material = .okp(curve: crv, x: x)
                key = .ed25519(try Curve25519.Signing.PublicKey(rawRepresentation: x))
            case 3: // RSA
                let n = try bytes(-1), e = try bytes(-2)
                material = .rsa(n: n, e: e)
                guard let scheme = RSAScheme(algorithm) else { throw mismatch() }
                key = .rsa(try _RSA.Signing.PublicKey(n: n, e: e), scheme)
            default:
                throw WebAuthnError(.credentialPublicKeyUnsupported, "COSE key type \(kty) is not supported")
            }
        } catch let error as WebAuthnError {
            throw error
        } catch {
            throw WebAuthnError(.credentialPublicKeyMalformed, "the COSE key's parameters are not a valid \(COSEAlgorithm(alg)) public key")
        }
    }

    /// Whether `signature` is this key's signature over `data`, by the key's algorithm.
    public func isValidSignature(_ signature: [UInt8], for data: [UInt8]) -> Bool {
        switch key {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .p384(let k):
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .p521(let k):
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: data)
        case .ed25519(let k):
            return k.isValidSignature(signature, for: data)
        case .rsa(let k, let scheme):
            return scheme.isValid(signature, over: [data], key: k)
        }
    }

    /// Whether `signature` is this key's signature over `authenticatorData || SHA-256(clientDataJSON)` (§7.2 step
    /// 20). Hash-then-sign keys take the digest incrementally, so the message is never assembled.
    public func isValidAssertionSignature(_ signature: [UInt8], authenticatorData: [UInt8], clientDataJSON: [UInt8]) -> Bool {
        func digest<H: HashFunction>(_: H.Type) -> H.Digest {
            var hasher = H()
            hasher.update(data: authenticatorData)
            SHA256.hash(data: clientDataJSON).withUnsafeBytes { hasher.update(bufferPointer: $0) }
            return hasher.finalize()
        }
        switch key {
        case .p256(let k):
            guard let s = try? P256.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: digest(SHA256.self))
        case .p384(let k):
            guard let s = try? P384.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: digest(SHA384.self))
        case .p521(let k):
            guard let s = try? P521.Signing.ECDSASignature(derRepresentation: signature) else { return false }
            return k.isValidSignature(s, for: digest(SHA512.self))
        case .ed25519:
            return isValidSignature(signature, for: authenticatorData + clientDataJSON.sha256)
        case .rsa(let k, let scheme):
            return scheme.isValid(signature, over: [authenticatorData, clientDataJSON.sha256], key: k)
        }
    }

    /// A short description for the inspector: `ES256 (P-256)`, `RS256 (2048-bit RSA)`.
    public var summary: String {
        switch key {
        case .p256: "\(algorithm) (P-256)"
        case .p384: "\(algorithm) (P-384)"
        case .p521: "\(algorithm) (P-521)"
        case .ed25519: "\(algorithm) (Ed25519)"
        case .rsa(let k, _): "\(algorithm) (\(k.keySizeInBits)-bit RSA)"
        }
    }
}

/// How an RSA key signs (RFC 8230, RFC 8812): PKCS #1 v1.5 or PSS (salt as long as the hash), and the hash.
struct RSAScheme: Sendable, Hashable {
    enum Hash: Sendable, Hashable { case sha1, sha256, sha384, sha512 }
    let hash: Hash
    let pss: Bool

    /// The scheme of an RSA COSE algorithm; `nil` for any other algorithm.
    init?(_ algorithm: COSEAlgorithm) {
        switch algorithm {
        case .rs1: (hash, pss) = (.sha1, false)
        case .rs256: (hash, pss) = (.sha256, false)
        case .rs384: (hash, pss) = (.sha384, false)
        case .rs512: (hash, pss) = (.sha512, false)
        case .ps256: (hash, pss) = (.sha256, true)
        case .ps384: (hash, pss) = (.sha384, true)
        case .ps512: (hash, pss) = (.sha512, true)
        default: return nil
        }
    }

    /// Whether `signature` is `key`'s signature over the concatenation of `parts`, hashed as they come.
    func isValid(_ signature: [UInt8], over parts: [[UInt8]], key: _RSA.Signing.PublicKey) -> Bool {
        let rsaSignature = _RSA.Signing.RSASignature(rawRepresentation: signature)
        let padding: _RSA.Signing.Padding = pss ? .PSS : .insecurePKCS1v1_5
        func check<H: HashFunction>(_: H.Type) -> Bool {
            var hasher = H()
            for part in parts { hasher.update(data: part) }
            return key.isValidSignature(rsaSignature, for: hasher.finalize(), padding: padding)
        }
        switch hash {
        case .sha1: return check(Insecure.SHA1.self)
        case .sha256: return check(SHA256.self)
        case .sha384: return check(SHA384.self)
        case .sha512: return check(SHA512.self)
        }
    }
}
