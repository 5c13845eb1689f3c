import TesseraCore

/// The parameters of Graph's `conditionalAccessRoot: evaluate` action (Conditional Access What If), read strictly:
/// an unknown parameter or property, a value of the wrong type, or a member that describes no single sign-in
/// (`all`, `unknownFutureValue`, a hidden risk) is a 400, so a question is never answered as if it said something else.
struct WhatIfQuestion: Sendable {
    /// Who signs in (`signInIdentity`).
    enum Identity: Sendable, Equatable {
        /// `userSignIn`: a user of the tenant (by object id), optionally as an external user of a kind; or, with no
        /// `userId`, an external user Tessera holds no object for.
        case user(id: String?, external: SignInFacts.ExternalUserKind?)
        /// `servicePrincipalSignIn`: a workload identity, by its service principal's object id.
        case servicePrincipal(id: String)
    }

    /// What the sign-in is for (`signInContext`).
    enum Context: Sendable, Equatable {
        /// `applicationContext`: the resources, by application id.
        case applications([String])
        /// `userActionContext`.
        case userAction(UserAction)
        /// `authContext`: data protected by an authentication context (`c1` … `c99`).
        case authenticationContext(String)
    }

    /// `signInConditions`: what is not given is unknown (no platform, no address, no device) or `none` (risks).
    struct Conditions: Sendable {
        var clientAppType: ClientAppType?
        var platform: DevicePlatform?
        /// The client's address, as the request gave it (checked to be an IPv4 or IPv6 address).
        var ipAddress: String?
        var country: String?
        var device: DeviceFacts?
        var userRisk = RiskLevel.none
        var signInRisk = RiskLevel.none
        var servicePrincipalRisk = RiskLevel.none
        var insiderRisk: String?
        var transferMethod: String?
    }

    var identity: Identity
    var context: Context
    var conditions: Conditions
    /// Only the policies that apply are answered (`appliedPoliciesOnly`).
    var appliedPoliciesOnly: Bool

    /// The most applications one question may name (each is decided as its own sign-in).
    static let maxApplications = 20

    /// Reads the action's JSON body.
    init(body: [String: JSONValue]) throws(DirectoryError) {
        let parameters: Set = ["signInIdentity", "signInContext", "signInConditions", "appliedPoliciesOnly"]
        for key in body.keys where !parameters.contains(key) && !key.hasPrefix("@odata.") {
            throw DirectoryError.badRequest(
                "The parameter '\(key)' in the request payload is not a valid parameter for the operation 'evaluate'.")
        }
        identity = try Self.identity(body["signInIdentity"])
        context = try Self.context(body["signInContext"])
        conditions = try Self.conditions(body["signInConditions"])
        switch body["appliedPoliciesOnly"] {
        case nil, .null?: appliedPoliciesOnly = false
        case .bool(let value)?: appliedPoliciesOnly = value
        default: throw Reader.mismatch("appliedPoliciesOnly", "a boolean")
        }
    }

    private static func identity(_ value: JSONValue?) throws(DirectoryError) -> Identity {
        let types = ["userSignIn": ["userId", "externalTenantId", "externalUserType"], "servicePrincipalSignIn": ["servicePrincipalId"]]
        let (type, reader) = try Reader.derived(value, name: "signInIdentity", types: types)
        if type == "servicePrincipalSignIn" {
            guard let id = try reader.guid("servicePrincipalId") else { throw Reader.required("signInIdentity.servicePrincipalId") }
            return .servicePrincipal(id: id)
        }
        let id = try reader.guid("userId")
        var external: SignInFacts.ExternalUserKind?
        if let kind = try reader.string("externalUserType"), kind != "none" {
            guard let type = GuestOrExternalUserType(rawValue: kind) else { throw Reader.invalid(kind, "signInIdentity.externalUserType") }
            external = SignInFacts.ExternalUserKind(type: type, homeTenantID: try reader.string("externalTenantId"))
        }
        guard id != nil || external != nil else {
            throw DirectoryError.badRequest(
                "Property 'signInIdentity.userId' is required unless 'externalUserType' says what kind of external user signs in.")
        }
        return .user(id: id, external: external)
    }

    private static func context(_ value: JSONValue?) throws(DirectoryError) -> Context {
        let types = ["applicationContext": ["includeApplications"], "userActionContext": ["userAction"],
                     "authContext": ["authenticationContextValue"]]
        let (type, reader) = try Reader.derived(value, name: "signInContext", types: types)
        switch type {
        case "applicationContext":
            let name = "signInContext.includeApplications"
            guard let apps = reader.object["includeApplications"]?.arrayValue, !apps.isEmpty, apps.count <= maxApplications else {
                throw DirectoryError.badRequest("Property '\(name)' is required: 1 to \(maxApplications) application ids.")
            }
            return .applications(try apps.map { app throws(DirectoryError) in
                guard let id = app.stringValue, Identifier.isGUID(id) else { throw Reader.mismatch(name, "application ids (GUIDs)") }
                return id.lowercased()
            })
        case "userActionContext":
            switch try reader.string("userAction") {
            case "registerSecurityInformation"?: return .userAction(.registerSecurityInformation)
            case "registerOrJoinDevices"?: return .userAction(.registerOrJoinDevices)
            case nil: throw Reader.required("signInContext.userAction")
            case let other?: throw Reader.invalid(other, "signInContext.userAction")
            }
        default:
            guard let value = try reader.string("authenticationContextValue") else {
                throw Reader.required("signInContext.authenticationContextValue")
            }
            guard value.hasPrefix("c"), let n = Int(value.dropFirst()), (1...99).contains(n), value == "c\(n)" else {
                throw Reader.mismatch("signInContext.authenticationContextValue", "an authentication context id, c1 to c99")
            }
            return .authenticationContext(value)
        }
    }

    private static func conditions(_ value: JSONValue?) throws(DirectoryError) -> Conditions {
        let reader = try Reader(value, name: "signInConditions", allowed: [
            "authenticationFlow", "clientAppType", "country", "deviceInfo", "devicePlatform", "insiderRiskLevel", "ipAddress",
            "servicePrincipalRiskLevel", "signInRiskLevel", "userRiskLevel"])
        var out = Conditions()
        out.clientAppType = try reader.member("clientAppType", ClientAppType.self)
        out.platform = try reader.member("devicePlatform", DevicePlatform.self)
        if let address = try reader.string("ipAddress") {
            guard IPAddress(address) != nil else { throw Reader.mismatch("signInConditions.ipAddress", "an IPv4 or IPv6 address") }
            out.ipAddress = address
        }
        if let country = try reader.string("country") {
            guard country.utf8.count == 2, country.utf8.allSatisfy({ (65...90).contains($0) || (97...122).contains($0) }) else {
                throw Reader.mismatch("signInConditions.country", "a two-letter ISO 3166 country code")
            }
            out.country = country.uppercased()
        }
        out.userRisk = try reader.member("userRiskLevel", RiskLevel.self) ?? .none
        out.signInRisk = try reader.member("signInRiskLevel", RiskLevel.self) ?? .none
        out.servicePrincipalRisk = try reader.member("servicePrincipalRiskLevel", RiskLevel.self) ?? .none
        if let level = try reader.string("insiderRiskLevel") {
            guard ["none", "minor", "moderate", "elevated"].contains(level) else { throw Reader.invalid(level, "signInConditions.insiderRiskLevel") }
            out.insiderRisk = level == "none" ? nil : level
        }
        if let flow = reader.object["authenticationFlow"], flow != .null {
            let flowReader = try Reader(flow, name: "signInConditions.authenticationFlow", allowed: ["transferMethod"])
            if let method = try flowReader.string("transferMethod"), method != "none" {
                guard ["deviceCodeFlow", "authenticationTransfer"].contains(method) else {
                    throw Reader.invalid(method, "signInConditions.authenticationFlow.transferMethod")
                }
                out.transferMethod = method
            }
        }
        if let device = reader.object["deviceInfo"], device != .null { out.device = try Self.device(device) }
        return out
    }

    /// `deviceInfo`: the properties a device filter can read; `physicalIds` and `systemLabels` are accepted and
    /// unused (no filter rule can name them).
    private static func device(_ value: JSONValue) throws(DirectoryError) -> DeviceFacts {
        let name = "signInConditions.deviceInfo"
        let strings = ["deviceId", "displayName", "enrollmentProfileName", "manufacturer", "mdmAppId", "model", "operatingSystem",
                       "operatingSystemVersion", "ownership", "profileType", "trustType"] + (1...15).map { "extensionAttribute\($0)" }
        let reader = try Reader(value, name: name, allowed: Set(strings + ["isCompliant", "physicalIds", "systemLabels"]))
        var other: [DeviceAttribute: String] = [:]
        for key in strings where !["deviceId", "displayName", "trustType", "operatingSystem"].contains(key) {
            guard let text = try reader.string(key) else { continue }
            if let attribute = DeviceAttribute(named: key == "ownership" ? "deviceOwnership" : key) { other[attribute] = text }
        }
        for key in ["physicalIds", "systemLabels"] {
            switch reader.object[key] {
            case nil, .null?: continue
            case .array(let items)? where items.allSatisfy({ $0.stringValue != nil }): continue
            default: throw Reader.mismatch("\(name).\(key)", "a collection of strings")
            }
        }
        let compliant: Bool
        switch reader.object["isCompliant"] {
        case nil, .null?: compliant = false
        case .bool(let value)?: compliant = value
        default: throw Reader.mismatch("\(name).isCompliant", "a boolean")
        }
        return DeviceFacts(deviceId: try reader.string("deviceId") ?? "", displayName: try reader.string("displayName"),
                           trustType: try reader.string("trustType"), isCompliant: compliant,
                           operatingSystem: try reader.string("operatingSystem"), other: other)
    }
}

/// Reads one JSON object of the question, with Graph's messages for what does not fit.
private struct Reader {
    let object: [String: JSONValue]
    let name: String

    /// `value` as an object of `name` whose properties are among `allowed` (annotations aside).
    init(_ value: JSONValue?, name: String, allowed: Set<String>) throws(DirectoryError) {
        guard let value, value != .null else { throw Self.required(name) }
        guard let object = value.objectValue else { throw Self.mismatch(name, "an object") }
        for key in object.keys where !allowed.contains(key) && !key.contains("@odata.") {
            throw DirectoryError.badRequest("Property '\(key)' does not exist as a declared property or extension property.")
        }
        self.object = object
        self.name = name
    }

    /// A value of an abstract type: which derived type (from `@odata.type`, or else from its properties) and its reader.
    static func derived(_ value: JSONValue?, name: String, types: [String: [String]]) throws(DirectoryError) -> (String, Reader) {
        guard let value, value != .null else { throw required(name) }
        guard let object = value.objectValue else { throw mismatch(name, "an object") }
        let type: String
        if let declared = object["@odata.type"]?.stringValue {
            var short = Substring(declared)
            if short.hasPrefix("#") { short = short.dropFirst() }
            if short.hasPrefix("microsoft.graph.") { short = short.dropFirst("microsoft.graph.".count) }
            guard types[String(short)] != nil else {
                throw DirectoryError.badRequest("Invalid @odata.type '\(declared)' for property '\(name)'.")
            }
            type = String(short)
        } else {
            let fitting = types.filter { !$0.value.isEmpty && object.keys.contains(where: $0.value.contains) }.map(\.key)
            guard fitting.count == 1 else {
                let names = types.keys.sorted().map { "#microsoft.graph.\($0)" }.joined(separator: ", ")
                throw DirectoryError.badRequest("Property '\(name)' needs an '@odata.type': one of \(names).")
            }
            type = fitting[0]
        }
        return (type, try Reader(value, name: name, allowed: Set(types[type] ?? [])))
    }

    /// A string property (nil when absent or null).
    func string(_ key: String) throws(DirectoryError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let text)?:
            guard !text.unicodeScalars.contains("\u{0}") else { throw Self.mismatch("\(name).\(key)", "text without NUL characters") }
            return text
        default: throw Self.mismatch("\(name).\(key)", "a string")
        }
    }

    /// A GUID property, lowercased.
    func guid(_ key: String) throws(DirectoryError) -> String? {
        guard let text = try string(key) else { return nil }
        guard Identifier.isGUID(text) else { throw Self.mismatch("\(name).\(key)", "a GUID") }
        return text.lowercased()
    }

    /// An enumeration member that names one thing a sign-in can be (Graph's `all`, `hidden` or
    /// `unknownFutureValue` are not).
    func member<Value: RawRepresentable<String>>(_ key: String, _: Value.Type) throws(DirectoryError) -> Value? {
        guard let text = try string(key) else { return nil }
        guard let value = Value(rawValue: text) else { throw Self.invalid(text, "\(name).\(key)") }
        return value
    }

    static func required(_ name: String) -> DirectoryError {
        DirectoryError.badRequest("Property '\(name)' is required.")
    }

    static func mismatch(_ name: String, _ expected: String) -> DirectoryError {
        DirectoryError.badRequest("Invalid value specified for property '\(name)': expected \(expected).")
    }

    static func invalid(_ value: String, _ name: String) -> DirectoryError {
        DirectoryError.badRequest("Invalid value '\(value)' for property '\(name)': it names no single sign-in condition Tessera knows.")
    }
}
