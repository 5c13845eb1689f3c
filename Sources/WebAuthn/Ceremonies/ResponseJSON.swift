/// Reading the browser's `PublicKeyCredential.toJSON()` (WebAuthn Level 3, §5.1.8–5.1.9), so a server can pass
/// what `fetch()` sent straight to the verifier. Every binary member is base64url.
extension RegistrationResponse {
    /// Parses `RegistrationResponseJSON`. A missing or badly encoded member is `response.malformed`.
    public init(json bytes: some Collection<UInt8>) throws(WebAuthnError) {
        let (json, id, rawID, type) = try ResponseJSON.identity(bytes)
        let inner = json["response"]
        self.init(id: id, rawID: rawID, type: type,
                  clientDataJSON: try ResponseJSON.bytes(inner, "clientDataJSON"),
                  attestationObject: try ResponseJSON.bytes(inner, "attestationObject"))
    }
}

extension AuthenticationResponse {
    /// Parses `AuthenticationResponseJSON`. `userHandle` may be absent or null (U2F keys have none).
    public init(json bytes: some Collection<UInt8>) throws(WebAuthnError) {
        let (json, id, rawID, type) = try ResponseJSON.identity(bytes)
        let inner = json["response"]
        var userHandle: [UInt8]? = nil
        switch inner?["userHandle"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let decoded = Base64URL.decode(text) else { throw WebAuthnError(.responseMalformed, "response.userHandle is not base64url") }
            userHandle = decoded
        default: throw WebAuthnError(.responseMalformed, "response.userHandle is not a string")
        }
        self.init(id: id, rawID: rawID, type: type,
                  clientDataJSON: try ResponseJSON.bytes(inner, "clientDataJSON"),
                  authenticatorData: try ResponseJSON.bytes(inner, "authenticatorData"),
                  signature: try ResponseJSON.bytes(inner, "signature"), userHandle: userHandle)
    }
}

enum ResponseJSON {
    static func identity(_ bytes: some Collection<UInt8>) throws(WebAuthnError) -> (JSON, String, [UInt8], String) {
        guard let json = JSON.parse(bytes), json.object != nil else {
            throw WebAuthnError(.responseMalformed, "the credential is not a JSON object")
        }
        guard let id = json["id"]?.string else { throw WebAuthnError(.responseMalformed, "the credential has no string \"id\"") }
        guard json["response"]?.object != nil else { throw WebAuthnError(.responseMalformed, "the credential has no \"response\" object") }
        return (json, id, try Self.bytes(json, "rawId"), json["type"]?.string ?? "")
    }

    static func bytes(_ object: JSON?, _ key: String) throws(WebAuthnError) -> [UInt8] {
        guard let text = object?[key]?.string, let decoded = Base64URL.decode(text) else {
            throw WebAuthnError(.responseMalformed, "\"\(key)\" is missing or not base64url")
        }
        return decoded
    }
}
