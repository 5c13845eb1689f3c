import Crypto
import Synchronization
import TesseraCore

/// Bearer tokens whose signature this node has verified, by the SHA-256 of the token, so a caller that sends the same
/// token with every request (every Graph client does, for an hour) has it decoded and its RSA signature checked once:
/// the two were about 8% of a `POST /users`' CPU (scripts/bench-post-users' profile).
///
/// Only what cannot change for a token's bytes is kept: it is well formed, RS256, and signed by the key its `kid`
/// names. At every use that key must still be one the deployment publishes (a token whose key was rotated out is
/// refused as before), and everything that depends on the moment or the request — lifetime, audience, issuer for the
/// request's URL, a revoked grant — is checked again by the caller (``Caller/verifiedToken(_:app:base:)``). Tokens are
/// found by their digest, compared in constant time, so a lookup tells nothing about the tokens held.
final class VerifiedTokens: Sendable {
    /// Enough for every caller of a busy node within a token's lifetime; when full, the table starts again.
    static let capacity = 512
    private let tokens = Mutex<[SHA256Digest: JWT]>([:])

    init() {}

    /// How many tokens are held.
    var count: Int { tokens.withLock { $0.count } }

    /// The token decoded, when it is an RS256 token signed by one of `keys`' published keys; nil otherwise.
    func signed(_ token: String, keys: SigningKeyRingCache) -> JWT? {
        var text = token
        let digest = text.withUTF8 { SHA256.hash(data: $0) }
        if let known = tokens.withLock({ $0[digest] }) {
            guard let kid = known.header["kid"]?.stringValue, keys.ring.key(kid: kid) != nil else { return nil }
            return known
        }
        guard let jwt = JWT.decode(token), jwt.header["alg"]?.stringValue == "RS256", jwt.verify(with: keys) else { return nil }
        tokens.withLock { tokens in
            if tokens.count >= Self.capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[digest] = jwt
        }
        return jwt
    }
}
