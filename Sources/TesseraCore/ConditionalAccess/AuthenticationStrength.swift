import Foundation

/// Graph's `authenticationMethodModes` flags: the methods a sign-in used, and the parts of a combination.
public struct AuthenticationMethodModes: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let password = Self(rawValue: 1)
    public static let voice = Self(rawValue: 2)
    public static let hardwareOath = Self(rawValue: 4)
    public static let softwareOath = Self(rawValue: 8)
    public static let sms = Self(rawValue: 16)
    /// A passkey, Windows Hello passkeys included (Entra counts those as `fido2`, not `windowsHelloForBusiness`).
    public static let fido2 = Self(rawValue: 32)
    public static let windowsHelloForBusiness = Self(rawValue: 64)
    public static let microsoftAuthenticatorPush = Self(rawValue: 128)
    public static let deviceBasedPush = Self(rawValue: 256)
    public static let temporaryAccessPassOneTime = Self(rawValue: 512)
    public static let temporaryAccessPassMultiUse = Self(rawValue: 1024)
    public static let email = Self(rawValue: 2048)
    public static let x509CertificateSingleFactor = Self(rawValue: 4096)
    public static let x509CertificateMultiFactor = Self(rawValue: 8192)
    public static let federatedSingleFactor = Self(rawValue: 16384)
    public static let federatedMultiFactor = Self(rawValue: 32768)
    public static let qrCodePin = Self(rawValue: 131072)

    static let names: [(String, Self)] = [
        ("password", .password), ("voice", .voice), ("hardwareOath", .hardwareOath), ("softwareOath", .softwareOath),
        ("sms", .sms), ("fido2", .fido2), ("windowsHelloForBusiness", .windowsHelloForBusiness),
        ("microsoftAuthenticatorPush", .microsoftAuthenticatorPush), ("deviceBasedPush", .deviceBasedPush),
        ("temporaryAccessPassOneTime", .temporaryAccessPassOneTime),
        ("temporaryAccessPassMultiUse", .temporaryAccessPassMultiUse), ("email", .email),
        ("x509CertificateSingleFactor", .x509CertificateSingleFactor),
        ("x509CertificateMultiFactor", .x509CertificateMultiFactor), ("federatedSingleFactor", .federatedSingleFactor),
        ("federatedMultiFactor", .federatedMultiFactor), ("qrCodePin", .qrCodePin),
    ]

    /// Parses a combination as Graph writes it: method names joined by commas (`password,softwareOath`); nil if a
    /// name is unknown.
    public init?(combination: String) {
        var modes: Self = []
        for name in combination.split(separator: ",") {
            let trimmed = name.trimmingCharacters(in: .whitespaces)
            guard let mode = Self.names.first(where: { $0.0 == trimmed })?.1 else { return nil }
            modes.insert(mode)
        }
        guard !modes.isEmpty else { return nil }
        self = modes
    }

    /// The combination as Graph writes it, in the flags' order.
    public var combination: String { Self.names.filter { contains($0.1) }.map(\.0).joined(separator: ",") }
}

/// An authentication strength: the method combinations any one of which satisfies it.
public struct AuthenticationStrength: Sendable, Hashable {
    public var id: String
    public var displayName: String
    /// Each element is one allowed combination; a sign-in satisfies the strength when it used every method of one.
    public var allowedCombinations: [AuthenticationMethodModes]
    /// A `fido2CombinationConfiguration`'s `allowedAAGUIDs` (lowercased): only passkeys of these models count as
    /// `fido2`. Nil when any passkey does.
    public var fido2AllowedAAGUIDs: Set<String>?

    /// A strength; ids are compared lowercased, as are the AAGUIDs.
    public init(id: String, displayName: String, allowedCombinations: [AuthenticationMethodModes],
                fido2AllowedAAGUIDs: Set<String>? = nil) {
        self.id = id.lowercased()
        self.displayName = displayName
        self.allowedCombinations = allowedCombinations
        self.fido2AllowedAAGUIDs = fido2AllowedAAGUIDs.map { Set($0.map { $0.lowercased() }) }
    }

    /// Whether methods used in the session satisfy the strength.
    public func isSatisfied(by used: AuthenticationMethodModes) -> Bool {
        allowedCombinations.contains { used.isSuperset(of: $0) }
    }

    /// Whether a session's methods satisfy the strength, a passkey counting only if its AAGUID is allowed.
    public func isSatisfied(by uses: [SignInFacts.MethodUse]) -> Bool {
        var used: AuthenticationMethodModes = []
        for use in uses {
            if use.method.contains(.fido2), let allowed = fido2AllowedAAGUIDs,
               !(use.aaguid.map(allowed.contains) ?? false) {
                used.formUnion(use.method.subtracting(.fido2))
            } else {
                used.formUnion(use.method)
            }
        }
        return isSatisfied(by: used)
    }

    /// A stored Graph `authenticationStrengthPolicy` body; nil when it names a method combination or a combination
    /// configuration the engine does not know (a policy requiring it then fails closed).
    public init?(body: JSONValue) {
        guard let id = body["id"]?.stringValue, let names = body["allowedCombinations"]?.arrayValue else { return nil }
        var combinations: [AuthenticationMethodModes] = []
        for name in names {
            guard let text = name.stringValue, let combination = AuthenticationMethodModes(combination: text) else { return nil }
            combinations.append(combination)
        }
        var allowed: Set<String>?
        for configuration in body["combinationConfigurations"]?.arrayValue ?? [] {
            guard configuration["@odata.type"]?.stringValue?.hasSuffix("fido2CombinationConfiguration") == true,
                  let aaguids = configuration["allowedAAGUIDs"]?.arrayValue
            else { return nil }
            allowed = (allowed ?? []).union(aaguids.compactMap(\.stringValue))
        }
        self.init(id: id, displayName: body["displayName"]?.stringValue ?? id, allowedCombinations: combinations,
                  fido2AllowedAAGUIDs: allowed)
    }

    private static func combinations(_ list: [String]) -> [AuthenticationMethodModes] {
        list.compactMap(AuthenticationMethodModes.init(combination:))
    }

    /// Entra's built-in "Multifactor authentication" (`…0002`): what satisfies the `mfa` grant control too. A
    /// Temporary Access Pass satisfies it.
    public static let multifactor = AuthenticationStrength(
        id: "00000000-0000-0000-0000-000000000002", displayName: "Multifactor authentication",
        allowedCombinations: combinations([
            "windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush",
            "temporaryAccessPassOneTime", "temporaryAccessPassMultiUse", "password,microsoftAuthenticatorPush",
            "password,softwareOath", "password,hardwareOath", "password,sms", "password,voice", "federatedMultiFactor",
            "microsoftAuthenticatorPush,federatedSingleFactor", "softwareOath,federatedSingleFactor",
            "hardwareOath,federatedSingleFactor", "sms,federatedSingleFactor", "voice,federatedSingleFactor",
        ]))

    /// Entra's built-in "Passwordless MFA" (`…0003`).
    public static let passwordlessMultifactor = AuthenticationStrength(
        id: "00000000-0000-0000-0000-000000000003", displayName: "Passwordless MFA",
        allowedCombinations: combinations(["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "deviceBasedPush"]))

    /// Entra's built-in "Phishing-resistant MFA" (`…0004`): a passkey satisfies it, a Temporary Access Pass does not.
    public static let phishingResistant = AuthenticationStrength(
        id: "00000000-0000-0000-0000-000000000004", displayName: "Phishing-resistant MFA",
        allowedCombinations: combinations(["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"]))

    /// The built-ins by id.
    public static let builtIns: [String: AuthenticationStrength] = Dictionary(
        uniqueKeysWithValues: [multifactor, passwordlessMultifactor, phishingResistant].map { ($0.id, $0) })
}
