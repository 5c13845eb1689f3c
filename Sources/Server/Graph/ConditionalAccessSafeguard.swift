import Foundation
import TesseraCore

/// Entra's "don't lock yourself out" safeguard: an enabled policy that would block every Global Administrator, or the
/// administrator writing it, is refused unless it leaves at least one of them out. Whether it blocks someone is asked
/// of the same engine that decides sign-ins, for the admin center: for the caller, from where the request comes now;
/// for the Global Administrators, from anywhere (a policy that blocks them only from elsewhere still blocks them when
/// they are elsewhere, so only its user and application conditions can keep it from applying).
struct ConditionalAccessSafeguard {
    let app: TesseraApp
    let tenant: TenantRecord

    /// Conditions that depend on where and how someone signs in, not on who they are or what they sign in to: a policy
    /// kept from applying only by these applies to the same person somewhere, some day.
    static let circumstantial: ConditionalAccessConditions = [
        .location, .devicePlatform, .clientApps, .devices, .signInRisk, .userRisk, .insiderRisk, .authenticationFlow, .servicePrincipalRisk,
    ]

    /// Throws a Graph 400 naming who would be locked out when `candidate` (the policy as it would be stored) blocks
    /// every Global Administrator or `caller`.
    func check(_ candidate: [String: JSONValue], caller: Caller, request: APIRequest) async throws {
        guard candidate["state"]?.stringValue == "enabled",
              candidate["grantControls"]?["builtInControls"]?.arrayValue?.contains(where: { $0.stringValue?.lowercased() == "block" }) == true
        else { return }
        let tenantID = tenant.id
        let directory = app.directory
        let (locations, administrators) = try await app.store.read { tx in
            let locations = try await tx.query(ObjectQuery(tenant: tenantID, kinds: [.namedLocation])).filter { $0.deletedAt == nil }
            let assignments = try await tx.query(ObjectQuery(
                tenant: tenantID, kinds: [.roleAssignment],
                filter: .compare(PropertyPath(["roleDefinitionId"]), .eq, .string(BuiltInRoles.globalAdministrator))))
            var users: Set<String> = []
            for assignment in assignments where assignment.body["directoryScopeId"]?.stringValue ?? "/" == "/" {
                guard let principal = assignment.body["principalId"]?.stringValue,
                      let object = try await tx.object(tenant: tenantID, id: principal), object.deletedAt == nil else { continue }
                if object.kind == .user { users.insert(object.id) }
                if object.kind == .group { users.formUnion(try await directory.transitiveMembers(tenant: tenantID, of: object.id, tx: tx)) }
            }
            return (locations, users.sorted())
        }
        var policy = candidate
        policy["id"] = policy["id"] ?? "candidate"
        let engine = ConditionalAccessEngine(policies: [.object(policy)], namedLocations: locations.map { .object($0.body) },
                                             applicationGroups: ConditionalAccessGate.applicationGroups)
        func decision(_ userID: String, from request: APIRequest?) async throws -> AppliedPolicy? {
            let facts = try await app.conditionalAccess.userFacts(app: app, tenant: tenant, userID: userID, clientID: AdminCenter.appID,
                                                                  amr: ["fido", "mfa"], authTime: Int64(app.clock.now.timeIntervalSince1970),
                                                                  clientAddress: request?.clientAddress, userAgent: request?.header("user-agent"))
            return engine.decide(facts).policies.first
        }
        func blocksAnywhere(_ userID: String) async throws -> Bool {
            guard let result = try await decision(userID, from: nil) else { return false }
            return result.conditionsNotSatisfied.subtracting(Self.circumstantial).isEmpty
        }
        func names(_ ids: [String]) async throws -> String {
            let objects = try await app.store.read { tx in
                var found: [String] = []
                for id in ids { found.append(try await tx.object(tenant: tenantID, id: id)?.body["userPrincipalName"]?.stringValue ?? id) }
                return found
            }
            return objects.joined(separator: ", ")
        }
        if let callerID = caller.userID, try await decision(callerID, from: request)?.result == .failure {
            throw DirectoryError.badRequest(
                "This policy would block you (\(try await names([callerID]))) from the admin center, from where you are now. Exclude yourself (conditions.users.excludeUsers), or turn it on in report-only mode (enabledForReportingButNotEnforced) first and check its impact.")
        }
        var blocked: [String] = []
        for administrator in administrators where try await blocksAnywhere(administrator) { blocked.append(administrator) }
        if !administrators.isEmpty, blocked.count == administrators.count {
            throw DirectoryError.badRequest(
                "This policy would block every Global Administrator (\(try await names(blocked))). Exclude at least one of them (conditions.users.excludeUsers), or the Global Administrator role (conditions.users.excludeRoles: \(BuiltInRoles.globalAdministrator)), or turn it on in report-only mode first.")
        }
    }
}
