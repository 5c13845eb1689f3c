import Foundation
import TesseraCore

/// `/directory/tenantGovernance/governanceRequests` and `…/governanceRelationships`: a governing tenant asks a tenant
/// of this deployment to be governed under one of its policy templates; the governed tenant's Global Administrator
/// accepts (or rejects), which makes an active relationship; either side ends it as the policy allows.
///
/// A request and a relationship concern two tenants, so each is kept in both, as one record per tenant with the same
/// id, and every change writes both copies and an audit record in each tenant in one transaction: the two tenants
/// never disagree, however the server stops.
struct GovernanceRelationships {
    let context: RequestContext
    let app: TesseraApp

    static let requestKind = ObjectKind(rawValue: "governanceRequest")
    static let relationshipKind = ObjectKind(rawValue: "governanceRelationship")
    static let requestPermissions = (read: ["TenantGovernance-Request.Read.All", "TenantGovernance-Request.ReadWrite.All"],
                                     write: ["TenantGovernance-Request.ReadWrite.All"])
    static let relationshipPermissions = (read: ["TenantGovernance-Relationship.Read.All", "TenantGovernance-Relationship.ReadWrite.All"],
                                          write: ["TenantGovernance-Relationship.ReadWrite.All"])
    /// A request lapses after 14 days unanswered (Microsoft's example: requested on the 3rd, expiring on the 17th).
    static let requestLifetime: TimeInterval = 14 * 86_400

    var method: String { context.request.method }
    var tenant: String { context.tenant }
    var beta: Bool { context.version == "beta" }

    func type(_ name: String) -> String { beta ? "#microsoft.graph.tenantGovernanceServices.\(name)" : "#microsoft.graph.\(name)" }

    // MARK: Requests

    func requests(_ rest: [String]) async throws -> APIResponse {
        let metadata = "\(context.base)/$metadata#directory/tenantGovernance/governanceRequests"
        switch (rest.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: Self.requestPermissions.read)
            return try await list(Self.requestKind, metadata, type: "governanceRequest")
        case (1, "GET"):
            try context.caller.require(anyOf: Self.requestPermissions.read)
            return entity(try await one(Self.requestKind, rest[0]).body, metadata, type: "governanceRequest")
        case (0, "POST"):
            try context.caller.require(anyOf: Self.requestPermissions.write)
            return try await createRequest(metadata)
        case (1, "PATCH"):
            try context.caller.require(anyOf: Self.requestPermissions.write)
            try await answer(rest[0])
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "Use GET or POST on governanceRequests, GET or PATCH on a request.")
        }
    }

    func createRequest(_ metadata: String) async throws -> APIResponse {
        let body = try context.request.jsonObject()
        for key in body.keys where !["@odata.type", "governedTenantId", "governancePolicyTemplate@odata.bind"].contains(key) {
            throw DirectoryError.badRequest("Property '\(key)' is read-only or does not exist on type 'governanceRequest'.")
        }
        guard let governedID = body["governedTenantId"]?.stringValue?.lowercased(), !governedID.isEmpty else {
            throw DirectoryError.badRequest("'governedTenantId' is required.")
        }
        guard let bind = body["governancePolicyTemplate@odata.bind"]?.stringValue,
              let templateID = bind.split(separator: "/").last.map(String.init), !templateID.isEmpty else {
            throw DirectoryError.badRequest("'governancePolicyTemplate@odata.bind' must name a governance policy template.")
        }
        guard governedID != tenant else { throw DirectoryError.badRequest("A tenant cannot govern itself.") }
        let template = try await GovernancePolicyTemplates(context: context, app: app).template(templateID)
        guard let governed = try await app.store.read({ tx in try await tx.tenant(governedID) }), governed.id == governedID else {
            throw DirectoryError.badRequest("No tenant '\(governedID)' can be governed from this deployment.")
        }
        let governingID = tenant
        guard let governing = try await app.store.read({ tx in try await tx.tenant(governingID) }) else { throw DirectoryError.notFound(governingID) }
        let now = app.clock.now, id = Identifier.makeTimeOrdered(at: now)
        let request: [String: JSONValue] = [
            "id": .string(id), "governingTenantId": .string(governing.id), "governingTenantName": .string(governing.name),
            "governedTenantId": .string(governed.id), "governedTenantName": .string(governed.name),
            "requestDateTime": .string(Timestamp.format(now)), "expirationDateTime": .string(Timestamp.format(now.addingTimeInterval(Self.requestLifetime))),
            "status": "pending", "policySnapshot": Self.snapshot(of: template),
        ]
        let actor = context.caller.actor, address = context.request.clientAddress
        try await app.store.write { tx in
            // One open request a pair of tenants at a time (an expired one is not open), and none while they have an
            // active relationship.
            let open = try await tx.query(ObjectQuery(tenant: governingID, kinds: [Self.requestKind, Self.relationshipKind])).filter {
                guard $0.body["governedTenantId"]?.stringValue == governedID else { return false }
                if $0.body["status"] == "active" { return true }
                let expiry = $0.body["expirationDateTime"]?.stringValue.flatMap(Timestamp.parse) ?? .distantPast
                return $0.body["status"] == "pending" && expiry > now
            }
            guard open.isEmpty else {
                throw DirectoryError(.conflict, "Tenant \(governedID) already has a pending request or an active relationship with this tenant.")
            }
            try await Self.writeBoth(tx, id: id, kind: Self.requestKind, body: request, tenants: [governingID, governedID])
            try await Self.audit(tx, tenants: [governingID, governedID], objectId: id, kind: Self.requestKind, operation: "create",
                                 activity: "Create governance request", actor: actor, address: address, actingTenant: governingID, now: now)
        }
        var response = entity(request, metadata, type: "governanceRequest")
        response.status = 201
        return response
    }

    /// The governed tenant's answer: `status` to `accepted` or `rejected`, by its Global Administrator only. Accepting
    /// makes the relationship, in both tenants, in the same transaction.
    func answer(_ id: String) async throws {
        let body = try context.request.jsonObject()
        for key in body.keys where key != "status" && key != "@odata.type" {
            throw DirectoryError.badRequest("Only 'status' can be changed on a governance request.")
        }
        guard let status = body["status"]?.stringValue, status == "accepted" || status == "rejected" else {
            throw DirectoryError.badRequest("'status' must be 'accepted' or 'rejected'.")
        }
        let request = try await one(Self.requestKind, id)
        guard request.body["governedTenantId"]?.stringValue == tenant else {
            throw DirectoryError(.accessDenied, "Only the governed tenant answers a governance request.")
        }
        guard context.caller.userID != nil, context.caller.directoryRoles.contains(BuiltInRoles.globalAdministrator) else {
            throw DirectoryError(.accessDenied, "Only a Global Administrator of the governed tenant can accept or reject a governance request.")
        }
        let now = app.clock.now
        guard request.body["status"] == "pending" else {
            throw DirectoryError.badRequest("The request is \(request.body["status"]?.stringValue ?? "closed"); only a pending request can be answered.")
        }
        if let expiry = request.body["expirationDateTime"]?.stringValue.flatMap(Timestamp.parse), expiry <= now {
            throw DirectoryError.badRequest("The request expired at \(Timestamp.format(expiry)); the governing tenant must send a new one.")
        }
        let governing = request.body["governingTenantId"]?.stringValue ?? "", governed = tenant
        let actor = context.caller.actor, address = context.request.clientAddress, relationshipID = Identifier.make()
        try await app.store.write { tx in
            // Checked again in the transaction: a request is answered once, so it makes at most one relationship.
            guard let current = try await tx.object(tenant: governed, id: request.id), current.body["status"] == "pending" else {
                throw DirectoryError(.conflict, "The request was answered meanwhile.")
            }
            var answered = current.body
            answered["status"] = .string(status)
            try await Self.writeBoth(tx, id: request.id, kind: Self.requestKind, body: answered, tenants: [governing, governed])
            try await Self.audit(tx, tenants: [governing, governed], objectId: request.id, kind: Self.requestKind, operation: "update",
                                 activity: status == "accepted" ? "Accept governance request" : "Reject governance request",
                                 actor: actor, address: address, actingTenant: governed, now: now)
            guard status == "accepted" else { return }
            let relationship: [String: JSONValue] = [
                "id": .string(relationshipID), "createdType": "approvedByAdmin", "creationDateTime": .string(Timestamp.format(now)),
                "status": "active", "governingTenantId": current.body["governingTenantId"] ?? .null,
                "governingTenantName": current.body["governingTenantName"] ?? .null, "governedTenantId": .string(governed),
                "governedTenantName": current.body["governedTenantName"] ?? .null, "policySnapshot": current.body["policySnapshot"] ?? .null,
            ]
            try await Self.writeBoth(tx, id: relationshipID, kind: Self.relationshipKind, body: relationship, tenants: [governing, governed])
            try await Self.audit(tx, tenants: [governing, governed], objectId: relationshipID, kind: Self.relationshipKind,
                                 operation: "create", activity: "Create governance relationship", actor: actor, address: address,
                                 actingTenant: governed, now: now)
        }
    }

    // MARK: Relationships

    func relationships(_ rest: [String]) async throws -> APIResponse {
        let metadata = "\(context.base)/$metadata#directory/tenantGovernance/governanceRelationships"
        switch (rest.count, method) {
        case (0, "GET"):
            try context.caller.require(anyOf: Self.relationshipPermissions.read)
            return try await list(Self.relationshipKind, metadata, type: "governanceRelationship")
        case (1, "GET"):
            try context.caller.require(anyOf: Self.relationshipPermissions.read)
            return entity(try await one(Self.relationshipKind, rest[0]).body, metadata, type: "governanceRelationship")
        case (1, "PATCH"):
            try context.caller.require(anyOf: Self.relationshipPermissions.write)
            try await terminate(rest[0])
            return .noContent
        default:
            throw DirectoryError(.methodNotAllowed, "Use GET on governanceRelationships, GET or PATCH on a relationship.")
        }
    }

    /// Ends a relationship (`status: terminated`): the governing tenant always may; the governed tenant only when
    /// the policy lets it (`governedTenantCanTerminate`). Both copies change, and the configuration monitors the
    /// governing tenant applied in the governed one stop, in one transaction.
    func terminate(_ id: String) async throws {
        let body = try context.request.jsonObject()
        guard body.keys.allSatisfy({ $0 == "status" || $0 == "@odata.type" }), body["status"] == "terminated" else {
            throw DirectoryError.badRequest("Only 'status' can be changed on a governance relationship, to 'terminated'.")
        }
        let relationship = try await one(Self.relationshipKind, id)
        guard relationship.body["status"] == "active" || relationship.body["status"] == "terminationRequestedByGoverningTenant" else {
            throw DirectoryError.badRequest("The relationship is already \(relationship.body["status"]?.stringValue ?? "ended").")
        }
        let governing = relationship.body["governingTenantId"]?.stringValue ?? "", governed = relationship.body["governedTenantId"]?.stringValue ?? ""
        if tenant == governed, relationship.body["policySnapshot"]?["governedTenantCanTerminate"] != true {
            throw DirectoryError(.accessDenied, "The relationship's policy does not let the governed tenant end it; the governing tenant can.")
        }
        let now = app.clock.now, actor = context.caller.actor, address = context.request.clientAddress, acting = tenant
        try await app.store.write { tx in
            guard let current = try await tx.object(tenant: acting, id: relationship.id) else { throw DirectoryError.notFound(id) }
            var ended = current.body
            ended["status"] = "terminated"
            try await Self.writeBoth(tx, id: relationship.id, kind: Self.relationshipKind, body: ended, tenants: [governing, governed])
            try await Self.audit(tx, tenants: [governing, governed], objectId: relationship.id, kind: Self.relationshipKind,
                                 operation: "update", activity: "Terminate governance relationship", actor: actor, address: address,
                                 actingTenant: acting, now: now)
            // The configuration monitors the governing tenant applied stop with the relationship, in the same transaction.
            try await GovernedConfigurationMonitors.stop(tx, governed: governed, relationshipID: relationship.id,
                                                         governingName: current.body["governingTenantName"]?.stringValue ?? governing,
                                                         actor: actor, now: now)
        }
    }

    // MARK: Shared

    /// Graph's `relationshipPolicy`: the template as it is when the request is made.
    static func snapshot(of template: StoredObject) -> JSONValue {
        [
            "policyId": .string(template.id), "governedTenantCanTerminate": template.body["governedTenantCanTerminate"] ?? false,
            "delegatedAdministrationRoleAssignments": template.body["delegatedAdministrationRoleAssignments"] ?? [],
            "multiTenantApplicationsToProvision": template.body["multiTenantApplicationsToProvision"] ?? [],
        ]
    }

    /// Writes (or replaces) the record in each tenant.
    static func writeBoth(_ tx: any DirectoryTransaction, id: String, kind: ObjectKind, body: [String: JSONValue], tenants: [String]) async throws {
        for tenant in tenants {
            if let existing = try await tx.object(tenant: tenant, id: id) {
                var next = StoredObject(tenant: tenant, id: id, kind: kind, body: body)
                next.version = existing.version + 1
                try await tx.update(next, expectedVersion: existing.version)
            } else {
                try await tx.insert(StoredObject(tenant: tenant, id: id, kind: kind, body: body))
            }
        }
    }

    /// An audit record in each tenant: who acted, for which tenant, from which address.
    static func audit(_ tx: any DirectoryTransaction, tenants: [String], objectId: String, kind: ObjectKind, operation: String,
                      activity: String, actor: Actor, address: String?, actingTenant: String, now: Date) async throws {
        var initiatedBy = actor.initiatedBy
        if case .object(var object) = initiatedBy, case .object(var user)? = object["user"] {
            user["ipAddress"] = .optional(address)
            object["user"] = .object(user)
            initiatedBy = .object(object)
        }
        for tenant in tenants {
            _ = try await tx.record(ChangeRecord(tenant: tenant, objectId: objectId, kind: kind, operation: operation, activity: activity,
                                                 actor: initiatedBy, at: Timestamp.format(now),
                                                 details: ["actorTenantId": .string(actingTenant), "ipAddress": .optional(address)]))
        }
    }

    func one(_ kind: ObjectKind, _ id: String) async throws -> StoredObject {
        let tenant = self.tenant
        guard let found = try await app.store.read({ tx in try await tx.object(tenant: tenant, id: id.lowercased()) }), found.kind == kind else {
            throw DirectoryError.notFound(id)
        }
        return found
    }

    func list(_ kind: ObjectKind, _ metadata: String, type name: String) async throws -> APIResponse {
        let tenant = self.tenant
        let values = try await app.store.read { tx in try await tx.query(ObjectQuery(tenant: tenant, kinds: [kind])) }
            .sorted { $0.id < $1.id }.map { object -> JSONValue in
                var body = object.body.filter { !$0.key.hasPrefix("_") }
                body["@odata.type"] = .string(type(name))
                return .object(body)
            }
        return .json(["@odata.context": .string(metadata), "value": .array(try Lister.inMemory(values, context.parseOptions()))])
    }

    func entity(_ body: [String: JSONValue], _ metadata: String, type name: String) -> APIResponse {
        var out = body.filter { !$0.key.hasPrefix("_") }
        out["@odata.type"] = .string(type(name))
        out["@odata.context"] = .string("\(metadata)/$entity")
        return .json(.object(out))
    }
}
