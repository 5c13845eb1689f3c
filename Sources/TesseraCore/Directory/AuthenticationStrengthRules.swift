import Foundation

extension ObjectKind {
    /// A custom authentication strength (`/identity/conditionalAccess/authenticationStrength/policies`, also
    /// `/policies/authenticationStrengthPolicies`); its `combinationConfigurations` are kept in its body. The built-in
    /// strengths are not stored.
    public static let authenticationStrengthPolicy = ObjectKind(rawValue: "authenticationStrengthPolicy")
}

/// The rules of authentication strength policies as Entra applies them when they are written: combinations from
/// Graph's list of allowed ones, `requirementsSatisfied` computed, FIDO2 combination configurations naming AAGUIDs.
public enum AuthenticationStrengthRules {
    /// Custom strengths a tenant may hold.
    public static let maxCustomPolicies = 15

    /// Graph's `authenticationStrength/combinations`: every combination an `allowedCombinations` may name.
    public static let combinations: [String] = [
        "windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush", "temporaryAccessPassOneTime",
        "temporaryAccessPassMultiUse", "password,microsoftAuthenticatorPush", "password,softwareOath", "password,hardwareOath",
        "password,sms", "password,voice", "federatedMultiFactor", "microsoftAuthenticatorPush,federatedSingleFactor",
        "softwareOath,federatedSingleFactor", "hardwareOath,federatedSingleFactor", "sms,federatedSingleFactor",
        "voice,federatedSingleFactor", "x509CertificateSingleFactor", "sms", "password", "federatedSingleFactor", "email",
    ]

    /// The combinations that are one factor only: a strength allowing any of them does not satisfy MFA.
    static let singleFactor: Set<String> = ["x509CertificateSingleFactor", "sms", "password", "federatedSingleFactor", "email"]

    static let allowed: [AuthenticationMethodModes: String] = Dictionary(
        uniqueKeysWithValues: combinations.compactMap { text in AuthenticationMethodModes(combination: text).map { ($0, text) } })

    /// Graph's `authenticationStrength/authenticationMethodModes`: each mode with its name and method.
    public static let methodModeDetails: [JSONValue] = [
        ("password", "Password", "password"), ("voice", "Voice", "voice"), ("hardwareOath", "Hardware OATH tokens", "hardwareOath"),
        ("softwareOath", "Software OATH tokens", "softwareOath"), ("sms", "SMS", "sms"), ("fido2", "FIDO2 Security Key", "fido2"),
        ("windowsHelloForBusiness", "Windows Hello for Business", "windowsHelloForBusiness"),
        ("microsoftAuthenticatorPush", "Microsoft Authenticator (push notification)", "microsoftAuthenticator"),
        ("deviceBasedPush", "Microsoft Authenticator (Passwordless)", "microsoftAuthenticator"),
        ("temporaryAccessPassOneTime", "Temporary Access Pass (one-time use)", "temporaryAccessPass"),
        ("temporaryAccessPassMultiUse", "Temporary Access Pass (multi-use)", "temporaryAccessPass"),
        ("email", "Email one-time passcode", "email"),
        ("x509CertificateSingleFactor", "Certificate-based authentication (single factor)", "x509Certificate"),
        ("x509CertificateMultiFactor", "Certificate-based authentication (multifactor)", "x509Certificate"),
        ("federatedSingleFactor", "Federation (single factor)", "federation"),
        ("federatedMultiFactor", "Federation (multifactor)", "federation"),
    ].map { ["id": .string($0.0), "displayName": .string($0.1), "authenticationMethod": .string($0.2)] }

    /// Descriptions of the built-ins, as Graph returns them.
    static let builtInDescriptions: [String: String] = [
        AuthenticationStrength.multifactor.id: "Combinations of methods that satisfy strong authentication, such as a password + SMS",
        AuthenticationStrength.passwordlessMultifactor.id: "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the Microsoft Authenticator",
        AuthenticationStrength.phishingResistant.id: "Phishing-resistant, Passwordless methods for the strongest authentication, such as a FIDO2 security key",
    ]

    /// The built-in strengths as Graph shows them (MFA, passwordless MFA, phishing-resistant MFA), in id order.
    public static let builtInPolicies: [[String: JSONValue]] = AuthenticationStrength.builtIns.values.sorted { $0.id < $1.id }.map { strength in
        ["id": .string(strength.id), "createdDateTime": "2021-12-01T00:00:00Z", "modifiedDateTime": "2021-12-01T00:00:00Z",
         "displayName": .string(strength.displayName), "description": .string(builtInDescriptions[strength.id] ?? ""),
         "policyType": "builtIn", "requirementsSatisfied": "mfa",
         "allowedCombinations": .array(strength.allowedCombinations.map { .string($0.combination) }), "combinationConfigurations": []]
    }

    /// A built-in's Graph body, by id (any case).
    public static func builtIn(_ id: String) -> [String: JSONValue]? {
        builtInPolicies.first { $0["id"]?.stringValue == id.lowercased() }
    }

    /// How a Conditional Access policy shows the strength it requires (`grantControls.authenticationStrength`): the
    /// strength's properties as they are now, without its combination configurations.
    public static func reference(_ policy: [String: JSONValue]) -> JSONValue {
        .object(policy.filter { ["id", "createdDateTime", "modifiedDateTime", "displayName", "description", "policyType",
                                 "requirementsSatisfied", "allowedCombinations"].contains($0.key) })
    }

    /// `allowedCombinations` as given, each a comma-separated set of `authenticationMethodModes` in any order and
    /// spacing, to Graph's own spelling of each (duplicates dropped). Every one must be in ``combinations``.
    static func normalizedCombinations(_ value: JSONValue?, property: String = "allowedCombinations") throws(DirectoryError) -> [String] {
        guard let items = value?.arrayValue, !items.isEmpty else {
            throw DirectoryError.badRequest("Property '\(property)' is required: at least one combination of authentication methods (see authenticationStrength/combinations).")
        }
        var out: [String] = []
        for item in items {
            guard let text = item.stringValue else {
                throw DirectoryError.badRequest("Invalid value in '\(property)': each combination is a string such as \"password,sms\".")
            }
            for name in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) })
            where AuthenticationMethodModes(combination: name) == nil {
                throw DirectoryError.badRequest("Invalid value '\(text)' in '\(property)': '\(name)' is not an authenticationMethodModes member.")
            }
            guard let modes = AuthenticationMethodModes(combination: text), let canonical = allowed[modes] else {
                throw DirectoryError.badRequest("Invalid value '\(text)' in '\(property)': that combination of methods is not one an authentication strength may allow (see authenticationStrength/combinations).")
            }
            if !out.contains(canonical) { out.append(canonical) }
        }
        return out
    }

    /// `mfa` when every combination is multifactor, else `none`.
    static func requirementsSatisfied(_ combinations: [String]) -> String {
        combinations.contains(where: singleFactor.contains) ? "none" : "mfa"
    }

    /// Checks a new custom policy's body and returns what is stored (its combination configurations included, each
    /// with a new id).
    static func prepareCreate(_ body: [String: JSONValue], id: String, now: String) throws(DirectoryError) -> [String: JSONValue] {
        var properties = body.filter { !$0.key.hasPrefix("@") }
        let configurations = properties.removeValue(forKey: "combinationConfigurations")
        try GraphValidator.validate(properties, entity: ObjectKind.authenticationStrengthPolicy.rawValue)
        for key in ["id", "createdDateTime", "modifiedDateTime", "requirementsSatisfied"] where properties[key] != nil {
            throw DirectoryError.badRequest("Property '\(key)' is read-only and cannot be set.")
        }
        if let type = properties["policyType"], type != "custom" {
            throw DirectoryError.badRequest("Only custom authentication strength policies can be created: 'policyType' must be \"custom\" if given.")
        }
        var stored: [String: JSONValue] = [
            "id": .string(id), "displayName": .string(try displayName(properties["displayName"])),
            "description": properties["description"] ?? .null, "policyType": "custom",
            "createdDateTime": .string(now), "modifiedDateTime": .string(now),
        ]
        let combinations = try normalizedCombinations(properties["allowedCombinations"])
        stored["allowedCombinations"] = .array(combinations.map(JSONValue.string))
        stored["requirementsSatisfied"] = .string(requirementsSatisfied(combinations))
        let given: [JSONValue]
        switch configurations {
        case nil, .null?: given = []
        case .array(let items)?: given = items
        default: throw DirectoryError.badRequest("Invalid value for 'combinationConfigurations': expected a collection.")
        }
        var prepared: [JSONValue] = []
        for configuration in given {
            guard let object = configuration.objectValue else {
                throw DirectoryError.badRequest("Invalid value in 'combinationConfigurations': each is a fido2CombinationConfiguration object.")
            }
            prepared.append(.object(try prepareConfiguration(object, id: Identifier.make(), policy: stored, existing: prepared)))
        }
        stored["combinationConfigurations"] = .array(prepared)
        return stored
    }

    static func displayName(_ value: JSONValue?) throws(DirectoryError) -> String {
        guard let name = value?.stringValue?.trimmed, !name.isEmpty else {
            throw DirectoryError.badRequest("Property 'displayName' is required and cannot be empty.")
        }
        return name
    }

    /// A PATCH: only `displayName` and `description` change here (Graph: combinations change through
    /// `updateAllowedCombinations`).
    static func patched(_ current: [String: JSONValue], with patch: [String: JSONValue], now: String) throws(DirectoryError) -> [String: JSONValue] {
        let properties = patch.filter { !$0.key.hasPrefix("@") }
        if properties["allowedCombinations"] != nil {
            throw DirectoryError.badRequest("Property 'allowedCombinations' cannot be updated this way: use the updateAllowedCombinations action.")
        }
        if properties["combinationConfigurations"] != nil {
            throw DirectoryError.badRequest("Combination configurations are changed through the policy's combinationConfigurations collection.")
        }
        try GraphValidator.validate(properties, entity: ObjectKind.authenticationStrengthPolicy.rawValue)
        for key in properties.keys where key != "displayName" && key != "description" {
            throw DirectoryError.badRequest("Property '\(key)' is read-only and cannot be set: only displayName and description can be updated.")
        }
        var body = current
        if let name = properties["displayName"] { body["displayName"] = .string(try displayName(name)) }
        if let description = properties["description"] { body["description"] = description }
        body["modifiedDateTime"] = .string(now)
        return body
    }

    /// Checks a combination configuration for `policy` and returns it as stored: a `fido2CombinationConfiguration`
    /// applying to `fido2` (which the policy must allow), naming AAGUIDs (lowercased, each once); one per policy.
    static func prepareConfiguration(_ body: [String: JSONValue], id: String, policy: [String: JSONValue],
                                     existing: [JSONValue]) throws(DirectoryError) -> [String: JSONValue] {
        let type = (body["@odata.type"]?.stringValue).map(PolicyRules.shortType)
        guard let type else {
            throw DirectoryError.badRequest("A combination configuration needs '@odata.type': #microsoft.graph.fido2CombinationConfiguration.")
        }
        guard type == "fido2CombinationConfiguration" else {
            throw DirectoryError.badRequest("Invalid @odata.type '\(type)': only fido2CombinationConfiguration can be created (Tessera has no certificate-based authentication for an x509CertificateCombinationConfiguration to apply to).")
        }
        var properties = body.filter { !$0.key.hasPrefix("@") }
        properties["id"] = nil
        try GraphValidator.validate(properties, entity: "fido2CombinationConfiguration")
        return try configuration(properties, id: id, policy: policy, existing: existing)
    }

    /// A configuration's stored body from its (validated) properties.
    static func configuration(_ properties: [String: JSONValue], id: String, policy: [String: JSONValue],
                              existing: [JSONValue]) throws(DirectoryError) -> [String: JSONValue] {
        let applies = try normalizedCombinations(properties["appliesToCombinations"], property: "appliesToCombinations")
        guard applies == ["fido2"] else {
            throw DirectoryError.badRequest("Invalid 'appliesToCombinations': a fido2CombinationConfiguration applies to [\"fido2\"] only.")
        }
        guard policy["allowedCombinations"]?.arrayValue?.contains("fido2") == true else {
            throw DirectoryError.badRequest("Invalid 'appliesToCombinations': the policy's allowedCombinations do not include fido2.")
        }
        if existing.contains(where: { $0["id"]?.stringValue != id && $0["appliesToCombinations"]?.arrayValue?.contains("fido2") == true }) {
            throw DirectoryError.badRequest("The policy already has a combination configuration for fido2; update that one instead.")
        }
        guard let given = properties["allowedAAGUIDs"]?.arrayValue, !given.isEmpty else {
            throw DirectoryError.badRequest("Property 'allowedAAGUIDs' is required: the AAGUIDs of the passkey models this strength accepts.")
        }
        var aaguids: [String] = []
        for value in given {
            guard let text = value.stringValue, Identifier.isGUID(text) else {
                throw DirectoryError.badRequest("Invalid value '\(value.stringValue ?? value.serialized)' in 'allowedAAGUIDs': an AAGUID is a GUID such as cb69481e-8ff7-4039-93ec-0a2729a154a8.")
            }
            if !aaguids.contains(text.lowercased()) { aaguids.append(text.lowercased()) }
        }
        return ["@odata.type": "#microsoft.graph.fido2CombinationConfiguration", "id": .string(id),
                "appliesToCombinations": ["fido2"], "allowedAAGUIDs": .array(aaguids.map(JSONValue.string))]
    }

    /// The Conditional Access policies of `strength` that need an MFA claim from it (Graph's `usage` puts them under
    /// `mfa`): those that also require a password change, which Entra allows only together with MFA.
    static func needsMultifactorClaim(_ policy: StoredObject) -> Bool {
        policy.body["grantControls"]?["builtInControls"]?.arrayValue?.contains("passwordChange") == true
    }

    /// Whether a Conditional Access policy body requires the strength `id`.
    static func references(_ policy: StoredObject, strength id: String) -> Bool {
        policy.body["grantControls"]?["authenticationStrength"]?["id"]?.stringValue?.lowercased() == id
    }
}
