import Backup
import Testing
import TesseraCore

/// The drift comparison alone: a pure function of a baseline and the tenant's resources.
@Suite("Configuration drift: a baseline against the tenant's resources")
struct ConfigurationDriftEvaluatorTests {
    static let type = "microsoft.entra.conditionalaccesspolicy"

    static func policy(_ properties: [String: JSONValue]) -> ConfigurationResource {
        ConfigurationResource(resourceType: type, displayName: properties["DisplayName"]?.stringValue ?? "", properties: properties)
    }

    static let current = [policy(["DisplayName": "Require MFA", "Id": "p1", "State": "enabled", "IncludeUsers": ["All"],
                                  "BuiltInControls": ["mfa", "compliantDevice"], "SignInFrequencyValue": 4])]

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let baseline: [String: JSONValue]
        let drifted: [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "equal strings differing in case match", baseline: ["DisplayName": "require mfa", "State": "Enabled"], drifted: []),
        Case(name: "a changed string drifts", baseline: ["DisplayName": "Require MFA", "State": "disabled"], drifted: ["State"]),
        Case(name: "lists compare as sets", baseline: ["DisplayName": "Require MFA", "BuiltInControls": ["compliantDevice", "MFA"]], drifted: []),
        Case(name: "a list with one more item drifts", baseline: ["DisplayName": "Require MFA", "BuiltInControls": ["mfa"]], drifted: ["BuiltInControls"]),
        Case(name: "numbers compare by value", baseline: ["DisplayName": "Require MFA", "SignInFrequencyValue": .double(4)], drifted: []),
        Case(name: "an empty list matches an unset one", baseline: ["DisplayName": "Require MFA", "ExcludeUsers": []], drifted: []),
        Case(name: "found by Id whatever the name", baseline: ["DisplayName": "Renamed", "Id": "P1", "State": "enabled"], drifted: ["DisplayName"]),
        Case(name: "a missing instance drifts on Ensure", baseline: ["DisplayName": "Block legacy"], drifted: ["Ensure"]),
        Case(name: "an instance that should be absent drifts on Ensure", baseline: ["DisplayName": "Require MFA", "Ensure": "Absent"], drifted: ["Ensure"]),
        Case(name: "an absent instance that should be absent matches", baseline: ["DisplayName": "Block legacy", "Ensure": "Absent"], drifted: []),
    ]

    @Test(arguments: cases)
    func comparesAsDesiredStateChecksDo(_ c: Case) {
        let baseline = [ConfigurationResource(resourceType: Self.type, displayName: "Baseline resource", properties: c.baseline)]
        let findings = ConfigurationDriftEvaluator.evaluate(baseline: baseline, current: Self.current)
        #expect(findings.flatMap { $0.driftedProperties.map(\.propertyName) } == c.drifted)
        if let finding = findings.first {
            #expect(finding.baselineResourceDisplayName == "Baseline resource" && finding.resourceType == Self.type)
        }
    }

    @Test("a drifted property reports the tenant's value and the baseline's")
    func reportsBothValues() throws {
        let baseline = [ConfigurationResource(resourceType: Self.type, displayName: "CA", properties: ["DisplayName": "Require MFA", "State": "disabled"])]
        let finding = try #require(ConfigurationDriftEvaluator.evaluate(baseline: baseline, current: Self.current).first)
        #expect(finding.driftedProperties == [DriftedProperty(propertyName: "State", currentValue: "enabled", desiredValue: "disabled")])
        #expect(finding.resourceInstanceIdentifier == ["DisplayName": "Require MFA", "Id": "p1"])
    }

    struct BadBaseline: Sendable, CustomTestStringConvertible {
        let name: String
        let body: JSONValue
        let message: String
        var testDescription: String { name }
    }

    static let badBaselines: [BadBaseline] = [
        BadBaseline(name: "no resources", body: ["displayName": "B", "resources": []], message: "at least one resource"),
        BadBaseline(name: "an unsupported type", body: ["displayName": "B", "resources": [
            ["displayName": "R", "resourceType": "microsoft.exchange.sharedmailbox", "properties": ["DisplayName": "x"]]]], message: "is not supported"),
        BadBaseline(name: "a property the type lacks", body: ["displayName": "B", "resources": [
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["DisplayName": "x", "Colour": "red"]]]],
                    message: "'Colour' is not a property"),
        BadBaseline(name: "no key property", body: ["displayName": "B", "resources": [
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["State": "enabled"]]]],
                    message: "must name the instance by 'DisplayName'"),
        BadBaseline(name: "an Ensure that is neither Present nor Absent", body: ["displayName": "B", "resources": [
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["DisplayName": "x", "Ensure": "Maybe"]]]],
                    message: "'Present' or 'Absent'"),
        BadBaseline(name: "two resources of one name", body: ["displayName": "B", "resources": [
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["DisplayName": "x"]],
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["DisplayName": "y"]]]],
                    message: "each resource's displayName must be unique"),
        BadBaseline(name: "no display name", body: ["resources": [
            ["displayName": "R", "resourceType": "microsoft.entra.conditionalAccessPolicy", "properties": ["DisplayName": "x"]]]],
                    message: "'displayName' is required"),
    ]

    @Test(arguments: badBaselines)
    func refusesABadBaseline(_ c: BadBaseline) {
        #expect {
            _ = try ConfigurationBaseline.parse(c.body)
        } throws: { error in
            (error as? DirectoryError)?.message.contains(c.message) == true
        }
    }

    @Test("resource type names are matched without regard to case and reported in lowercase")
    func namesIgnoreCase() throws {
        let type = try #require(ConfigurationResourceType.named("Microsoft.Entra.ConditionalAccessPolicy"))
        #expect(type.canonicalName == "microsoft.entra.conditionalaccesspolicy")
        #expect(ConfigurationResourceType.named("microsoft.entra.unknown") == nil)
    }
}
