public import Foundation

/// Internal records that hold or stand for a secret (sign-in sessions, refresh tokens, device codes, the digests of
/// Temporary Access Passes and client secrets) live in a table of their own, never in the Graph objects table: typed columns for what is looked up or swept, and the record's own
/// `Codable` JSON. Nothing here is reachable by a Graph query, a `$batch`, delta or a backup.

/// Which kind of record a row is.
public struct CredentialKind: RawRepresentable, Hashable, Sendable {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }

    public static let refreshToken = CredentialKind(rawValue: "refreshToken")
    public static let signInSession = CredentialKind(rawValue: "signInSession")
    public static let deviceCode = CredentialKind(rawValue: "deviceCode")
    public static let temporaryAccessPass = CredentialKind(rawValue: "temporaryAccessPass")
    public static let clientSecret = CredentialKind(rawValue: "clientSecret")
}

/// A record as the store keeps it: the columns it is found, changed and swept by, and its own JSON.
public struct CredentialRow: Sendable, Hashable {
    public var tenant: String
    public var id: String
    public var kind: CredentialKind
    /// The user the record belongs to (nil for a device code nobody approved yet): revocation deletes by it.
    public var userID: String?
    /// A group revoked together (a refresh token's family).
    public var family: String?
    /// A second key, unique per tenant and kind (a device code's user code, the digest of the authorization code a
    /// refresh token family began with).
    public var handle: String?
    /// Where the record is in its life (`unused`/`used`, `pending`/`approved`/`redeemed`): changed only by compare-and-set.
    public var state: String
    /// ISO 8601, UTC, whole seconds: the record is swept after this.
    public var expiresAt: String
    /// The record, as its type encodes it.
    public var payload: String

    public init(tenant: String, id: String, kind: CredentialKind, userID: String?, family: String?, handle: String?, state: String,
                expiresAt: String, payload: String) {
        self.tenant = tenant
        self.id = id
        self.kind = kind
        self.userID = userID
        self.family = family
        self.handle = handle
        self.state = state
        self.expiresAt = expiresAt
        self.payload = payload
    }
}

/// The credential records a read may see.
public protocol CredentialReader: Sendable {
    func credentialRow(tenant: String, kind: CredentialKind, id: String) async throws -> CredentialRow?
    func credentialRow(tenant: String, kind: CredentialKind, handle: String) async throws -> CredentialRow?
    /// A user's records of `kind`, by id.
    func credentialRows(tenant: String, kind: CredentialKind, userID: String) async throws -> [CredentialRow]
    /// The records of a family, by id.
    func credentialRows(tenant: String, kind: CredentialKind, family: String) async throws -> [CredentialRow]
}

/// The credential records' writes. Every one runs in the caller's transaction, so a code spent and its refresh token
/// issued, or a challenge spent and its session started, commit together.
public protocol CredentialWriter: CredentialReader {
    /// Adds a record; throws `DirectoryError.duplicate("handle")` when another record of its kind holds its handle, or
    /// `DirectoryError.duplicate("id")` when its id is taken.
    func insertCredential(_ row: CredentialRow) async throws
    /// Replaces a record (columns and payload) if its state is still `expectedState`: false when it is gone or another
    /// writer changed its state first. Of two concurrent spenders exactly one sees true.
    func replaceCredential(_ row: CredentialRow, expectedState: String) async throws -> Bool
    /// Deletes one record; false if it was not there.
    @discardableResult
    func deleteCredential(tenant: String, kind: CredentialKind, id: String) async throws -> Bool
    /// Deletes a user's records of `kinds` (every kind when nil); returns how many went.
    @discardableResult
    func deleteCredentials(tenant: String, userID: String, kinds: [CredentialKind]?) async throws -> Int
    /// Deletes every record of a family; returns how many went.
    @discardableResult
    func deleteCredentials(tenant: String, kind: CredentialKind, family: String) async throws -> Int
    /// Deletes at most `limit` of the tenant's records that expired before `cutoff`; returns how many went.
    func deleteExpiredCredentials(tenant: String, before cutoff: String, limit: Int) async throws -> Int
}

/// A record type kept in the credential store: `Codable`, with the columns the store queries derived from it.
public protocol CredentialRecord: Codable, Sendable {
    associatedtype State: RawRepresentable<String> & Codable & Sendable
    static var kind: CredentialKind { get }
    var id: String { get }
    var state: State { get }
    var expires: Date { get }
    /// The user it belongs to, when it belongs to one.
    var owner: String? { get }
    var family: String? { get }
    var handle: String? { get }
}

extension CredentialRecord {
    public var family: String? { nil }
    public var handle: String? { nil }

    /// The row that stores this record in `tenant`.
    public func row(tenant: String) throws -> CredentialRow {
        CredentialRow(tenant: tenant, id: id, kind: Self.kind, userID: owner, family: family, handle: handle, state: state.rawValue,
                      expiresAt: Timestamp.format(expires), payload: try CredentialCoding.payload(self))
    }

    /// The record a row stores; throws when the row is of another kind or its payload does not decode.
    public init(_ row: CredentialRow) throws {
        guard row.kind == Self.kind else {
            throw DirectoryError(.internalError, "A \(row.kind.rawValue) record was read as a \(Self.kind.rawValue).")
        }
        self = try CredentialCoding.record(Self.self, from: row.payload)
    }
}

/// How records are written as JSON: keys sorted (equal records store equal text), instants as seconds since 1970.
enum CredentialCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }()
}

extension CredentialReader {
    /// The record of type `R` with this id, if there is one.
    public func credential<R: CredentialRecord>(_ type: R.Type, tenant: String, id: String) async throws -> R? {
        try await credentialRow(tenant: tenant, kind: R.kind, id: id).map(R.init)
    }

    /// The record of type `R` holding this handle, if there is one.
    public func credential<R: CredentialRecord>(_ type: R.Type, tenant: String, handle: String) async throws -> R? {
        try await credentialRow(tenant: tenant, kind: R.kind, handle: handle).map(R.init)
    }

    /// A user's records of type `R`.
    public func credentials<R: CredentialRecord>(_ type: R.Type, tenant: String, userID: String) async throws -> [R] {
        try await credentialRows(tenant: tenant, kind: R.kind, userID: userID).map(R.init)
    }

    /// The records of type `R` in a family, by id.
    public func credentials<R: CredentialRecord>(_ type: R.Type, tenant: String, family: String) async throws -> [R] {
        try await credentialRows(tenant: tenant, kind: R.kind, family: family).map(R.init)
    }
}

extension CredentialWriter {
    public func insertCredential<R: CredentialRecord>(_ record: R, tenant: String) async throws {
        try await insertCredential(try record.row(tenant: tenant))
    }

    /// Stores `record` in place of the stored one if that one is still in `expected`; false when it is not (spent,
    /// approved or deleted by another writer first).
    public func replaceCredential<R: CredentialRecord>(_ record: R, tenant: String, ifStateIs expected: R.State) async throws -> Bool {
        try await replaceCredential(try record.row(tenant: tenant), expectedState: expected.rawValue)
    }
}

extension DirectoryStore {
    /// Deletes the tenant's credential records that expired before `now`, `batch` to a transaction; returns how many
    /// went. A spent refresh token is kept until it expires, so its reuse is still recognised until then.
    public func purgeExpiredCredentials(tenant: String, now: Date, batch: Int = 500) async throws -> Int {
        let cutoff = Timestamp.format(now)
        var purged = 0
        while true {
            let gone = try await write { tx in try await tx.deleteExpiredCredentials(tenant: tenant, before: cutoff, limit: batch) }
            purged += gone
            if gone < batch { return purged }
        }
    }
}
