import Crypto
import Foundation
import TesseraCore
import WebAuthn

/// WebAuthn challenges that any replica can check: 16 random bytes, an expiry and an HMAC over them and what the
/// challenge is for (ceremony, tenant, user), keyed by a deployment secret kept in the store. Nothing is stored at
/// issue; at use the nonce goes through `consumeOnce`, so a challenge works once and only until it expires.
struct PasskeyChallenges: Sendable {
    let key: SymmetricKey
    /// An HMAC already keyed with `key`, copied for each MAC (HMAC and SHA-256 are values, copied on write): keying one
    /// padded and hashed the key at every challenge issued and checked.
    private let keyed: HMAC<SHA256>
    static let lifetime: TimeInterval = 5 * 60

    init(key: SymmetricKey) {
        self.key = key
        keyed = HMAC<SHA256>(key: key)
    }

    static func loadOrCreate(store: any DirectoryStore, secrets: DeploymentSecrets) async throws -> PasskeyChallenges {
        let made = Secrets.randomBytes(32)
        // The first key committed is every node's (one made by another node at the same moment included); sealed with
        // the key-encryption key when there is one.
        let stored = try await secrets.loadOrCreate(.challengeKey, store: store, make: { .string(WebAuthn.Base64URL.encode(made)) })
        guard let secret = stored.stringValue.flatMap(WebAuthn.Base64URL.decode), secret.count == 32 else {
            throw DirectoryError.badRequest("The deployment's challenge key setting is damaged.")
        }
        return PasskeyChallenges(key: SymmetricKey(data: secret))
    }

    func mac(_ purpose: String, _ body: [UInt8]) -> [UInt8] {
        var hmac = keyed
        var head = Array(purpose.utf8)
        head.append(0)
        hmac.update(data: head)
        hmac.update(data: body)
        return hmac.finalize().withUnsafeBytes { Array($0.prefix(16)) }
    }

    /// A new challenge for `purpose` (e.g. `create:<tenant>:<user>`), and when it expires.
    func issue(_ purpose: String, now: Date) -> (challenge: [UInt8], expires: Date) {
        let expires = now.addingTimeInterval(Self.lifetime)
        var body = Secrets.randomBytes(16)
        let seconds = UInt64(expires.timeIntervalSince1970)
        body += (0..<8).map { UInt8(truncatingIfNeeded: seconds >> (56 - 8 * UInt64($0))) }
        return (body + mac(purpose, body), expires)
    }

    /// Whether `token` is one of ours for `purpose` and has not expired (it is not spent).
    func isValid(_ token: [UInt8], purpose: String, now: Date) -> Bool { expiry(token, purpose: purpose, now: now) != nil }

    /// A genuine, unexpired token's expiry.
    private func expiry(_ token: [UInt8], purpose: String, now: Date) -> Date? {
        guard token.count == 40 else { return nil }
        let body = Array(token[0..<24])
        guard WebAuthn.constantTimeEquals(token[24...], mac(purpose, body)) else { return nil }
        let seconds = body[16..<24].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let expires = Date(timeIntervalSince1970: TimeInterval(seconds))
        return expires > now ? expires : nil
    }

    /// Checks a challenge the browser echoed for `purpose` and spends it. Throws a Graph 400 when it is not one of
    /// ours, was for something else, expired, or was used before.
    func redeem(_ challenge: [UInt8], purpose: String, tenant: String, now: Date, store: any DirectoryStore) async throws {
        let refusal = DirectoryError.badRequest("The passkey challenge is invalid, expired or already used; request new creation options.")
        guard expiry(challenge, purpose: purpose, now: now) != nil else { throw refusal }
        let fresh = try await store.write { tx in try await spend(challenge, purpose: purpose, tenant: tenant, now: now, tx: tx) }
        guard fresh else { throw refusal }
    }

    /// Spends a genuine, unexpired challenge inside the caller's transaction (so it is spent exactly when what it
    /// authorised commits); false when it is not ours, expired or already spent.
    func spend(_ challenge: [UInt8], purpose: String, tenant: String, now: Date, tx: any DirectoryTransaction) async throws -> Bool {
        guard let (key, expiresAt) = singleUseKey(challenge, purpose: purpose, now: now) else { return false }
        return try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: expiresAt, now: Timestamp.format(now))
    }

    /// The single-use key that spends a genuine, unexpired challenge, and until when it is kept; nil when the challenge is
    /// not ours or expired.
    func singleUseKey(_ challenge: [UInt8], purpose: String, now: Date) -> (key: String, expiresAt: String)? {
        guard let expires = expiry(challenge, purpose: purpose, now: now) else { return nil }
        return ("passkey-challenge:" + WebAuthn.Base64URL.encode(challenge[0..<16]), Timestamp.format(expires))
    }
}
