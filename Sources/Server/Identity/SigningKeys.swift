import Crypto
import CryptoExtras
public import Foundation
import Logging
import Synchronization
public import TesseraCore

/// An RSA key that signs tokens, shared by all tenants of a deployment (as Entra's are), kept in the
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

    /// A new 2048-bit key; its kid is derived from the public key.
    static func generate() throws -> SigningKey {
        let key = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        return SigningKey(kid: Base64URL.encode(Data(SHA256.hash(data: key.publicKey.derRepresentation)).prefix(20)), privateKey: key)
    }

    var json: JSONValue { ["kid": .string(kid), "pem": .string(privateKey.pemRepresentation)] }

    init(kid: String, privateKey: _RSA.Signing.PrivateKey) {
        self.kid = kid
        self.privateKey = privateKey
    }

    init(json: JSONValue) throws {
        guard let pem = json["pem"]?.stringValue, let kid = json["kid"]?.stringValue else {
            throw DirectoryError.badRequest("The deployment's signing key setting is damaged.")
        }
        self.init(kid: kid, privateKey: try _RSA.Signing.PrivateKey(pemRepresentation: pem))
    }
}

/// The deployment's signing keys as Entra keeps them: the `current` key signs; the `next` one is published in the
/// JWKS from the moment it is made, so relying parties know it before it signs anything; the `previous` one is still
/// published after a rotation, so tokens it signed stay valid until they expire. A rotation makes next current,
/// current previous, forgets the previous one and makes a new next.
struct SigningKeyRing: Sendable {
    var current: SigningKey
    var next: SigningKey
    var previous: SigningKey?
    /// When `current` became the signing key (the schedule counts from here).
    var rotatedAt: Date

    /// The keys the JWKS lists and verification accepts: the signing one first.
    var published: [SigningKey] { [current, next] + (previous.map { [$0] } ?? []) }

    /// The published key named `kid`, if any.
    func key(kid: String) -> SigningKey? { published.first { $0.kid == kid } }

    /// The ring after one rotation, with `newNext` as the key published for the rotation after.
    func rotated(at now: Date, newNext: SigningKey) -> SigningKeyRing {
        SigningKeyRing(current: next, next: newNext, previous: current, rotatedAt: now)
    }

    /// Whether the schedule says `current` has signed long enough.
    func isDue(every period: TimeInterval?, now: Date) -> Bool {
        guard let period else { return false }
        return rotatedAt.addingTimeInterval(period) <= now
    }

    /// The stored shape. It keeps the current key at the top level too (`kid`, `pem`: the single key the release before
    /// rings read), so a node of that release signs with the same key as this one's during a rolling upgrade; written
    /// with every ring, they follow each rotation. (A ring sealed with a key-encryption key is unreadable to that
    /// release whatever it holds: turn the key-encryption key on once every node runs a release with rings.)
    var json: JSONValue {
        var object: [String: JSONValue] = ["current": current.json, "next": next.json, "rotatedAt": .string(Timestamp.format(rotatedAt))]
        if let previous { object["previous"] = previous.json }
        object["kid"] = .string(current.kid)
        object["pem"] = .string(current.privateKey.pemRepresentation)
        return .object(object)
    }

    init(current: SigningKey, next: SigningKey, previous: SigningKey?, rotatedAt: Date) {
        self.current = current
        self.next = next
        self.previous = previous
        self.rotatedAt = rotatedAt
    }

    init(json: JSONValue) throws {
        guard let current = json["current"], let next = json["next"], let at = json["rotatedAt"]?.stringValue.flatMap(Timestamp.parse) else {
            throw DirectoryError.badRequest("The deployment's signing key setting is damaged.")
        }
        self.init(current: try SigningKey(json: current), next: try SigningKey(json: next),
                  previous: try json["previous"].map(SigningKey.init(json:)), rotatedAt: at)
    }

    /// A ring for a new deployment.
    static func generate(now: Date) throws -> SigningKeyRing {
        SigningKeyRing(current: try .generate(), next: try .generate(), previous: nil, rotatedAt: now)
    }

    /// The ring in its current shape when `stored` is in an older one: a single key (`{kid, pem}`, before rotation)
    /// becomes the current key of a ring with a new next; a ring without the current key at the top level (written
    /// before it was kept there) or with another key there gets it. Nil when it is in shape already.
    static func upgrade(_ stored: JSONValue, now: Date) throws -> JSONValue? {
        guard stored["current"] != nil else {
            return SigningKeyRing(current: try SigningKey(json: stored), next: try .generate(), previous: nil, rotatedAt: now).json
        }
        guard stored["kid"] != stored["current"]?["kid"] || stored["pem"] != stored["current"]?["pem"] else { return nil }
        return try SigningKeyRing(json: stored).json
    }

    /// The deployment's ring, made on first start, upgraded from a single key and sealed when not yet (see
    /// `DeploymentSecrets.loadOrCreate`).
    static func loadOrCreate(store: any DirectoryStore, secrets: DeploymentSecrets, now: Date) async throws -> SigningKeyRing {
        try SigningKeyRing(json: try await secrets.loadOrCreate(.signingKeys, store: store, make: { try generate(now: now).json },
                                                                upgrade: { try upgrade($0, now: now) }))
    }

    /// Rotates the stored ring, when `period` is nil (by hand) or when it is due by `period` still (another node may
    /// have rotated it first: then that ring is returned as it is). The new next key (`newNext`, else a new one) is made
    /// before the transaction.
    ///
    /// The ring is read with its row locked (``DirectoryWriter/lockedSetting(tenant:key:)``), so rotations at once (two
    /// `tessera keys rotate`, a scheduled one on two nodes) are made one after the other: a scheduled one finds the ring
    /// no longer due, a second by hand rotates the first one's ring. Read unlocked, on PostgreSQL each would rotate the
    /// ring it read and the last to commit would win: with two, only a next key that never signed was lost (and the
    /// command printed a next key that was not kept); but a rotation whose read was older than two others' commits put
    /// back a ring without the key the first made and the second made current, so tokens that key had signed meanwhile
    /// were refused by every relying party that fetched the JWKS again.
    static func rotate(store: any DirectoryStore, secrets: DeploymentSecrets, now: Date, ifDueEvery period: TimeInterval? = nil,
                       newNext: SigningKey? = nil) async throws -> (ring: SigningKeyRing, stored: JSONValue) {
        _ = try await loadOrCreate(store: store, secrets: secrets, now: now)
        let newNext = try newNext ?? SigningKey.generate()
        let secret = DeploymentSecret.signingKeys
        return try await store.write { tx in
            guard let stored = try await tx.lockedSetting(tenant: secret.tenant, key: secret.key) else {
                throw DirectoryError.badRequest("The deployment has no signing key.")
            }
            let ring = try SigningKeyRing(json: try secrets.open(stored, secret))
            if period != nil, !ring.isDue(every: period, now: now) { return (ring, stored) }
            let rotated = ring.rotated(at: now, newNext: newNext)
            let sealed = try secrets.seal(rotated.json, secret)
            try await tx.putSetting(tenant: secret.tenant, key: secret.key, value: sealed)
            return (rotated, sealed)
        }
    }
}

/// A node's copy of the ring: read on every request, checked against the store at most once a `maxAge` so a
/// rotation made by another node or by `tessera keys rotate` takes effect here within about a second, and rotated
/// here when the schedule says so.
final class SigningKeyRingCache: Sendable {
    private struct State {
        var ring: SigningKeyRing
        /// The setting as last read (sealed values differ at every write, so a change is seen without opening it).
        var stored: JSONValue?
        var checkedAt: ContinuousClock.Instant
        var checking = false
    }

    static let maxAge: Duration = .seconds(1)
    /// The key a request signs with, bound by `TesseraApp.handle` for its whole duration.
    @TaskLocal static var requestKey: SigningKey?
    let secrets: DeploymentSecrets
    /// Seconds between scheduled rotations; nil: only by hand.
    let rotationPeriod: TimeInterval?
    private let state: Mutex<State>

    init(ring: SigningKeyRing, secrets: DeploymentSecrets, rotationPeriod: TimeInterval?) {
        self.secrets = secrets
        self.rotationPeriod = rotationPeriod
        state = Mutex(State(ring: ring, stored: nil, checkedAt: .now))
    }

    var ring: SigningKeyRing { state.withLock { $0.ring } }
    /// Whether a check is running (one that outlasted its request's second goes on after it).
    var isChecking: Bool { state.withLock { $0.checking } }

    /// Claims the next check when one is wanted (stale, or a rotation due) and none is running.
    func claimCheck(now: Date, force: Bool) -> Bool {
        state.withLock { state in
            guard !state.checking else { return false }
            let wanted = force || ContinuousClock.now - state.checkedAt >= Self.maxAge || state.ring.isDue(every: rotationPeriod, now: now)
            if wanted { state.checking = true }
            return wanted
        }
    }

    /// Reads the ring from the store (opening it only when it changed), rotating it when the schedule says so.
    func check(store: any DirectoryStore, now: Date) async throws {
        defer { state.withLock { $0.checking = false; $0.checkedAt = .now } }
        let secret = DeploymentSecret.signingKeys
        let stored = try await store.read { tx in try await tx.setting(tenant: secret.tenant, key: secret.key) }
        if let stored, stored != state.withLock({ $0.stored }) {
            let ring = try SigningKeyRing(json: try secrets.open(stored, secret))
            state.withLock { $0.ring = ring; $0.stored = stored }
        }
        if ring.isDue(every: rotationPeriod, now: now) {
            let (ring, stored) = try await SigningKeyRing.rotate(store: store, secrets: secrets, now: now, ifDueEvery: rotationPeriod)
            state.withLock { $0.ring = ring; $0.stored = stored }
        }
    }
}

extension JWT {
    /// Whether one of the deployment's published keys, the one the header's `kid` names, signed the token.
    func verify(with keys: SigningKeyRingCache) -> Bool {
        guard let kid = header["kid"]?.stringValue, let key = keys.ring.key(kid: kid) else { return false }
        return verify(with: key.publicKey)
    }
}

extension TesseraApp {
    /// The key that signs tokens now: in a request, the one that was current when it began (a token's `kid` and its
    /// signature, read one after the other, always name the same key).
    var signingKey: SigningKey { SigningKeyRingCache.requestKey ?? signingKeys.ring.current }

    /// Picks up a ring another node or `tessera keys rotate` changed, and rotates on schedule; at most one check at a
    /// time, about once a second (`force`: now). A failure is logged and retried at the next check: the ring in memory
    /// keeps signing.
    func refreshSigningKeys(force: Bool = false) async {
        let now = clock.now
        guard signingKeys.claimCheck(now: now, force: force) else { return }
        // The check reads the database; one that does not answer (an outage, a failover) must not hold the request —
        // /readyz least of all: after a second the request goes on with the ring in memory and the check ends on its own.
        let keys = signingKeys, store = store
        do {
            if try await Deadline.within(.seconds(1), { try await keys.check(store: store, now: now); return true }) == nil {
                logger.warning("Checking the signing keys took more than a second; going on with the keys in memory")
            }
        } catch {
            logger.error("Cannot check the signing keys: \(String(describing: error))")
        }
    }

    /// One raw RS256 signature (PKCS#1 v1.5 over a SHA-256 digest) with the deployment key: the benchmark's
    /// baseline, with nothing of Tessera's around it.
    public func signOnce() throws {
        _ = try signingKey.privateKey.signature(for: Self.baselineDigest, padding: .insecurePKCS1v1_5)
    }

    static let baselineDigest = SHA256.hash(data: Data(repeating: 0x2A, count: 700))
}

/// The deployment's keys for the `tessera keys` commands.
public enum DeploymentKeys {
    /// One published signing key: its kid and role (current, next or previous).
    public struct Published: Sendable {
        public let kid: String
        public let role: String
    }

    /// The published keys, current first, and when the current one began signing.
    public static func list(store: any DirectoryStore, keyEncryption: KeyEncryptionKey?, now: Date) async throws -> (keys: [Published], since: Date) {
        let ring = try await SigningKeyRing.loadOrCreate(store: store, secrets: DeploymentSecrets(keyEncryption: keyEncryption), now: now)
        return (published(ring), ring.rotatedAt)
    }

    /// Rotates the signing keys now; running servers take the new ring within about a second.
    public static func rotate(store: any DirectoryStore, keyEncryption: KeyEncryptionKey?, now: Date) async throws -> [Published] {
        published(try await SigningKeyRing.rotate(store: store, secrets: DeploymentSecrets(keyEncryption: keyEncryption), now: now).ring)
    }

    /// Seals the deployment's keys under `new` instead of `old` (either nil: stored unencrypted); the names rewritten.
    public static func rewrap(store: any DirectoryStore, old: KeyEncryptionKey?, new: KeyEncryptionKey?) async throws -> [String] {
        try await DeploymentSecrets.rewrap(store: store, old: old, new: new)
    }

    static func published(_ ring: SigningKeyRing) -> [Published] {
        [Published(kid: ring.current.kid, role: "current"), Published(kid: ring.next.kid, role: "next")]
            + (ring.previous.map { [Published(kid: $0.kid, role: "previous")] } ?? [])
    }
}
