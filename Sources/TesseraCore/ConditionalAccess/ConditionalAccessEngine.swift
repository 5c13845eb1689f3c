/// A tenant's Conditional Access policies, compiled once, and the decision for any sign-in: a pure function of the
/// policies, the named locations and the sign-in's facts (the clock among them). No HTTP, no store.
///
/// Entra's semantics: a policy applies when every condition it configures matches and no exclusion does
/// (exclusions win); a disabled policy is not evaluated; a report-only one is evaluated and logged but never
/// enforced; `block` wins over everything; a policy the engine cannot read fails closed for the sign-ins it would
/// apply to (or, when it cannot be read at all, for every sign-in) and says why.
public struct ConditionalAccessEngine: Sendable {
    /// The policies, laid out for deciding.
    let program: DecisionProgram

    /// A compiled policy, shared by reference so a decision's results name it without copying it.
    final class Compiled: Sendable {
        let policy: CompiledPolicy
        init(_ policy: CompiledPolicy) { self.policy = policy }
    }

    /// Whether any policy is evaluated at all (enabled or report-only): when none is, a caller need not gather a
    /// sign-in's facts, since the decision is `allow` with every policy `notEnabled`.
    public var evaluatesAnything: Bool { program.evaluatesAnything }

    /// The application id that stands for internet traffic through Global Secure Access (Entra's "Internet Access"
    /// traffic profile), which a policy names in `includeApplications` to put its security profile on that traffic.
    public static let internetAccessAppID = "5dc48733-b5df-475c-a49b-fa307ef00853"

    /// Application groups Entra's keywords stand for, by lowercased keyword. `Office365` lists Microsoft's
    /// Office 365 services; `MicrosoftAdminPortals` the Azure portal and Microsoft's admin centers. Callers add
    /// their own applications (Tessera's admin center is an admin portal).
    public static let defaultApplicationGroups: [String: Set<String>] = [
        "office365": [
            "00000002-0000-0ff1-ce00-000000000000",  // Office 365 Exchange Online
            "00000003-0000-0ff1-ce00-000000000000",  // Office 365 SharePoint Online
            "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",  // Microsoft Teams Services
        ],
        "microsoftadminportals": [
            "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",  // Azure portal
        ],
    ]

    /// Compiles the tenant's policies and named locations, as stored (Graph's `conditionalAccessPolicy` and
    /// `namedLocation` bodies, each with its `id`).
    /// - Parameters:
    ///   - authenticationStrengths: the tenant's custom strengths (the built-ins are always known).
    ///   - applicationGroups: what `Office365`-style keywords in application lists expand to.
    public init(policies: [JSONValue], namedLocations: [JSONValue], authenticationStrengths: [AuthenticationStrength] = [],
                applicationGroups: [String: Set<String>] = defaultApplicationGroups) {
        var locations: [String: NamedLocation] = [:]
        var unreadableTrusted = false
        for body in namedLocations {
            guard let location = NamedLocation(body: body) else {
                unreadableTrusted = unreadableTrusted || body["isTrusted"]?.boolValue == true
                continue
            }
            locations[location.id] = location
        }
        let context = CompiledPolicy.Context(
            locations: locations, unreadableTrusted: unreadableTrusted,
            strengths: Dictionary(authenticationStrengths.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first }),
            applicationGroups: Dictionary(applicationGroups.map { ($0.key.lowercased(), Set($0.value.map { $0.lowercased() })) },
                                          uniquingKeysWith: { $0.union($1) }))
        let compiled = policies.map { body in
            var policy = CompiledPolicy(body: body, context: context)
            if (policy.grant?.controls.count ?? 0) > ConditionalAccessDecision.maximumControls {
                policy.invalid = policy.invalid ?? "it names more than \(ConditionalAccessDecision.maximumControls) grant controls"
            }
            return Compiled(policy)
        }
        program = DecisionProgram(compiled, locations: locations)
    }
}

extension NamedLocation {
    /// A stored named location; nil when it cannot be read (a policy naming it then fails closed).
    init?(body: JSONValue) {
        guard let id = body["id"]?.stringValue?.lowercased() else { return nil }
        self.id = id
        let type = body["@odata.type"]?.stringValue ?? ""
        if type.hasSuffix("countryNamedLocation") {
            guard let codes = body["countriesAndRegions"]?.arrayValue else { return nil }
            isTrusted = false
            ranges = IPAddressRangeSet([])
            countries = Set(codes.compactMap { $0.stringValue?.uppercased() })
            includeUnknownCountries = body["includeUnknownCountriesAndRegions"]?.boolValue ?? false
        } else if type.hasSuffix("ipNamedLocation") {
            var parsed: [IPAddressRange] = []
            for range in body["ipRanges"]?.arrayValue ?? [] {
                guard let cidr = range["cidrAddress"]?.stringValue, let value = IPAddressRange(cidr: cidr) else { return nil }
                parsed.append(value)
            }
            isTrusted = body["isTrusted"]?.boolValue ?? false
            ranges = IPAddressRangeSet(parsed)
            countries = nil
            includeUnknownCountries = false
        } else {
            return nil
        }
    }
}
