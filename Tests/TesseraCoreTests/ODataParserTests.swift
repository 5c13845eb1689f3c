import Testing
@testable import TesseraCore

private func path(_ text: String) -> PropertyPath {
    PropertyPath(text.split(separator: "/").map(String.init))
}

private func variable(_ text: String = "") -> PropertyPath {
    PropertyPath(text.split(separator: "/").map(String.init), isLambdaVariable: true)
}

private func eq(_ property: String, _ value: ODataLiteral) -> FilterExpression {
    .compare(path(property), .eq, value)
}

private let skuGUID = "6fd2c87f-b296-42f0-b197-1e91e994b900"

// MARK: - $filter

@Test("Filter parser builds the expected tree for each supported construct", arguments: [
    ("displayName eq 'John'", eq("displayName", .string("John"))),
    ("accountEnabled ne false", .compare(path("accountEnabled"), .ne, .bool(false))),
    ("accountEnabled eq TRUE", eq("accountEnabled", .bool(true))),
    ("employeeId eq null", eq("employeeId", .null)),
    ("age gt 42", .compare(path("age"), .gt, .int(42))),
    ("age ge -7", .compare(path("age"), .ge, .int(-7))),
    ("score lt 1.5", .compare(path("score"), .lt, .double(1.5))),
    ("score le 1e3", .compare(path("score"), .le, .double(1000))),
    ("createdDateTime ge 2024-01-01T00:00:00Z",
     .compare(path("createdDateTime"), .ge, .dateTimeOffset("2024-01-01T00:00:00Z"))),
    // A date-only literal, as Microsoft's list-users example writes it, is midnight UTC.
    ("createdDateTime ge 2021-11-01", .compare(path("createdDateTime"), .ge, .dateTimeOffset("2021-11-01T00:00:00Z"))),
    ("assignedLicenses/$count eq 0", .compare(path("assignedLicenses/$count"), .eq, .int(0))),
    ("isof('microsoft.graph.countryNamedLocation')", .isOf("countryNamedLocation")),
    ("createdDateTime lt 2024-02-29T10:30:00.123+05:30",
     .compare(path("createdDateTime"), .lt, .dateTimeOffset("2024-02-29T10:30:00.123+05:30"))),
    ("id eq 6FD2C87F-B296-42F0-B197-1E91E994B900", eq("id", .guid(skuGUID))),
    ("onPremisesExtensionAttributes/extensionAttribute1 eq 'x'",
     eq("onPremisesExtensionAttributes/extensionAttribute1", .string("x"))),
    ("startswith(displayName,'Jo')", .startsWith(path("displayName"), "Jo")),
    ("STARTSWITH( displayName , 'Jo' )", .startsWith(path("displayName"), "Jo")),
    ("endswith(mail,'@contoso.com')", .endsWith(path("mail"), "@contoso.com")),
    ("contains(displayName,'oh')", .contains(path("displayName"), "oh")),
    ("startswith(displayName,'A') eq false", .not(.startsWith(path("displayName"), "A"))),
    ("startswith(displayName,'A') eq true", .startsWith(path("displayName"), "A")),
    ("userType in ('Member', 'Guest')", .in(path("userType"), [.string("Member"), .string("Guest")])),
    ("id IN (1)", .in(path("id"), [.int(1)])),
    ("proxyAddresses/any(p:p eq 'smtp:x@y')",
     .any(collection: path("proxyAddresses"), variable: "p", predicate: .compare(variable(), .eq, .string("smtp:x@y")))),
    ("proxyAddresses/any(p:startswith(p,'SMTP:'))",
     .any(collection: path("proxyAddresses"), variable: "p", predicate: .startsWith(variable(), "SMTP:"))),
    ("assignedLicenses/any(x:x/skuId eq \(skuGUID))",
     .any(collection: path("assignedLicenses"), variable: "x",
          predicate: .compare(variable("skuId"), .eq, .guid(skuGUID)))),
    ("assignedLicenses/all(x: x/skuId ne \(skuGUID))",
     .all(collection: path("assignedLicenses"), variable: "x",
          predicate: .compare(variable("skuId"), .ne, .guid(skuGUID)))),
    ("memberOf/any()", .any(collection: path("memberOf"), variable: "", predicate: nil)),
    ("proxyAddresses/any(p:mail eq 'a')",
     .any(collection: path("proxyAddresses"), variable: "p", predicate: eq("mail", .string("a")))),
    ("not startswith(displayName,'A')", .not(.startsWith(path("displayName"), "A"))),
    ("NOT (age eq 1)", .not(eq("age", .int(1)))),
    ("DisplayName EQ 'x' AND mail Eq 'y'", .and(eq("DisplayName", .string("x")), eq("mail", .string("y")))),
    ("  (\tdisplayName   eq\n'x' )  ", eq("displayName", .string("x"))),
] as [(String, FilterExpression)])
func filterParserBuildsExpectedTree(text: String, expected: FilterExpression) throws {
    #expect(try FilterParser.parse(text) == expected)
}

@Test("String literals unescape doubled quotes and keep Unicode", arguments: [
    ("displayName eq 'O''Brien'", "O'Brien"),
    ("displayName eq ''''", "'"),
    ("displayName eq ''", ""),
    ("displayName eq 'a''''b'", "a''b"),
    ("displayName eq 'Zoë 日本 (x, y) eq or'", "Zoë 日本 (x, y) eq or"),
])
func stringLiteralsUnescape(text: String, value: String) throws {
    #expect(try FilterParser.parse(text) == eq("displayName", .string(value)))
}

@Test("And binds tighter than or, both are left-associative, not binds tightest")
func operatorPrecedence() throws {
    let a = eq("a", .int(1)), b = eq("b", .int(2)), c = eq("c", .int(3))
    #expect(try FilterParser.parse("a eq 1 or b eq 2 and c eq 3") == .or(a, .and(b, c)))
    #expect(try FilterParser.parse("a eq 1 and b eq 2 or c eq 3") == .or(.and(a, b), c))
    #expect(try FilterParser.parse("(a eq 1 or b eq 2) and c eq 3") == .and(.or(a, b), c))
    #expect(try FilterParser.parse("a eq 1 or b eq 2 or c eq 3") == .or(.or(a, b), c))
    #expect(try FilterParser.parse("not a eq 1 and b eq 2") == .and(.not(a), b))
}

@Test("Malformed filters throw bad-request errors", arguments: [
    "", "   ", "displayName", "displayName eq", "displayName eq 'x' garbage", "displayName eq 'x')",
    "(displayName eq 'x'", "displayName eq 'unterminated", "'x' eq displayName", "true eq accountEnabled",
    "42 eq age", "displayName eq John", "displayName xx 'a'", "a eq 1 and", "or a eq 1", "a eq 1 eq 2",
    "startswith(displayName)", "startswith(displayName, 5)", "startswith('x', displayName)",
    "startswith(a,'x') eq 'y'", "a in ()", "a in ('x',)", "a in 'x'", "proxyAddresses/any(p p eq 'x')",
    "proxyAddresses/any(p:p eq 'x'", "memberOf/all()", "a eq 99999999999999999999", "a eq 1.", "a eq 1e",
    "a eq 12abc", "a eq 2024-13-01T00:00:00Z", "a eq 2024-13-01", "a eq 2024-01-01T00:00:00",
    "a eq 6fd2c87f-b296-42f0-b197-1e91e994b90", "a eq \(skuGUID)0", "a eq @", "a/ eq 1", "/a eq 1",
    "a eq \"x\"", "a eq 1 and and b eq 2", "not", "()",
])
func malformedFiltersThrow(text: String) {
    let error = #expect(throws: ODataParseError.self) { try FilterParser.parse(text) }
    #expect(error?.isUnsupported == false)
    #expect(error?.message.hasPrefix("Invalid filter clause:") == true)
}

@Test("Well-formed but unsupported filters are flagged as unsupported", arguments: [
    "substringof('x', displayName)",
    "length(displayName) eq 3",
    "a/any(x: x/b/any(y: y eq 1))",
])
func unsupportedFiltersAreFlagged(text: String) {
    let error = #expect(throws: ODataParseError.self) { try FilterParser.parse(text) }
    #expect(error?.isUnsupported == true)
}

@Test("Syntax errors report the 0-based position of the offending token", arguments: [
    ("displayName eq", 14),
    ("displayName eq 'x' garbage", 19),
    ("'x' eq displayName", 0),
    ("a eq 1 and (b eq 'unterminated", 17),
    ("a eq 1 or #", 10),
])
func syntaxErrorsReportPosition(text: String, position: Int) {
    let error = #expect(throws: ODataParseError.self) { try FilterParser.parse(text) }
    #expect(error?.message.contains("at position \(position) in '\(text)'") == true)
    #expect(error?.description == error?.message)
}

@Test("Nesting deeper than the limit throws instead of exhausting the stack")
func nestingDepthIsBounded() throws {
    let shallow = String(repeating: "(", count: 20) + "a eq 1" + String(repeating: ")", count: 20)
    #expect(try FilterParser.parse(shallow) == eq("a", .int(1)))
    for depth in [40, 4_000] {
        let deep = String(repeating: "(", count: depth) + "a eq 1" + String(repeating: ")", count: depth)
        let error = #expect(throws: ODataParseError.self) { try FilterParser.parse(deep) }
        #expect(error?.message.contains("nested too deeply") == true)
    }
    let nots = String(repeating: "not ", count: 1_000) + "a eq 1"
    #expect(throws: ODataParseError.self) { try FilterParser.parse(nots) }
}

@Test("Filters longer than the length limit are rejected; long flat chains within it parse")
func inputLengthIsBounded() throws {
    let tooLong = "displayName eq '" + String(repeating: "x", count: FilterParser.maxLength) + "'"
    #expect(throws: ODataParseError.self) { try FilterParser.parse(tooLong) }
    let chain = Array(repeating: "a eq 1", count: 500).joined(separator: " or ")
    guard case .or = try FilterParser.parse(chain) else {
        Issue.record("expected an or chain")
        return
    }
}

// MARK: - Query options

@Test("Query options parse every supported option together")
func queryOptionsHappyPath() throws {
    let options = try QueryOptions.parse([
        (name: "$filter", value: "startswith(displayName,'J')"),
        (name: "$select", value: " id , displayName,mail "),
        (name: "$orderby", value: "displayName desc, createdDateTime, manager/displayName ASC"),
        (name: "$top", value: "25"),
        (name: "$count", value: "TRUE"),
        (name: "$search", value: "\"displayName:John\" OR \"mail:john\""),
        (name: "$skiptoken", value: "opaque-token=="),
        (name: "$expand", value: "manager, memberOf"),
        (name: "api-version", value: "ignored"),
        (name: "filter", value: "not even ( a filter"),
    ])
    #expect(options == QueryOptions(
        filter: .startsWith(path("displayName"), "J"),
        select: ["id", "displayName", "mail"],
        orderBy: [
            OrderByItem(path: path("displayName"), descending: true),
            OrderByItem(path: path("createdDateTime")),
            OrderByItem(path: path("manager/displayName")),
        ],
        top: 25,
        count: true,
        search: .or(.term(SearchTerm(property: "displayName", value: "John")),
                    .term(SearchTerm(property: "mail", value: "john"))),
        skipToken: "opaque-token==",
        expand: ["manager", "memberOf"]))
}

@Test("Absent options produce defaults and option names are case-insensitive")
func queryOptionDefaults() throws {
    #expect(try QueryOptions.parse([]) == QueryOptions())
    #expect(try QueryOptions.parse([(name: "$TOP", value: "5")]).top == 5)
    #expect(try QueryOptions.parse([(name: "$count", value: "false")]).count == false)
}

@Test("$top accepts 1 through maxTop", arguments: [("1", 999), ("999", 999), ("100", 100)])
func topAcceptsValidSizes(value: String, maxTop: Int) throws {
    #expect(try QueryOptions.parse([(name: "$top", value: value)], maxTop: maxTop).top == Int(value))
}

@Test("$top outside 1 through maxTop throws a Graph-style page size error",
      arguments: ["0", "1000", "abc", "-1", "", " 5", "1.5", "99999999999999999999999"])
func topRejectsInvalidSizes(value: String) {
    let error = #expect(throws: ODataParseError.self) { try QueryOptions.parse([(name: "$top", value: value)]) }
    #expect(error?.message == "Invalid page size specified: '\(value)'. Must be between 1 and 999 inclusive.")
    #expect(error?.isUnsupported == false)
}

@Test("Unknown, duplicated and unsupported options throw with the right classification", arguments: [
    ([(name: "$foo", value: "1")], false),
    ([(name: "$count", value: "yes")], false),
    ([(name: "$skiptoken", value: "")], false),
    ([(name: "$top", value: "5"), (name: "$top", value: "6")], false),
    ([(name: "$filter", value: "a eq")], false),
    ([(name: "$skip", value: "10")], true),
    ([(name: "$apply", value: "x")], true),
    ([(name: "$expand", value: "manager($levels=max;$select=id)")], true),
] as [([(name: String, value: String)], Bool)])
func invalidOptionsThrow(parameters: [(name: String, value: String)], unsupported: Bool) {
    let error = #expect(throws: ODataParseError.self) { try QueryOptions.parse(parameters) }
    #expect(error?.isUnsupported == unsupported)
}

@Test("$skip is reported as unsupported with Graph's message")
func skipIsUnsupported() {
    let error = #expect(throws: ODataParseError.self) { try QueryOptions.parse([(name: "$skip", value: "5")]) }
    #expect(error == ODataParseError(message: "$skip is not supported on this resource.", isUnsupported: true))
}

@Test("$select, $expand and $orderby reject empty or malformed entries", arguments: [
    ("$select", ""), ("$select", "id,,mail"), ("$select", "id,"), ("$select", "display name"), ("$select", "id;mail"),
    ("$expand", ""), ("$orderby", ""), ("$orderby", "a,"), ("$orderby", "displayName up"),
    ("$orderby", "a desc extra"), ("$orderby", "a//b"), ("$orderby", "'a'"),
])
func listOptionsRejectMalformedEntries(name: String, value: String) {
    #expect(throws: ODataParseError.self) { try QueryOptions.parse([(name: name, value: value)]) }
}

@Test("$search parses quoted property:value terms with AND binding tighter than OR")
func searchParsesTerms() throws {
    func term(_ p: String, _ v: String) -> SearchExpression { .term(SearchTerm(property: p, value: v)) }
    func search(_ value: String) throws -> SearchExpression? {
        try QueryOptions.parse([(name: "$search", value: value)]).search
    }
    #expect(try search("\"displayName:John Smith\"") == term("displayName", "John Smith"))
    #expect(try search("\"mail:a:b\"") == term("mail", "a:b"))
    #expect(try search("\"a:1\" OR \"b:2\" AND \"c:3\"") == .or(term("a", "1"), .and(term("b", "2"), term("c", "3"))))
    #expect(try search("\"a:1\" and \"b:2\" or \"c:3\"") == .or(.and(term("a", "1"), term("b", "2")), term("c", "3")))
}

@Test("$search rejects unquoted, malformed or dangling terms", arguments: [
    "", "displayName", "\"displayName\"", "\"displayName:John", "\"a:b\" XOR \"c:d\"", "\"a:b\" OR",
    "\"a:b\" \"c:d\"", "\":x\"", "\"a:\"", "\"a b:c\"", "AND \"a:b\"",
])
func searchRejectsMalformedTerms(value: String) {
    #expect(throws: ODataParseError.self) { try QueryOptions.parse([(name: "$search", value: value)]) }
}

@Test("An unquoted $search reports the invalid character like Graph does")
func unquotedSearchReportsCharacter() {
    let error = #expect(throws: ODataParseError.self) {
        try QueryOptions.parse([(name: "$search", value: "displayName:John")])
    }
    #expect(error?.message == "Syntax error: character ':' is not valid at position 11 in 'displayName:John'.")
}

@Test("$expand takes a nested $select per item, split at top-level commas")
func expandWithNestedSelect() throws {
    let options = try QueryOptions.parse([("$expand", "manager($select=id,displayName), memberOf")])
    #expect(options.expand == ["manager", "memberOf"])
    #expect(options.expandSelect == ["manager": ["id", "displayName"]])
}

@Test("in-memory $search matches the start of a token, split as Graph splits them", arguments: [
    ("contoso_Android", "android", true), ("contosoAndroid", "android", true), ("Android10", "10", true), ("Laptop2android", "android", true),
    ("User Administrator", "admin", true), ("Globaladministrator", "admin", false), ("Helpdesk Administrator", "desk", false),
])
func inMemorySearch(_ text: String, _ word: String, _ expected: Bool) {
    let search = SearchExpression.term(SearchTerm(property: "displayName", value: word))
    #expect(search.matches(["displayName": .string(text)]) == expected)
}
