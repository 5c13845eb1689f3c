import Crypto
import Foundation
import Kerberos
import TesseraCore

/// The Kerberos replay cache in the store's single-use keys (the table that spends authorization codes), so an
/// authenticator accepted by one node of a cluster is a replay on every other: the key is a digest of the client,
/// the authenticator's time and its ciphertext, kept until the skew window has passed.
struct StoreReplayCache: ReplayCache {
    let store: any DirectoryStore
    let tenant: String

    func insert(_ entry: ReplayEntry, expires: Int64, now: Int64) async throws -> Bool {
        var hash = SHA256()
        hash.update(data: Array(entry.client.utf8))
        hash.update(data: Array("|\(entry.time)|\(entry.microseconds)|".utf8))
        hash.update(data: entry.checksumHash)
        let key = "krb-ap:" + hash.finalize().map { String(format: "%02x", $0) }.joined()
        let expiresAt = Timestamp.format(Date(timeIntervalSince1970: TimeInterval(expires)))
        let at = Timestamp.format(Date(timeIntervalSince1970: TimeInterval(now)))
        let tenant = self.tenant
        return try await store.write { tx in try await tx.consumeOnce(tenant: tenant, key: key, expiresAt: expiresAt, now: at) }
    }
}
