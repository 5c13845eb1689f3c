import Testing
import WebAuthn

/// The one-pass client data reader: what it accepts, and every shape it must refuse.
@Suite struct ClientDataTests {
    static func parse(_ json: String) -> Result<CollectedClientData, WebAuthnError> {
        Result { () throws(WebAuthnError) in try CollectedClientData(json: Array(json.utf8)) }
    }

    @Test func readsTheMembersAndToleratesOthers() throws {
        let data = try Self.parse(#"{"type":"webauthn.get","challenge":"AQID","origin":"https://example.org","crossOrigin":false,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template","n":[1,{"a":null}]}"#).get()
        #expect(data.type == "webauthn.get" && data.challenge == [1, 2, 3] && data.origin == "https://example.org" && !data.crossOrigin)
    }

    @Test func readsEscapedStringsAndLegacyShapes() throws {
        // Android escapes slashes; Firefox once put the challenge first; tokenBinding was once a string.
        let data = try Self.parse(#" { "challenge" : "AQID", "origin":"https:\/\/example.org", "type":"webauthn.create", "tokenBinding":"unused", "topOrigin":null } "#).get()
        #expect(data.origin == "https://example.org" && data.type == "webauthn.create" && data.topOrigin == nil && data.tokenBindingStatus == nil)
        let escapedKey = try Self.parse(#"{"\u0074ype":"x","type":"webauthn.get","challenge":"AQID","origin":"o"}"#).get()
        #expect(escapedKey.type == "webauthn.get")
    }

    @Test(arguments: [
        #"{"type":"webauthn.get","type":"webauthn.create","challenge":"AQID","origin":"o"}"#,   // a defined member twice
        #"{"x":1,"x":2,"type":"webauthn.get","challenge":"AQID","origin":"o"}"#,                 // another member twice
        #"{"type":"webauthn.get","challenge":"AQID"}"#,                                           // no origin
        #"{"type":"webauthn.get","challenge":"AQ=D","origin":"o"}"#,                              // challenge not base64url
        #"{"type":7,"challenge":"AQID","origin":"o"}"#,                                           // type not a string
        #"{"type":"webauthn.get","challenge":"AQID","origin":"o","crossOrigin":"yes"}"#,          // crossOrigin not a boolean
        #"{"type":"webauthn.get","challenge":"AQID","origin":"o"} {}"#,                           // trailing content
        #"{"type":"webauthn.get","challenge":"AQID","origin":"o","x":[1,}"#,                      // invalid JSON in another member
        #"["type"]"#, "", #"{"type":"webauthn.get","challenge":"AQID","origin":"o""#,
    ])
    func refusesMalformedClientData(_ json: String) {
        guard case .failure(let error) = Self.parse(json) else {
            Issue.record("accepted \(json)")
            return
        }
        #expect(error.code == .clientDataMalformed)
    }

    @Test func base64urlMatchesWithoutDecoding() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Base64URL.encode(bytes)
            #expect(Base64URL.matches(text, bytes))
            #expect(Base64URL.decode(text) == bytes)
            if length > 0 {
                var other = bytes
                other[length - 1] ^= 0x01
                #expect(!Base64URL.matches(text, other))
                #expect(!Base64URL.matches(text + "A", bytes))
            }
        }
    }
}
