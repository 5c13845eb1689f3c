/// One page of what a source tenant's synchronization job pushes to a target tenant: its users and security groups in
/// scope, already through the job's attribute mappings. A run is a sequence of batches with one `runID`, users before
/// groups, the last one marked `isLast`: what the run did not name has left the scope. In one deployment the batch is
/// handed over in process; between two deployments it is the JSON body of a `POST` to the target (`Codable`).
public struct CrossTenantSyncBatch: Codable, Sendable, Hashable {
    public var runID: String
    public var jobID: String
    public var sourceTenantID: String
    /// The source tenant's issuer: the home identity B2B sign-in names (`identities`, the token's `idp`).
    public var sourceIssuer: String
    /// The source allows automatic redemption outbound (`automaticUserConsentSettings.outboundAllowed`).
    public var automaticConsentOutbound: Bool
    public var users: [User]
    public var groups: [Group]
    public var isLast: Bool
    /// A full run: the end of the run deletes what it did not name. An on-demand run names only its subjects.
    public var isFull: Bool
    /// Deletions held back by the threshold before are carried out (`restart` with `ForceDeletes`).
    public var forceDeletes: Bool
    /// Accidental deletions prevention: a run that would delete more than this many objects deletes none (nil: off).
    public var deleteThreshold: Int?

    /// A user as the job's mappings give it.
    public struct User: Codable, Sendable, Hashable {
        public var id: String
        public var userPrincipalName: String
        public var displayName: String
        public var givenName: String?
        public var surname: String?
        public var mail: String?
        public var department: String?
        public var jobTitle: String?
        public var accountEnabled: Bool
        /// `Member` (the default mapping) or `Guest`.
        public var userType: String

        public init(id: String, userPrincipalName: String, displayName: String, givenName: String? = nil, surname: String? = nil,
                    mail: String? = nil, department: String? = nil, jobTitle: String? = nil, accountEnabled: Bool = true,
                    userType: String = "Member") {
            self.id = id.lowercased()
            self.userPrincipalName = userPrincipalName
            self.displayName = displayName
            self.givenName = givenName
            self.surname = surname
            self.mail = mail
            self.department = department
            self.jobTitle = jobTitle
            self.accountEnabled = accountEnabled
            self.userType = userType
        }
    }

    /// A security group and its members in scope (source ids). A group with many members comes in several batches of
    /// one run, each with a part of its members.
    public struct Group: Codable, Sendable, Hashable {
        public var id: String
        public var displayName: String
        public var description: String?
        public var mailNickname: String
        public var memberIDs: [String]

        public init(id: String, displayName: String, description: String? = nil, mailNickname: String, memberIDs: [String]) {
            self.id = id.lowercased()
            self.displayName = displayName
            self.description = description
            self.mailNickname = mailNickname
            self.memberIDs = memberIDs.map { $0.lowercased() }
        }
    }

    public init(runID: String, jobID: String, sourceTenantID: String, sourceIssuer: String, automaticConsentOutbound: Bool,
                users: [User] = [], groups: [Group] = [], isLast: Bool = false, isFull: Bool = true, forceDeletes: Bool = false,
                deleteThreshold: Int? = nil) {
        self.runID = runID
        self.jobID = jobID
        self.sourceTenantID = sourceTenantID.lowercased()
        self.sourceIssuer = sourceIssuer
        self.automaticConsentOutbound = automaticConsentOutbound
        self.users = users
        self.groups = groups
        self.isLast = isLast
        self.isFull = isFull
        self.forceDeletes = forceDeletes
        self.deleteThreshold = deleteThreshold
    }
}

/// What the target did with one or more batches: counts, and an entry per object it created, updated, deleted,
/// skipped or failed on (unchanged objects have none), which the source keeps as provisioning logs.
public struct CrossTenantSyncReport: Codable, Sendable, Hashable {
    /// `success`; `refused` (nothing written: `refusal` says why); `stopped-deletion-threshold-exceeded`.
    public var status = "success"
    public var refusal: Failure?
    public var added = 0, updated = 0, deleted = 0, skipped = 0, failed = 0
    /// Deletions held back by the threshold.
    public var pendingDeletions = 0
    public var entries: [Entry] = []

    public struct Failure: Codable, Sendable, Hashable {
        public var code: String
        public var message: String
        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    /// One object's outcome, in the words of Graph's `provisioningObjectSummary`.
    public struct Entry: Codable, Sendable, Hashable {
        public var sourceID: String
        public var sourceDisplayName: String
        /// `User` or `Group`.
        public var identityType: String
        /// `create`, `update`, `delete`, `other` (skipped).
        public var action: String
        /// `success`, `failure`, `skipped`.
        public var status: String
        public var targetID: String?
        public var reason: String
        public var error: Failure?

        public init(sourceID: String, sourceDisplayName: String, identityType: String, action: String, status: String, targetID: String?,
                    reason: String, error: Failure?) {
            self.sourceID = sourceID
            self.sourceDisplayName = sourceDisplayName
            self.identityType = identityType
            self.action = action
            self.status = status
            self.targetID = targetID
            self.reason = reason
            self.error = error
        }
    }

    public init() {}

    /// Adds another batch's report to this one.
    public mutating func merge(_ other: CrossTenantSyncReport) {
        if other.status != "success" { status = other.status }
        refusal = refusal ?? other.refusal
        added += other.added
        updated += other.updated
        deleted += other.deleted
        skipped += other.skipped
        failed += other.failed
        pendingDeletions += other.pendingDeletions
        entries += other.entries
    }
}
