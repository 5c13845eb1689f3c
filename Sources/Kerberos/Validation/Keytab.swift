import Crypto
import Synchronization

/// The keys of one service: every key version it still accepts (the current one and, after a rotation, the previous
/// one for tickets already issued). The keys each ticket needs (Ke and Ki for key usage 2, Kc for the PAC's server
/// checksum) are derived once, here.
public struct ServiceKeys: Sendable {
    public var keys: [KerberosKey] { prepared.map(\.key) }
    let prepared: [PreparedKey]

    /// A service key with its derived keys; a class, made once per key and shared, so that handing one to a
    /// validation is one reference, not a copy of each key it holds.
    final class PreparedKey: Sendable {
        let key: KerberosKey
        let profile: EncryptionProfile
        /// Ke and Ki for the ticket's encrypted part (RFC 4120 key usage 2).
        let ticket: UsageKeys
        /// The HMAC keyed with Kc for the PAC's server checksum (key usage 17, KERB_NON_KERB_CKSUM_SALT).
        let pacChecksum: HMACState

        init(_ key: KerberosKey) throws {
            self.key = key
            profile = try key.encryptionType.profile()
            ticket = try profile.usageKeys(key.key, usage: 2)
            pacChecksum = HMACState(profile: profile, key: try profile.deriveKey(key.key, usage: 17, purpose: .checksum))
        }

        /// The long-term key's derived keys, derived once per process: a server makes its ``ServiceKeys`` afresh for
        /// each request from the keys in its store, and each key's Ke, Ki and Kc are three AES encryptions.
        static func cached(_ key: KerberosKey) throws -> PreparedKey {
            let id = CacheKey(type: key.encryptionType.rawValue, version: key.version, bytes: key.keyBytes)
            if let prepared = cache.withLock({ $0[id] }) { return prepared }
            let prepared = try PreparedKey(key)
            cache.withLock { cache in
                // A handful of keys per tenant (the current version and one retiring); a bound against growth all
                // the same, forgetting everything when it is reached.
                if cache.count >= 256 { cache.removeAll() }
                cache[id] = prepared
            }
            return prepared
        }

        private struct CacheKey: Hashable {
            let type: Int32
            let version: UInt32
            let bytes: [UInt8]
        }
        private static let cache = Mutex<[CacheKey: PreparedKey]>([:])
    }

    public init(keys: [KerberosKey]) throws {
        prepared = try keys.map(PreparedKey.cached)
    }

    /// Reads an MIT keytab (file format 0x0502, as `samba-tool domain exportkeytab` and `ktutil` write), keeping
    /// the AES entries and skipping RC4 and DES ones, which this library refuses anyway.
    public init(keytab bytes: some Collection<UInt8>) throws {
        let data = Array(bytes)
        guard data.count >= 2, data[0] == 0x05, data[1] == 0x02 else {
            throw KerberosError.malformed("not a version 0x0502 keytab")
        }
        var keys = [KerberosKey]()
        var offset = 2
        func bigEndian(_ at: Int, _ count: Int) throws -> UInt32 {
            guard at + count <= data.count else { throw KerberosError.malformed("the keytab ends early") }
            return data[at..<(at + count)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        while offset + 4 <= data.count {
            let size = Int32(bitPattern: try bigEndian(offset, 4))
            offset += 4
            guard size != 0 else { break }
            let length = Int(size.magnitude)
            guard offset + length <= data.count else { throw KerberosError.malformed("a keytab entry ends early") }
            defer { offset += length }
            if size < 0 { continue }  // a hole left by a removed entry
            var at = offset
            let components = Int(try bigEndian(at, 2))
            at += 2
            for _ in 0...components {  // the realm, then each component: a 16-bit length and the bytes
                at += 2 + Int(try bigEndian(at, 2))
            }
            at += 4 + 4  // name type, timestamp
            var version = try bigEndian(at, 1)
            at += 1
            let type = EncryptionType(rawValue: Int32(try bigEndian(at, 2)))
            let keyLength = Int(try bigEndian(at + 2, 2))
            at += 4
            guard at + keyLength <= offset + length else { throw KerberosError.malformed("a keytab key ends early") }
            let key = data[at..<(at + keyLength)]
            at += keyLength
            if at + 4 <= offset + length, case let wide = try bigEndian(at, 4), wide != 0 { version = wide }
            guard (try? type.profile()) != nil else { continue }
            keys.append(try KerberosKey(encryptionType: type, version: version, bytes: key))
        }
        prepared = try keys.map(PreparedKey.cached)
    }

    /// The keys that may have encrypted a ticket of this type and key version (usually one).
    func candidates(type: EncryptionType, version: UInt32?) throws -> LazyFilterSequence<[PreparedKey]> {
        guard prepared.contains(where: { version == nil || $0.key.version == version }) else {
            let known = Set(prepared.map(\.key.version)).sorted().map(String.init).joined(separator: ", ")
            throw KerberosError(
                .unknownKeyVersion,
                "SEC_E_LOGON_DENIED (KRB_AP_ERR_BADKEYVER): no key for the ticket's key version "
                    + "\(version.map(String.init) ?? "-") (this service has \(known.isEmpty ? "none" : known))")
        }
        let matching = prepared.lazy.filter {
            (version == nil || $0.key.version == version) && $0.key.encryptionType == type
        }
        guard matching.first != nil else {
            throw KerberosError(
                .unknownKeyVersion,
                "SEC_E_LOGON_DENIED (KRB_AP_ERR_NOKEY): key version \(version.map(String.init) ?? "-") has no \(type) key")
        }
        return matching
    }
}
