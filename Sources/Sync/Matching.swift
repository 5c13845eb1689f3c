public import Foundation
public import TesseraCore

/// The tenant's switches at `/directory/onPremisesSynchronization` (`features`) that matching reads.
public struct MatchingFeatures: Sendable, Hashable {
    /// No soft match at all: an incoming user that no cloud user hard-matches is created.
    public var blockSoftMatchEnabled: Bool
    /// No hard match into any cloud-managed user (Entra's tenant-wide takeover block).
    public var blockCloudObjectTakeoverThroughHardMatchEnabled: Bool
    /// Soft match on `userPrincipalName` as well as on the primary SMTP address.
    public var softMatchOnUpnEnabled: Bool
    /// Lets sync change a synced user's `onPremisesImmutableId` (the July 2026 mapping lock is off).
    public var allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled: Bool

    public init(blockSoftMatchEnabled: Bool = false, blockCloudObjectTakeoverThroughHardMatchEnabled: Bool = false,
                softMatchOnUpnEnabled: Bool = true, allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled: Bool = false) {
        self.blockSoftMatchEnabled = blockSoftMatchEnabled
        self.blockCloudObjectTakeoverThroughHardMatchEnabled = blockCloudObjectTakeoverThroughHardMatchEnabled
        self.softMatchOnUpnEnabled = softMatchOnUpnEnabled
        self.allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled = allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled
    }
}

/// What matching needs to know of a cloud user.
public struct CloudUser: Sendable, Hashable {
    public var id: String
    public var userPrincipalName: String
    public var proxyAddresses: [String]
    public var onPremisesImmutableId: String?
    /// True when on-premises is the user's source of authority (the user is synced).
    public var onPremisesSyncEnabled: Bool
    /// True when the user holds a directory role, directly or through a role-assignable group.
    public var holdsDirectoryRole: Bool

    public init(id: String, userPrincipalName: String, proxyAddresses: [String] = [], onPremisesImmutableId: String? = nil,
                onPremisesSyncEnabled: Bool = false, holdsDirectoryRole: Bool = false) {
        self.id = id
        self.userPrincipalName = userPrincipalName
        self.proxyAddresses = proxyAddresses
        self.onPremisesImmutableId = onPremisesImmutableId
        self.onPremisesSyncEnabled = onPremisesSyncEnabled
        self.holdsDirectoryRole = holdsDirectoryRole
    }
}

/// A user arriving from on-premises, as matching sees it.
public struct IncomingUser: Sendable, Hashable {
    /// Base64 of `ms-DS-ConsistencyGuid` (or `objectGUID`), in .NET byte order.
    public var sourceAnchor: String
    public var userPrincipalName: String
    public var proxyAddresses: [String]
    /// The cloud user this on-premises object was joined to by an earlier run, if any.
    public var joinedCloudID: String?

    public init(sourceAnchor: String, userPrincipalName: String, proxyAddresses: [String] = [], joinedCloudID: String? = nil) {
        self.sourceAnchor = sourceAnchor
        self.userPrincipalName = userPrincipalName
        self.proxyAddresses = proxyAddresses
        self.joinedCloudID = joinedCloudID
    }

    /// The primary SMTP address (`SMTP:` in capitals), lowercased, if there is one.
    public var primarySMTP: String? {
        proxyAddresses.first { $0.hasPrefix("SMTP:") }.map { String($0.dropFirst(5)).lowercased() }
    }
}

/// Sync's per-object error codes, as Entra names them.
public enum SyncErrorCode: String, Sendable, Hashable {
    /// A hard match Entra refuses: into a cloud-managed user holding a role (June 2026), into any cloud-managed
    /// user when the takeover block is on, or a change of a synced user's mapping (July 2026).
    case invalidHardMatch = "InvalidHardMatch"
    /// A value another object holds (the anchor of another synced user; a primary SMTP address a cloud user with
    /// a different anchor holds).
    case attributeValueMustBeUnique = "AttributeValueMustBeUnique"
}

/// What to do with an incoming user.
public enum MatchDecision: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case hard, soft }
    /// Provision a new cloud user.
    case create
    /// Take over this cloud-managed user: on-premises becomes its source of authority (a soft match also writes
    /// the anchor to `onPremisesImmutableId`).
    case join(String, Kind)
    /// Already synced: flow the attributes to this user.
    case update(String)
    /// Already synced, and its anchor changed on-premises; the mapping lock is off, so the user's
    /// `onPremisesImmutableId` follows.
    case updateAnchor(String)
    /// Refused: nothing is created or linked; the object waits in quarantine with this error.
    case quarantine(SyncErrorCode, String)
}

/// Entra's matching rules for a user arriving from on-premises, including the June 2026 protection (no hard match
/// into a cloud-managed user that holds a role) and the July 2026 mapping lock. A pure function of the incoming
/// object, what the directory holds, the switches and the time.
public struct Matcher: Sendable {
    public var features: MatchingFeatures
    /// From this instant, hard matches into role holders are refused (Entra: 1 June 2026).
    public var enforcementDate: Date

    public static let defaultEnforcementDate = Date(timeIntervalSince1970: 1_780_272_000)  // 2026-06-01T00:00:00Z

    public init(features: MatchingFeatures = MatchingFeatures(), enforcementDate: Date = Matcher.defaultEnforcementDate) {
        self.features = features
        self.enforcementDate = enforcementDate
    }

    /// The cloud users matching may consider for `incoming`.
    public struct Candidates: Sendable {
        /// The user `joinedCloudID` names, if it still exists.
        public var joined: CloudUser?
        /// The user whose `onPremisesImmutableId` is the incoming anchor.
        public var byAnchor: CloudUser?
        /// The user with the incoming primary SMTP address among its proxy addresses.
        public var bySMTP: CloudUser?
        /// The user with the incoming user principal name.
        public var byUPN: CloudUser?

        public init(joined: CloudUser? = nil, byAnchor: CloudUser? = nil, bySMTP: CloudUser? = nil, byUPN: CloudUser? = nil) {
            self.joined = joined
            self.byAnchor = byAnchor
            self.bySMTP = bySMTP
            self.byUPN = byUPN
        }
    }

    public func decide(_ incoming: IncomingUser, candidates: Candidates, now: Date) -> MatchDecision {
        // Objects already synced keep flowing; their mapping may not move (July 2026) unless the tenant allows it.
        if let joined = candidates.joined {
            if joined.onPremisesImmutableId == incoming.sourceAnchor { return .update(joined.id) }
            if features.allowOnPremUpdateOfOnPremisesObjectIdentifierEnabled { return .updateAnchor(joined.id) }
            return .quarantine(.invalidHardMatch,
                               "Hard match operation blocked due to security hardening. Review OnPremisesObjectIdentifier mapping: the on-premises object's source anchor changed from '\(joined.onPremisesImmutableId ?? "")' to '\(incoming.sourceAnchor)'.")
        }
        // Hard match: only for new objects.
        if let user = candidates.byAnchor {
            // A synced user with this anchor is this object (an earlier run exported it and lost its join): the
            // anchor is the join key. Whether another on-premises object already holds the join is the caller's to
            // check.
            if user.onPremisesSyncEnabled { return .update(user.id) }
            if features.blockCloudObjectTakeoverThroughHardMatchEnabled {
                return .quarantine(.invalidHardMatch,
                                   "Hard match into the cloud-managed user '\(user.userPrincipalName)' is blocked: the tenant has blockCloudObjectTakeoverThroughHardMatchEnabled set.")
            }
            if user.holdsDirectoryRole, now >= enforcementDate {
                return .quarantine(.invalidHardMatch,
                                   "Hard match into the cloud-managed user '\(user.userPrincipalName)' is blocked because the user holds a directory role. Remove the role from the cloud user, or delete this on-premises object from quarantine, and the next cycle completes the match.")
            }
            return .join(user.id, .hard)
        }
        // Soft match: primary SMTP address, then user principal name; never into an administrator.
        guard !features.blockSoftMatchEnabled else { return .create }
        if let user = candidates.bySMTP, let smtp = incoming.primarySMTP {
            if user.onPremisesImmutableId != nil || user.onPremisesSyncEnabled {
                return .quarantine(.attributeValueMustBeUnique,
                                   "The proxy address 'SMTP:\(smtp)' is already held by user '\(user.userPrincipalName)', which has a different source anchor. AttributeConflictName: ProxyAddresses.")
            }
            if !user.holdsDirectoryRole { return .join(user.id, .soft) }
        }
        if features.softMatchOnUpnEnabled, let user = candidates.byUPN,
           user.onPremisesImmutableId == nil, !user.onPremisesSyncEnabled, !user.holdsDirectoryRole {
            return .join(user.id, .soft)
        }
        // Anything else is provisioned; a user principal name already taken is made unique at export.
        return .create
    }
}

/// Entra's duplicate attribute resiliency: a user principal name another object holds becomes
/// `prefix+NNNN@<initial domain>`; a proxy address another object holds is left off (quarantined). Each is recorded
/// as an `onPremisesProvisioningError` (`PropertyConflict`) on the user, and the rest of the object syncs.
public enum AttributeResiliency {
    public struct Result: Sendable, Hashable {
        public var userPrincipalName: String
        public var proxyAddresses: [String]
        /// Graph `onPremisesProvisioningError` values.
        public var errors: [JSONValue]
    }

    /// - Parameters:
    ///   - upnTaken: whether another object holds this user principal name (compared without case).
    ///   - proxyTaken: whether another object holds this proxy address.
    ///   - digits: four random digits (injectable for tests).
    public static func resolve(userPrincipalName: String, proxyAddresses: [String], initialDomain: String, now: String,
                               upnTaken: (String) -> Bool, proxyTaken: (String) -> Bool,
                               digits: () -> Int = { Int.random(in: 0...9999) }) -> Result {
        var errors: [JSONValue] = []
        func conflict(_ property: String, _ value: String) -> JSONValue {
            ["category": "PropertyConflict", "occurredDateTime": .string(now), "propertyCausingError": .string(property), "value": .string(value)]
        }
        var upn = userPrincipalName
        if upnTaken(upn) {
            let prefix = upn.split(separator: "@").first.map(String.init) ?? upn
            for _ in 0..<10_000 {
                let candidate = "\(prefix)+\(String(format: "%04d", digits() % 10_000))@\(initialDomain)"
                if !upnTaken(candidate) {
                    upn = candidate
                    break
                }
            }
            errors.append(conflict("UserPrincipalName", userPrincipalName))
        }
        var kept: [String] = []
        for address in proxyAddresses {
            if proxyTaken(address) {
                errors.append(conflict("ProxyAddress", address))
            } else {
                kept.append(address)
            }
        }
        return Result(userPrincipalName: upn, proxyAddresses: kept, errors: errors)
    }
}
