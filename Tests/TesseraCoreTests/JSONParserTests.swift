import Testing
@testable import TesseraCore

@Suite("JSON parser")
struct JSONParserTests {
    @Test("parses every kind of value and serialises it back with sorted keys")
    func roundTrips() throws {
        let value = try JSONParser.parse(#"{"b":[1,2.5,true,false,null],"a":"x\"y\u00e9\n","c":{"d":-3}}"#)
        #expect(value["a"] == .string("x\"yé\n"))
        #expect(value["b"] == [1, .double(2.5), true, false, nil])
        #expect(value["c"]?["d"] == .int(-3))
        #expect(value.serialized == #"{"a":"x\"yé\n","b":[1,2.5,true,false,null],"c":{"d":-3}}"#)
    }

    @Test("decodes surrogate pairs")
    func surrogatePairs() throws {
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == .string("😀"))
    }

    @Test("refuses malformed documents without trapping", arguments: [
        "", "{", "[1,]", "{\"a\":}", "{\"a\" 1}", "tru", "01", "1.", "-", "\"abc", "\"\\x\"", "{\"a\":1}x",
        "\"\\ud800\"", "[1 2]", "{1:2}", "\"\u{01}\"", "nul", "{\"a\":1,\"a\":2}", "1e", "NaN",
    ])
    func refusesMalformed(_ text: String) {
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(text) }
    }

    @Test("refuses nesting deeper than the limit")
    func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse(deep) }
        #expect((try? JSONParser.parse(String(repeating: "[", count: 10) + String(repeating: "]", count: 10))) != nil)
    }

    @Test("keeps large integers exact and big numbers as doubles")
    func numbers() throws {
        #expect(try JSONParser.parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try JSONParser.parse("1e3") == .double(1000))
        #expect(throws: JSONParser.Failure.self) { try JSONParser.parse("1e999") }
    }
}

@Suite("Graph schema validation")
struct GraphValidatorTests {
    @Test("accepts a well-formed user")
    func acceptsUser() throws {
        try GraphValidator.validate([
            "accountEnabled": true, "displayName": "Ada", "businessPhones": ["+1 555"],
            "passwordProfile": ["password": "x", "forceChangePasswordNextSignIn": false],
            "employeeHireDate": "2026-01-01T00:00:00Z", "@odata.type": "#microsoft.graph.user",
        ], entity: "user")
    }

    @Test("refuses what Graph refuses", arguments: [
        (["nickname": "x"], "does not exist"),
        (["accountEnabled": "yes"], "expected a boolean"),
        (["businessPhones": "555"], "expected a collection"),
        (["businessPhones": [1]], "expected a string"),
        (["passwordProfile": ["pwd": "x"]], "does not exist"),
        (["employeeHireDate": "yesterday"], "ISO 8601"),
        (["otherMails": nil], "cannot be null"),
    ] as [([String: JSONValue], String)])
    func refuses(_ body: [String: JSONValue], _ fragment: String) {
        do {
            try GraphValidator.validate(body, entity: "user")
            Issue.record("accepted \(body)")
        } catch {
            #expect(error.code == .badRequest)
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test("checks enumeration members and polymorphic complex types")
    func enumsAndDerivedTypes() {
        #expect(throws: DirectoryError.self) {
            try GraphValidator.validate(["deviceOwnership": "x", "alternativeSecurityIds": [["type": "one"]]], entity: "device")
        }
    }
}
