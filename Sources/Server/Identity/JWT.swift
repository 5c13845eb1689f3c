import Crypto
import CryptoExtras
import Foundation
import TesseraCore

/// Compact JWS (RFC 7515) with RS256/PS256: just what tokens and client assertions need.
struct JWT: Sendable {
    var header: [String: JSONValue]
    var claims: [String: JSONValue]
    /// The signed part: `base64url(header).base64url(payload)`.
    var signingInput: String
    var signature: Data

    /// Splits and decodes a token; does not verify it.
    static func decode(_ token: String) -> JWT? {
        // Split over the bytes: a token is ASCII, and splitting the String walked it character by character.
        let parts = token.utf8.split(separator: UInt8(ascii: "."), maxSplits: 3, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard token.utf8.count <= 16_384, parts.count == 3,
              let headerData = Base64URL.decode(parts[0]), let payloadData = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]),
              case .object(let header)? = try? JSONParser.parse(Array(headerData)),
              case .object(let claims)? = try? JSONParser.parse(Array(payloadData))
        else { return nil }
        return JWT(header: header, claims: claims, signingInput: "\(parts[0]).\(parts[1])", signature: signature)
    }

    /// Signs claims with RS256; `typ` is `JWT` unless the header says otherwise (a logout token's `logout+jwt`).
    static func sign(claims: [String: JSONValue], header extra: [String: JSONValue], key: _RSA.Signing.PrivateKey) throws -> String {
        var header = extra
        header["alg"] = "RS256"
        header["typ"] = header["typ"] ?? "JWT"
        // The serialized bytes as they are (not through a String and a Data and back to bytes).
        let input = Base64URL.encode(JSONValue.object(header).serializedBytes) + "."
            + Base64URL.encode(JSONValue.object(claims).serializedBytes)
        let signature = try key.signature(for: SHA256.hash(data: Array(input.utf8)), padding: .insecurePKCS1v1_5)
        return input + "." + Base64URL.encode(signature.rawRepresentation)
    }

    /// Verifies the signature with an RSA public key, for RS256 or PS256 only.
    func verify(with key: _RSA.Signing.PublicKey) -> Bool {
        let digest = SHA256.hash(data: Data(signingInput.utf8))
        let signature = _RSA.Signing.RSASignature(rawRepresentation: self.signature)
        switch header["alg"]?.stringValue {
        case "RS256": return key.isValidSignature(signature, for: digest, padding: .insecurePKCS1v1_5)
        case "PS256": return key.isValidSignature(signature, for: digest, padding: .PSS)
        default: return false
        }
    }
}
