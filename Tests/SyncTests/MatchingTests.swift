import Foundation
import Testing
import Sync
import TesseraCore

@Suite("Matching an on-premises user to the cloud directory: Entra's rules and the 2026 protections")
struct MatchingTests {
    static let before = Date(timeIntervalSince1970: 1_780_272_000 - 86_400)  // 31 May 2026
    static let after = Date(timeIntervalSince1970: 1_780_272_000 + 86_400)   // 2 June 2026
    static let anchor = "1dwA46Mpo0WN9NhmwqIShQ=="

    enum Found: String, CaseIterable { case byAnchor, bySMTP, byUPN, none }

    /// One row of the table: how the cloud user is found, whether it holds a role, whether it is already synced,
    /// the four switches, and the date.
    struct Row: CustomStringConvertible {
        var found: Found
        var role: Bool
        var synced: Bool
        var features: MatchingFeatures
        var now: Date
        var description: String {
            "\(found) role=\(role) synced=\(synced) blockSoft=\(features.blockSoftMatchEnabled) blockTakeover=\(features.blockCloudObjectTakeoverThroughHardMatchEnabled) upn=\(features.softMatchOnUpnEnabled) \(now == MatchingTests.after ? "after" : "before")"
        }

        func decide() -> MatchDecision {
            let cloud = CloudUser(id: "c1", userPrincipalName: "ada@contoso.test", proxyAddresses: ["SMTP:ada@contoso.test"],
                                  onPremisesImmutableId: found == .byAnchor || synced ? (synced && found != .byAnchor ? "other==" : MatchingTests.anchor) : nil,
                                  onPremisesSyncEnabled: synced, holdsDirectoryRole: role)
            let incoming = IncomingUser(sourceAnchor: MatchingTests.anchor, userPrincipalName: "ada@contoso.test", proxyAddresses: ["SMTP:ada@contoso.test"])
            var candidates = Matcher.Candidates()
            switch found {
            case .byAnchor: candidates.byAnchor = cloud
            case .bySMTP: candidates.bySMTP = cloud
            case .byUPN: candidates.byUPN = cloud
            case .none: break
            }
            return Matcher(features: features).decide(incoming, candidates: candidates, now: now)
        }
    }

    /// Every combination: 4 ways found × role × synced × 2⁴ switches × before/after = 512 rows.
    static let table: [Row] = {
        var rows: [Row] = []
        for found in Found.allCases {
            for role in [false, true] {
                for synced in [false, true] {
                    for bits in 0..<16 {
                        let features = MatchingFeatures(
                            blockSoftMatchEnabled: bits & 1 != 0, blockCloudObjectTakeoverThroughHardMatchEnabled: bits & 2 != 0,
                            softMatchOnUpnEnabled: bits & 4 != 0, allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled: bits & 8 != 0)
                        for now in [before, after] { rows.append(Row(found: found, role: role, synced: synced, features: features, now: now)) }
                    }
                }
            }
        }
        return rows
    }()

    @Test("the June 2026 rule: a hard match into a cloud-managed role holder is refused from the enforcement date, and only that", arguments: table)
    func juneRule(_ row: Row) {
        let decision = row.decide()
        let cloudManagedHardMatch = row.found == .byAnchor && !row.synced
        switch decision {
        case .quarantine(.invalidHardMatch, let message):
            // Refused only for a hard match into a cloud-managed user: a role holder after the date, or any with the takeover block.
            #expect(cloudManagedHardMatch, "\(row)")
            #expect((row.role && row.now == Self.after) || row.features.blockCloudObjectTakeoverThroughHardMatchEnabled, "\(row)")
            #expect(message.contains("ada@contoso.test"))
        case .join(let id, .hard):
            #expect(id == "c1" && cloudManagedHardMatch, "\(row)")
            #expect(!row.features.blockCloudObjectTakeoverThroughHardMatchEnabled, "\(row)")
            #expect(!row.role || row.now == Self.before, "\(row)")
        case .join(let id, .soft):
            // Soft matches never go to an administrator or a synced user, do not depend on the date, and follow the switches.
            #expect(id == "c1" && !row.role && !row.synced && !row.features.blockSoftMatchEnabled, "\(row)")
            #expect(row.found == .bySMTP || (row.found == .byUPN && row.features.softMatchOnUpnEnabled), "\(row)")
        case .quarantine(.attributeValueMustBeUnique, _):
            // The primary SMTP address belongs to a synced object with another anchor.
            #expect(row.found == .bySMTP && row.synced && !row.features.blockSoftMatchEnabled, "\(row)")
        case .create:
            #expect(row.found != .byAnchor, "\(row)")
        case .update(let id):
            // Its anchor is a synced user's: that user is this object (the join was lost), whatever the switches and date.
            #expect(id == "c1" && row.found == .byAnchor && row.synced, "\(row)")
        case .updateAnchor:
            Issue.record("a new object never changes a mapping: \(row)")
        }
        // The date matters only for the June rule: flip it and only a role holder's hard match may change.
        var other = row
        other.now = row.now == Self.after ? Self.before : Self.after
        if !(cloudManagedHardMatch && row.role) { #expect(other.decide() == decision, "\(row)") }
    }

    @Test("explicit rows: the takeover attack, an ordinary hard match, soft matches, and what stays unaffected")
    func explicitRows() {
        let defaults = MatchingFeatures()
        func row(_ found: Found, role: Bool = false, synced: Bool = false, _ features: MatchingFeatures = MatchingFeatures(), at now: Date = MatchingTests.after) -> MatchDecision {
            Row(found: found, role: role, synced: synced, features: features, now: now).decide()
        }
        // An AD user whose ms-DS-ConsistencyGuid is set to a Global Administrator's anchor: refused after 1 June 2026.
        guard case .quarantine(.invalidHardMatch, let message) = row(.byAnchor, role: true) else { Issue.record("not refused"); return }
        #expect(message.contains("holds a directory role"))
        #expect(row(.byAnchor, role: true, at: Self.before) == .join("c1", .hard))
        #expect(row(.byAnchor) == .join("c1", .hard))
        #expect(row(.bySMTP) == .join("c1", .soft))
        #expect(row(.byUPN) == .join("c1", .soft))
        #expect(row(.byUPN, MatchingFeatures(softMatchOnUpnEnabled: false)) == .create)
        #expect(row(.bySMTP, MatchingFeatures(blockSoftMatchEnabled: true)) == .create)
        #expect(row(.bySMTP, role: true) == .create)  // never a soft match into an administrator
        #expect(row(.none) == .create)
        _ = defaults
    }

    @Test("already synced objects keep syncing whatever their roles; a changed anchor is locked unless the tenant allows it")
    func alreadySynced() {
        let joined = CloudUser(id: "c1", userPrincipalName: "ada@contoso.test", onPremisesImmutableId: Self.anchor,
                               onPremisesSyncEnabled: true, holdsDirectoryRole: true)
        let incoming = IncomingUser(sourceAnchor: Self.anchor, userPrincipalName: "ada@contoso.test", joinedCloudID: "c1")
        #expect(Matcher().decide(incoming, candidates: .init(joined: joined, byAnchor: joined), now: Self.after) == .update("c1"))
        var moved = incoming
        moved.sourceAnchor = "AAAAAAAAAAAAAAAAAAAAAA=="
        guard case .quarantine(.invalidHardMatch, let message) = Matcher().decide(moved, candidates: .init(joined: joined), now: Self.after) else {
            Issue.record("the mapping moved")
            return
        }
        #expect(message.contains("Review OnPremisesObjectIdentifier mapping"))
        let allowed = Matcher(features: MatchingFeatures(allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled: true))
        #expect(allowed.decide(moved, candidates: .init(joined: joined), now: Self.after) == .updateAnchor("c1"))
    }

    @Test("the enforcement date is configuration")
    func enforcementDate() {
        let admin = CloudUser(id: "c1", userPrincipalName: "ga@contoso.test", onPremisesImmutableId: Self.anchor, holdsDirectoryRole: true)
        let incoming = IncomingUser(sourceAnchor: Self.anchor, userPrincipalName: "x@contoso.test")
        let later = Matcher(enforcementDate: Date(timeIntervalSince1970: 1_800_000_000))
        #expect(later.decide(incoming, candidates: .init(byAnchor: admin), now: Self.after) == .join("c1", .hard))
        #expect(Matcher().decide(incoming, candidates: .init(byAnchor: admin), now: Self.after) != .join("c1", .hard))
    }

    @Test("duplicate attribute resiliency: a taken UPN becomes prefix+NNNN@initial domain, a taken proxy address is left off; both recorded")
    func resiliency() {
        let taken: Set<String> = ["ada@contoso.test", "ada+0042@contoso.onmicrosoft.test", "smtp:ada@contoso.test"]
        var rolls = [42, 7].makeIterator()
        let result = AttributeResiliency.resolve(
            userPrincipalName: "ada@contoso.test", proxyAddresses: ["SMTP:ada@contoso.test", "smtp:ada.l@contoso.test"],
            initialDomain: "contoso.onmicrosoft.test", now: "2026-11-29T00:00:00Z",
            upnTaken: { taken.contains($0.lowercased()) }, proxyTaken: { taken.contains($0.lowercased()) }, digits: { rolls.next() ?? 1 })
        #expect(result.userPrincipalName == "ada+0007@contoso.onmicrosoft.test")
        #expect(result.proxyAddresses == ["smtp:ada.l@contoso.test"])
        #expect(result.errors.map { $0["propertyCausingError"] } == ["UserPrincipalName", "ProxyAddress"])
        #expect(result.errors.allSatisfy { $0["category"] == "PropertyConflict" })
        let clean = AttributeResiliency.resolve(userPrincipalName: "bob@contoso.test", proxyAddresses: [], initialDomain: "x", now: "t",
                                                upnTaken: { _ in false }, proxyTaken: { _ in false })
        #expect(clean.userPrincipalName == "bob@contoso.test" && clean.errors.isEmpty)
    }
}
