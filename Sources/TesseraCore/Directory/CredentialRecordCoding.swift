import Foundation

/// A credential record that writes and reads its stored JSON itself, member by member, instead of through `Codable`'s
/// reflection (`JSONEncoder` and `JSONDecoder` were about 3% of a passkey sign-in's CPU on SQLite: a session, a
/// session-client record and a refresh token written, a session read, each time). The text is the one
/// `CredentialCoding.encoder` writes for the same record — keys sorted, members that are nil left out, instants as
/// seconds since 1970 — so rows written either way read back either way.
public protocol HandCodedCredential: CredentialRecord {
    /// The members `Codable` would write, nil ones left out.
    var jsonMembers: [String: JSONValue] { get }
    /// The record from its stored members; nil when they are not what this type writes (the `Codable` decoder then
    /// reads them, and says what is wrong).
    init?(jsonMembers: [String: JSONValue])
}

extension CredentialCoding {
    /// The stored JSON of `record`: written member by member for a ``HandCodedCredential`` whose strings hold no control
    /// character (which `JSONEncoder` might escape otherwise than ``JSONValue`` does), else by `Codable`.
    static func payload<R: CredentialRecord>(_ record: R) throws -> String {
        if let coded = record as? any HandCodedCredential {
            let value = JSONValue.object(coded.jsonMembers)
            if !value.holdsControlCharacter { return value.serialized }
        }
        return String(decoding: try encoder.encode(record), as: UTF8.self)
    }

    /// The record of type `R` that `payload` stores.
    static func record<R: CredentialRecord>(_ type: R.Type, from payload: String) throws -> R {
        if let coded = R.self as? any HandCodedCredential.Type, case .object(let members)? = try? JSONParser.parse(payload),
           let record = coded.init(jsonMembers: members) as? R {
            return record
        }
        return try decoder.decode(R.self, from: Data(payload.utf8))
    }
}

extension JSONValue {
    /// Whether a key or string anywhere in the value holds a byte below 0x20.
    var holdsControlCharacter: Bool {
        func control(_ s: String) -> Bool {
            // A native string's bytes in place (the iterator's per-byte path was most of this check's cost).
            s.utf8.withContiguousStorageIfAvailable { $0.contains { $0 < 0x20 } } ?? s.utf8.contains { $0 < 0x20 }
        }
        switch self {
        case .string(let s): return control(s)
        case .array(let elements): return elements.contains { $0.holdsControlCharacter }
        case .object(let members): return members.contains { control($0.key) || $0.value.holdsControlCharacter }
        default: return false
        }
    }
}

/// Reading and writing stored members as `Codable` does.
enum StoredMember {
    static func date(_ date: Date) -> JSONValue { .double(date.timeIntervalSince1970) }
    static func date(_ value: JSONValue?) -> Date? { value?.doubleValue.map { Date(timeIntervalSince1970: $0) } }
    static func strings(_ strings: [String]) -> JSONValue { .array(strings.map { .string($0) }) }

    /// A required array of strings; nil when it is missing or holds anything else.
    static func strings(_ value: JSONValue?) -> [String]? {
        guard case .array(let elements)? = value else { return nil }
        var strings: [String] = []
        strings.reserveCapacity(elements.count)
        for element in elements {
            guard case .string(let s) = element else { return nil }
            strings.append(s)
        }
        return strings
    }

    /// An optional member: `.some(nil)` when it is missing or null, nil when it is there but not of its type.
    static func optional<T>(_ value: JSONValue?, _ read: (JSONValue) -> T?) -> T?? {
        guard let value, value != .null else { return .some(nil) }
        return read(value).map { .some($0) }
    }

    static func string(_ value: JSONValue) -> String? { value.stringValue }
    static func int64(_ value: JSONValue?) -> Int64? {
        if case .int(let i)? = value { return i }
        return nil
    }
}

extension SignInGrant {
    var jsonMembers: [String: JSONValue] {
        var members: [String: JSONValue] = [
            "userID": .string(userID), "clientID": .string(clientID), "redirectURI": .string(redirectURI), "scope": .string(scope),
            "sessionID": .string(sessionID), "authTime": .int(authTime), "amr": StoredMember.strings(amr), "acrs": StoredMember.strings(acrs),
        ]
        if let aaguid { members["aaguid"] = .string(aaguid) }
        if let acr { members["acr"] = .string(acr) }
        if let grantID { members["grantID"] = .string(grantID) }
        if let userinfoClaims { members["userinfoClaims"] = StoredMember.strings(userinfoClaims) }
        return members
    }

    init?(jsonMembers m: [String: JSONValue]) {
        guard let userID = m["userID"]?.stringValue, let clientID = m["clientID"]?.stringValue,
              let redirectURI = m["redirectURI"]?.stringValue, let scope = m["scope"]?.stringValue,
              let sessionID = m["sessionID"]?.stringValue, let authTime = StoredMember.int64(m["authTime"]),
              let amr = StoredMember.strings(m["amr"]), let acrs = StoredMember.strings(m["acrs"]),
              case .some(let aaguid) = StoredMember.optional(m["aaguid"], StoredMember.string),
              case .some(let acr) = StoredMember.optional(m["acr"], StoredMember.string),
              case .some(let grantID) = StoredMember.optional(m["grantID"], StoredMember.string),
              case .some(let userinfoClaims) = StoredMember.optional(m["userinfoClaims"], { StoredMember.strings($0) })
        else { return nil }
        self.init(userID: userID, clientID: clientID, redirectURI: redirectURI, scope: scope, sessionID: sessionID, authTime: authTime,
                  amr: amr, aaguid: aaguid, acrs: acrs, acr: acr, grantID: grantID, userinfoClaims: userinfoClaims)
    }
}

extension RefreshTokenRecord: HandCodedCredential {
    public var jsonMembers: [String: JSONValue] {
        var members: [String: JSONValue] = [
            "id": .string(id), "digest": .string(digest), "grant": .object(grant.jsonMembers), "confidential": .bool(confidential),
            "familyID": .string(familyID), "expires": StoredMember.date(expires), "state": .string(state.rawValue),
        ]
        if let issuedForCode { members["issuedForCode"] = .string(issuedForCode) }
        return members
    }

    public init?(jsonMembers m: [String: JSONValue]) {
        guard let id = m["id"]?.stringValue, let digest = m["digest"]?.stringValue, case .object(let g)? = m["grant"],
              let grant = SignInGrant(jsonMembers: g), let confidential = m["confidential"]?.boolValue,
              let familyID = m["familyID"]?.stringValue, let expires = StoredMember.date(m["expires"]),
              let state = m["state"]?.stringValue.flatMap(State.init(rawValue:)),
              case .some(let issuedForCode) = StoredMember.optional(m["issuedForCode"], StoredMember.string)
        else { return nil }
        self.init(id: id, digest: digest, grant: grant, confidential: confidential, familyID: familyID, issuedForCode: issuedForCode,
                  expires: expires, state: state)
    }
}

extension SignInSessionRecord: HandCodedCredential {
    public var jsonMembers: [String: JSONValue] {
        var members: [String: JSONValue] = [
            "id": .string(id), "userID": .string(userID), "authTime": .int(authTime), "amr": StoredMember.strings(amr),
            "expires": StoredMember.date(expires), "state": .string(state.rawValue),
        ]
        if let aaguid { members["aaguid"] = .string(aaguid) }
        return members
    }

    public init?(jsonMembers m: [String: JSONValue]) {
        guard let id = m["id"]?.stringValue, let userID = m["userID"]?.stringValue, let authTime = StoredMember.int64(m["authTime"]),
              let amr = StoredMember.strings(m["amr"]), let expires = StoredMember.date(m["expires"]),
              let state = m["state"]?.stringValue.flatMap(State.init(rawValue:)),
              case .some(let aaguid) = StoredMember.optional(m["aaguid"], StoredMember.string)
        else { return nil }
        self.init(id: id, userID: userID, authTime: authTime, amr: amr, aaguid: aaguid, expires: expires, state: state)
    }
}
