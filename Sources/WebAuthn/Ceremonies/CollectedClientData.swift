/// The browser's collected client data (WebAuthn §5.8.1), parsed from `clientDataJSON`.
public struct CollectedClientData: Sendable {
    public let type: String
    /// The challenge as the browser saw it, decoded from base64url.
    public let challenge: [UInt8]
    public let origin: String
    public let crossOrigin: Bool
    public let topOrigin: String?
    /// `tokenBinding.status`, when present.
    public let tokenBindingStatus: String?

    /// Parses `clientDataJSON`. Members this library does not know are tolerated, as §5.8.1 requires.
    public init(json bytes: some Collection<UInt8>) throws(WebAuthnError) {
        guard let value = JSON.parse(bytes), value.object != nil else {
            throw WebAuthnError(.clientDataMalformed, "clientDataJSON is not a JSON object")
        }
        guard let type = value["type"]?.string else { throw WebAuthnError(.clientDataMalformed, "clientDataJSON has no string \"type\"") }
        guard let challengeText = value["challenge"]?.string, let challenge = Base64URL.decode(challengeText) else {
            throw WebAuthnError(.clientDataMalformed, "clientDataJSON has no base64url \"challenge\"")
        }
        guard let origin = value["origin"]?.string else { throw WebAuthnError(.clientDataMalformed, "clientDataJSON has no string \"origin\"") }
        self.type = type
        self.challenge = challenge
        self.origin = origin
        switch value["crossOrigin"] {
        case nil, .null?: crossOrigin = false
        case .bool(let b)?: crossOrigin = b
        default: throw WebAuthnError(.clientDataMalformed, "clientDataJSON \"crossOrigin\" is not a boolean")
        }
        switch value["topOrigin"] {
        case nil, .null?: topOrigin = nil
        case .string(let s)?: topOrigin = s
        default: throw WebAuthnError(.clientDataMalformed, "clientDataJSON \"topOrigin\" is not a string")
        }
        tokenBindingStatus = value["tokenBinding"]?["status"]?.string
    }
}
