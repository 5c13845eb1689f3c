import Crypto
public import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension DirectoryService {
    /// Adds a client secret to an application or service principal (`addPassword`).
    ///
    /// Returns the `passwordCredential` with `secretText`, which is shown this once. The object lists the credential
    /// with Graph's properties only; the secret's salted digest is a ``ClientSecretRecord`` written in the same
    /// transaction, so no Graph read, backup or snapshot holds it.
    public func addPassword(tenant: String, objectId: String, displayName: String?, endDateTime: String?,
                            actor: Actor) async throws -> JSONValue {
        let secret = Secrets.makeClientSecret()
        let now = clock.now
        let keyId = Identifier.make()
        let end = endDateTime ?? Timestamp.format(now.addingTimeInterval(2 * 365 * 86_400))
        guard let endDate = Timestamp.parse(end), endDate > now else {
            throw DirectoryError.badRequest("Invalid value specified for property 'endDateTime': it must be a future date and time.")
        }
        let credential: [String: JSONValue] = [
            "keyId": .string(keyId), "displayName": .optional(displayName), "hint": .string(String(secret.prefix(3))),
            "startDateTime": .string(Timestamp.format(now)), "endDateTime": .string(Timestamp.format(endDate)),
            "customKeyIdentifier": nil, "secretText": nil,
        ]
        let digest = Secrets.digest(secret)
        try await appendCredential(tenant: tenant, objectId: objectId, list: "passwordCredentials", credential: credential,
                                   activity: "Update application – Certificates and secrets management ", actor: actor) { tx, object in
            try await tx.insertCredential(ClientSecretRecord(id: keyId, objectID: object.id, digest: digest, expires: endDate), tenant: tenant)
        }
        var shown = credential
        shown["secretText"] = .string(secret)
        return .object(shown)
    }

    /// Removes a client secret by key id (`removePassword`): the credential and its digest's record go in one
    /// transaction, so the secret stops working with the response.
    public func removePassword(tenant: String, objectId: String, keyId: String, actor: Actor) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard var object = try await tx.object(tenant: tenant, id: objectId), object.deletedAt == nil,
                  object.kind == .application || object.kind == .servicePrincipal
            else { throw DirectoryError.notFound(objectId) }
            let list = object.body["passwordCredentials"]?.arrayValue ?? []
            let kept = list.filter { $0["keyId"]?.stringValue?.lowercased() != keyId.lowercased() }
            guard kept.count < list.count else {
                throw DirectoryError.badRequest("No password credential found with keyId '\(keyId)'.")
            }
            let version = object.version
            object.body["passwordCredentials"] = .array(kept)
            object.version += 1
            try await tx.update(object, expectedVersion: version)
            try await tx.deleteCredential(tenant: tenant, kind: .clientSecret, id: keyId)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: objectId, kind: object.kind, operation: "update",
                activity: "Update application – Certificates and secrets management ", actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(object.body["displayName"]?.stringValue), "removedKeyId": .string(keyId)]))
        }
    }

    /// Appends `credential` to the object's `list`, and runs `alongside` (the credential's secret side) with the object
    /// in the same transaction.
    func appendCredential(tenant: String, objectId: String, list: String, credential: [String: JSONValue],
                          activity: String, actor: Actor,
                          alongside: @escaping @Sendable (any DirectoryTransaction, StoredObject) async throws -> Void) async throws {
        let now = self.now
        try await write(tenant) { tx in
            guard var object = try await tx.object(tenant: tenant, id: objectId), object.deletedAt == nil,
                  object.kind == .application || object.kind == .servicePrincipal
            else { throw DirectoryError.notFound(objectId) }
            var items = object.body[list]?.arrayValue ?? []
            guard items.count < 64 else { throw DirectoryError.badRequest("Too many credentials on this object.") }
            items.append(.object(credential))
            let version = object.version
            object.body[list] = .array(items)
            object.version += 1
            try await tx.update(object, expectedVersion: version)
            try await alongside(tx, object)
            try await tx.record(ChangeRecord(
                tenant: tenant, objectId: objectId, kind: object.kind, operation: "update", activity: activity,
                actor: actor.initiatedBy, at: now,
                details: ["displayName": .optional(object.body["displayName"]?.stringValue),
                          "addedKeyId": credential["keyId"] ?? nil]))
        }
    }
}

/// Secrets: generation, digests and constant-time comparison. Secrets are never logged or stored in clear.
public enum Secrets {
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.~")

    /// A client secret in Entra's shape: 40 characters with `8Q~` after a three-character hint.
    public static func makeClientSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        func chars(_ n: Int) -> String { String((0..<n).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] }) }
        return chars(3) + "8Q~" + chars(34)
    }

    /// Random bytes as base64url without padding (for tokens, codes and ids that must be unguessable).
    public static func randomToken(bytes: Int = 32) -> String {
        Base64URL.encode(randomBytes(bytes))
    }

    /// `count` bytes from the system's CSPRNG in one `read` of `/dev/urandom`, held open (the kernel's generator, as
    /// `getrandom`'s, seeded long before a server runs); `SystemRandomNumberGenerator` made one `getrandom` call per 8
    /// bytes, about ten a passkey sign-in. For secrets: nothing is read ahead or kept between calls.
    public static func randomBytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        #if canImport(Glibc)
        let device = urandom
        if device >= 0 {
            out.withUnsafeMutableBytes { raw in
                while done < count {
                    let got = read(device, raw.baseAddress! + done, count - done)
                    if got > 0 { done += got } else if got < 0, errno == EINTR { continue } else { break }
                }
            }
        }
        #endif
        // Where the device cannot be read, the standard library's generator (it aborts rather than give weak bytes).
        var generator = SystemRandomNumberGenerator()
        while done < count {
            out[done] = UInt8(truncatingIfNeeded: generator.next() as UInt64)
            done += 1
        }
        return out
    }

    #if canImport(Glibc)
    /// `/dev/urandom`, opened once for the process's life (-1 where it cannot be opened).
    private static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
    #endif

    /// What is stored of a secret: `s1$<salt>$<SHA-256 of salt and secret>`, with 16 random bytes of salt, so equal
    /// secrets never share a digest and no table of digests can be built ahead. Secrets are random and long (client
    /// secrets, refresh tokens, device codes) or short-lived and single-use (Temporary Access Passes).
    public static func digest(_ secret: String) -> String {
        let salt = randomBytes(16)
        return "s1$" + Hex.encode(salt) + "$" + Hex.encode(SHA256.hash(data: salt + Array(secret.utf8)))
    }

    /// The unsalted SHA-256 of a value, for a lookup key that must be found again from the value (a spent
    /// authorization code's single-use key), never for verifying a stored secret.
    public static func fingerprint(_ value: String) -> String {
        Hex.encode(SHA256.hash(data: Data(value.utf8)))
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEquals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    /// True when `secret` hashes to `storedDigest` (salted, or an unsalted digest stored before salts), compared in
    /// constant time.
    public static func matches(_ secret: String, digest storedDigest: String) -> Bool {
        let parts = storedDigest.split(separator: "$", omittingEmptySubsequences: false)
        if parts.count == 3, parts[0] == "s1", let salt = Hex.decode(parts[1]), salt.count == 16 {
            return constantTimeEquals(Array(Hex.encode(SHA256.hash(data: salt + Array(secret.utf8))).utf8), Array(parts[2].utf8))
        }
        return constantTimeEquals(Array(fingerprint(secret).utf8), Array(storedDigest.utf8))
    }
}

/// base64url (RFC 4648 §5) without padding. Table-driven: it is on the token hot path.
public enum Base64URL {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        // Accept the standard alphabet too, as lenient decoders do.
        table[Int(UInt8(ascii: "+"))] = 62
        table[Int(UInt8(ascii: "/"))] = 63
        return table
    }()

    public static func encode(_ data: some DataProtocol) -> String {
        let bytes = Array(data)
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest > 0 {
            let n = UInt32(bytes[i]) << 16 | (rest == 2 ? UInt32(bytes[i + 1]) << 8 : 0)
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            if rest == 2 { out.append(alphabet[Int(n >> 6 & 63)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes base64url; padding is optional (some clients, MSAL's `x5t` among them, send it).
    public static func decode(_ text: String) -> Data? {
        var input = Array(text.utf8)
        while input.last == UInt8(ascii: "=") { input.removeLast() }
        guard input.count % 4 != 1 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(input.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for c in input {
            let v = reverse[Int(c)]
            guard v != 0xFF else { return nil }
            buffer = buffer << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        return Data(out)
    }
}

/// Lowercase hexadecimal.
public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of lowercase or uppercase hexadecimal; nil for anything else.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 65...70: c - 55
            case 97...102: c - 87
            default: nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let high = value(utf8[index]), let low = value(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
        }
        return out
    }
}
