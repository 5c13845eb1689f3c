import Crypto
import CryptoExtras
import Foundation
import TesseraCore

/// The RSA key that signs tokens, shared by all tenants of a deployment (as Entra's are), kept in the
/// store so every node of a cluster signs with the same key.
struct SigningKey: Sendable {
    let kid: String
    let privateKey: _RSA.Signing.PrivateKey
    var publicKey: _RSA.Signing.PublicKey { privateKey.publicKey }

    /// The JWK (RFC 7517) of the public key.
    func jwk(issuer: String) throws -> JSONValue {
        let primitives = try publicKey.getKeyPrimitives()
        return ["kty": "RSA", "use": "sig", "kid": .string(kid), "x5t": .string(kid), "alg": "RS256",
                "n": .string(Base64URL.encode(primitives.modulus)), "e": .string(Base64URL.encode(primitives.publicExponent)),
                "issuer": .string(issuer)]
    }

    static let settingsTenant = "_deployment"

    /// Loads the deployment's key, creating it on first start.
    static func loadOrCreate(store: any DirectoryStore) async throws -> SigningKey {
        if let existing = try await load(store: store) { return existing }
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let kid = Base64URL.encode(Data(SHA256.hash(data: key.publicKey.derRepresentation)).prefix(20))
        // Another node may make one at the same moment: the first committed is every node's.
        let stored = try await store.write { tx in
            try await tx.settingOrPut(tenant: settingsTenant, key: "signingKey", value: ["kid": .string(kid), "pem": .string(key.pemRepresentation)])
        }
        guard let pem = stored["pem"]?.stringValue, let kid = stored["kid"]?.stringValue else {
            throw DirectoryError.badRequest("The deployment's signing key setting is damaged.")
        }
        return SigningKey(kid: kid, privateKey: try _RSA.Signing.PrivateKey(pemRepresentation: pem))
    }

    static func load(store: any DirectoryStore) async throws -> SigningKey? {
        try await store.read { tx in
            guard let value = try await tx.setting(tenant: settingsTenant, key: "signingKey"),
                  let pem = value["pem"]?.stringValue, let kid = value["kid"]?.stringValue
            else { return nil }
            return SigningKey(kid: kid, privateKey: try _RSA.Signing.PrivateKey(pemRepresentation: pem))
        }
    }
}

extension TesseraApp {
    /// One raw RS256 signature (PKCS#1 v1.5 over a SHA-256 digest) with the deployment key: the benchmark's
    /// baseline, with nothing of Tessera's around it.
    public func signOnce() throws {
        _ = try signingKey.privateKey.signature(for: Self.baselineDigest, padding: .insecurePKCS1v1_5)
    }

    static let baselineDigest = SHA256.hash(data: Data(repeating: 0x2A, count: 700))
}
