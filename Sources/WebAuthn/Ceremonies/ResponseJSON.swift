/// Reading the browser's `PublicKeyCredential.toJSON()` (WebAuthn Level 3, §5.1.8–5.1.9), so a server can pass
/// what `fetch()` sent straight to the verifier. Every binary member is base64url. Read in one pass: this is on
/// every sign-in's path.
extension RegistrationResponse {
    /// Parses `RegistrationResponseJSON`. A missing or badly encoded member is `response.malformed`.
    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        let fields = try ResponseJSON.read(bytes)
        guard let clientDataJSON = fields.clientDataJSON else { throw ResponseJSON.missing("clientDataJSON") }
        guard let attestationObject = fields.attestationObject else { throw ResponseJSON.missing("attestationObject") }
        self.init(id: fields.id, rawID: fields.rawID, type: fields.type, clientDataJSON: clientDataJSON, attestationObject: attestationObject)
    }

    /// Parses Microsoft Graph's `webauthnPublicKeyCredential`, the `publicKeyCredential` of `POST
    /// …/authentication/fido2Methods`: `id`, `response` (`clientDataJSON`, `attestationObject`) and
    /// `clientExtensionResults`, each object possibly with an `@odata.type`. It has no `rawId` and no `type`: the raw
    /// id is `id` decoded and the type is `public-key`. The browser's `RegistrationResponseJSON`, which has both, is
    /// read as well; when they are present they are checked as usual.
    public init(graphJSON bytes: [UInt8]) throws(WebAuthnError) {
        let fields = try ResponseJSON.read(bytes, rawIDAndTypeImplied: true)
        guard let clientDataJSON = fields.clientDataJSON else { throw ResponseJSON.missing("clientDataJSON") }
        guard let attestationObject = fields.attestationObject else { throw ResponseJSON.missing("attestationObject") }
        self.init(id: fields.id, rawID: fields.rawID, type: fields.type, clientDataJSON: clientDataJSON, attestationObject: attestationObject)
    }
}

extension AuthenticationResponse {
    /// Parses `AuthenticationResponseJSON`. `userHandle` may be absent or null (U2F keys have none).
    public init(json bytes: [UInt8]) throws(WebAuthnError) {
        let fields = try ResponseJSON.read(bytes)
        guard let clientDataJSON = fields.clientDataJSON else { throw ResponseJSON.missing("clientDataJSON") }
        guard let authenticatorData = fields.authenticatorData else { throw ResponseJSON.missing("authenticatorData") }
        guard let signature = fields.signature else { throw ResponseJSON.missing("signature") }
        self.init(id: fields.id, rawID: fields.rawID, type: fields.type, clientDataJSON: clientDataJSON,
                  authenticatorData: authenticatorData, signature: signature, userHandle: fields.userHandle)
    }
}

struct ResponseJSON {
    var id = ""
    var rawID: [UInt8] = []
    var type = ""
    var clientDataJSON: [UInt8]?
    var attestationObject: [UInt8]?
    var authenticatorData: [UInt8]?
    var signature: [UInt8]?
    var userHandle: [UInt8]?

    static let outer = JSONObjectWalker(["id", "rawId", "type", "response"])
    static let inner = JSONObjectWalker(["clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle"])

    static func missing(_ name: String) -> WebAuthnError {
        WebAuthnError(.responseMalformed, "response.\(name) is missing or not base64url")
    }

    /// - Parameter rawIDAndTypeImplied: Graph's shape: an absent `rawId` is `id` decoded, an absent `type` `public-key`.
    static func read(_ bytes: [UInt8], rawIDAndTypeImplied: Bool = false) throws(WebAuthnError) -> ResponseJSON {
        var fields = ResponseJSON()
        var reader = JSONReader(bytes: bytes)
        var problem: String?
        var sawID = false, sawRawID = false, sawType = false, sawResponse = false
        let ok = outer.walk(&reader) { member, reader in
            switch member {
            case 0:
                guard let id = reader.stringValue() else { problem = "\"id\" is not a string"; return false }
                fields.id = id
                sawID = true
            case 1:
                guard let raw = reader.base64URLValue() else { problem = "\"rawId\" is not base64url"; return false }
                fields.rawID = raw
                sawRawID = true
            case 2:
                guard let type = reader.stringValue() else { problem = "\"type\" is not a string"; return false }
                fields.type = type
                sawType = true
            default:
                sawResponse = true
                return inner.walk(&reader, depth: 1) { member, reader in
                    if member == 4, reader.index < reader.bytes.count, reader.bytes[reader.index] == UInt8(ascii: "n") {
                        return reader.value(depth: 2) == .null
                    }
                    guard let value = reader.base64URLValue() else {
                        problem = "response.\(String(decoding: inner.names[member], as: UTF8.self)) is not base64url"
                        return false
                    }
                    switch member {
                    case 0: fields.clientDataJSON = value
                    case 1: fields.attestationObject = value
                    case 2: fields.authenticatorData = value
                    case 3: fields.signature = value
                    default: fields.userHandle = value
                    }
                    return true
                }
            }
            return true
        }
        reader.whitespace()
        guard ok, reader.index == bytes.count else {
            throw WebAuthnError(.responseMalformed, "the credential is not a valid JSON object" + (problem.map { ": \($0)" } ?? ""))
        }
        guard sawID else { throw WebAuthnError(.responseMalformed, "the credential has no string \"id\"") }
        if rawIDAndTypeImplied {
            if !sawRawID {
                guard let raw = Base64URL.decode(fields.id), !raw.isEmpty else {
                    throw WebAuthnError(.responseMalformed, "the credential's \"id\" is not base64url")
                }
                fields.rawID = raw
            }
            if !sawType { fields.type = "public-key" }
        } else {
            guard sawRawID else { throw WebAuthnError(.responseMalformed, "\"rawId\" is missing or not base64url") }
        }
        guard sawResponse else { throw WebAuthnError(.responseMalformed, "the credential has no \"response\" object") }
        return fields
    }
}
