import Foundation
import Sync
import TesseraCore

/// `/servicePrincipals/{id}/synchronization`: cross-tenant synchronization jobs of a configuration application, as
/// Microsoft documents them for the `Azure2Azure` template — `jobs` (create, list, get, delete), `jobs/{id}/start`,
/// `pause`, `restart`, `provisionOnDemand`, `schema` (get, put: the users' scoping filter and the `userType`
/// mapping), `jobs/validateCredentials`, and `secrets` (put).
struct SynchronizationHandler {
    let context: RequestContext
    let app: TesseraApp
    let servicePrincipal: StoredObject

    var method: String { context.request.method }
    var tenant: String { context.tenant }
    var spID: String { servicePrincipal.id }
    static let template = "Azure2Azure"
    static let readPermissions = ["Synchronization.Read.All", "Synchronization.ReadWrite.All", "Application.Read.All", "Application.ReadWrite.All",
                                  "Directory.Read.All", "Directory.ReadWrite.All"]
    static let writePermissions = ["Synchronization.ReadWrite.All", "Application.ReadWrite.All", "Directory.ReadWrite.All"]

    func handle(_ rest: [String]) async throws -> APIResponse {
        try context.caller.require(anyOf: method == "GET" ? Self.readPermissions : Self.writePermissions)
        switch rest {
        case ["secrets"]:
            guard method == "PUT" else { throw methodNotAllowed() }
            return try await putSecrets()
        case ["jobs"]:
            switch method {
            case "GET": return try await listJobs()
            case "POST": return try await createJob()
            default: throw methodNotAllowed()
            }
        case ["jobs", "validateCredentials"]:
            guard method == "POST" else { throw methodNotAllowed() }
            return try await validateCredentials()
        default: break
        }
        guard rest.count >= 2, rest[0] == "jobs" else { throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest.first ?? "")'.") }
        let job = try await self.job(rest[1])
        switch Array(rest.dropFirst(2)) {
        case []:
            switch method {
            case "GET":
                var body = Self.render(job)
                body["@odata.context"] = .string("\(context.base)/$metadata#servicePrincipals('\(spID)')/synchronization/jobs/$entity")
                return .json(.object(body))
            case "DELETE":
                try await update { configuration in configuration.jobs.removeAll { $0.id == job.id } }
                return .noContent
            default: throw methodNotAllowed()
            }
        case ["start"]:
            guard method == "POST" else { throw methodNotAllowed() }
            try await update(job) { $0.scheduleState = "Active"; $0.statusCode = "Active" }
            // The first cycle runs now, the next ones on the schedule (`CrossTenantSyncService`); a cycle another node
            // is running (or resuming) is that cycle.
            do {
                try await runner.run(.init(tenant: try await tenantRecord(), servicePrincipalID: spID, jobID: job.id))
            } catch is SyncRunInProgress {}
            return .noContent
        case ["pause"]:
            guard method == "POST" else { throw methodNotAllowed() }
            try await update(job) { $0.scheduleState = "Paused"; $0.statusCode = "Paused" }
            return .noContent
        case ["restart"]:
            guard method == "POST" else { throw methodNotAllowed() }
            let scope = try restartScope()
            try await update(job) { $0.quarantine = nil; $0.countSuccessiveCompleteFailures = 0; if $0.scheduleState == "Active" { $0.statusCode = "Active" } }
            do {
                try await runner.run(.init(tenant: try await tenantRecord(), servicePrincipalID: spID, jobID: job.id,
                                           forceDeletes: scope.contains("forcedeletes")))
            } catch let busy as SyncRunInProgress {
                throw DirectoryError(.conflict, "\(busy) Restart the job once it ends.")
            }
            return .noContent
        case ["provisionOnDemand"]:
            guard method == "POST" else { throw methodNotAllowed() }
            return try await provisionOnDemand(job)
        case ["schema"]:
            switch method {
            case "GET":
                var body = SynchronizationSchema.render(job)
                body["@odata.context"] = .string("\(context.base)/$metadata#servicePrincipals('\(spID)')/synchronization/jobs('\(job.id)')/schema/$entity")
                return .json(.object(body))
            case "PUT":
                let (filter, userType) = try SynchronizationSchema.parse(try context.request.jsonObject())
                try await update(job) { $0.scopingFilter = filter; $0.userType = userType }
                return .noContent
            default: throw methodNotAllowed()
            }
        default:
            throw DirectoryError(.badRequest, "Resource not found for the segment '\(rest[2])'.")
        }
    }

    var runner: CrossTenantSyncRunner { CrossTenantSyncRunner(app: app, baseURL: context.request.baseURL) }

    func methodNotAllowed() -> DirectoryError {
        DirectoryError(.methodNotAllowed, "The HTTP method '\(method)' is not allowed on this resource.")
    }

    func tenantRecord() async throws -> TenantRecord {
        guard let record = try await app.tenantRecord(tenant) else { throw DirectoryError.notFound(tenant) }
        return record
    }

    func job(_ id: String) async throws -> CrossTenantSyncJob {
        let settings = try await SynchronizationSettings.load(tenant: tenant, store: app.store)
        guard let job = settings.servicePrincipals[spID]?.jobs.first(where: { $0.id == id }) else { throw DirectoryError.notFound(id) }
        return job
    }

    /// Changes this service principal's synchronization (audited as an update of the application) in one transaction,
    /// the setting locked from the read to the commit (``SynchronizationSettings/update(tenant:store:_:)``): a run's
    /// write-back or another node's Graph call made at once is kept.
    func update(_ change: @Sendable (inout ServicePrincipalSynchronization) throws -> Void) async throws {
        let spID = spID
        try await SynchronizationSettings.update(tenant: tenant, store: app.store) { settings in
            var configuration = settings.servicePrincipals[spID] ?? ServicePrincipalSynchronization()
            try change(&configuration)
            settings.servicePrincipals[spID] = configuration
        }
        try await app.directory.recordEvent(tenant: tenant, objectId: spID, kind: .servicePrincipal, activity: "Update synchronization configuration",
                                            actor: context.caller.actor, details: ["displayName": servicePrincipal.body["displayName"] ?? nil])
    }

    func update(_ job: CrossTenantSyncJob, _ change: @Sendable (inout CrossTenantSyncJob) -> Void) async throws {
        try await update { configuration in
            guard let index = configuration.jobs.firstIndex(where: { $0.id == job.id }) else { throw DirectoryError.notFound(job.id) }
            change(&configuration.jobs[index])
        }
    }

    func listJobs() async throws -> APIResponse {
        let settings = try await SynchronizationSettings.load(tenant: tenant, store: app.store)
        return .json(["@odata.context": .string("\(context.base)/$metadata#servicePrincipals('\(spID)')/synchronization/jobs"),
                      "value": .array((settings.servicePrincipals[spID]?.jobs ?? []).map { .object(Self.render($0)) })])
    }

    /// `POST jobs {"templateId": "Azure2Azure"}`: only the cross-tenant synchronization template, on a configuration
    /// application made from Microsoft's gallery template.
    func createJob() async throws -> APIResponse {
        let body = try context.request.jsonObject()
        for key in body.keys where key != "templateId" && !key.hasPrefix("@") {
            throw DirectoryError.badRequest("Property '\(key)' is not supported when creating a synchronization job.")
        }
        guard let template = body["templateId"]?.stringValue else { throw DirectoryError.badRequest("Property 'templateId' is required.") }
        guard template == Self.template else {
            throw DirectoryError.badRequest("The template '\(template)' is not available: Tessera synchronizes only between tenants (Azure2Azure).")
        }
        guard servicePrincipal.body["applicationTemplateId"]?.stringValue == ApplicationTemplateHandler.crossTenantSynchronization else {
            throw DirectoryError.badRequest("The template 'Azure2Azure' is available only to a cross-tenant synchronization configuration (applicationTemplates/\(ApplicationTemplateHandler.crossTenantSynchronization)/instantiate).")
        }
        let job = CrossTenantSyncJob(id: "Azure2Azure.\(Identifier.make().replacingOccurrences(of: "-", with: "")).\(Identifier.make().replacingOccurrences(of: "-", with: ""))",
                                     templateId: template, servicePrincipalID: spID)
        try await update { $0.jobs.append(job) }
        var rendered = Self.render(job)
        rendered["@odata.context"] = .string("\(context.base)/$metadata#servicePrincipals('\(spID)')/synchronization/jobs/$entity")
        return .json(.object(rendered), status: 201)
    }

    /// The keys of `synchronizationSecret` Tessera acts on; any other is refused rather than kept unread.
    static let secretKeys: Set<String> = ["CompanyId", "AuthenticationType", "SyncNotificationSettings", "SyncAll", "BaseAddress", "SecretToken"]

    /// `PUT secrets {"value": [{"key", "value"}]}`: replaces the saved secrets.
    func putSecrets() async throws -> APIResponse {
        let pairs = try Self.pairs(try context.request.jsonObject()["value"], name: "value")
        if let target = pairs["CompanyId"], !Identifier.isGUID(target) {
            throw DirectoryError.badRequest("Invalid value for secret 'CompanyId': '\(target)' is not a tenant id.")
        }
        try await update { $0.secrets = pairs }
        return .noContent
    }

    static func pairs(_ value: JSONValue?, name: String) throws(DirectoryError) -> [String: String] {
        guard let items = value?.arrayValue else { throw DirectoryError.badRequest("Property '\(name)' is required: a collection of key and value pairs.") }
        var out: [String: String] = [:]
        for item in items {
            guard let key = item["key"]?.stringValue, let value = item["value"]?.stringValue else {
                throw DirectoryError.badRequest("Each item of '\(name)' needs a string 'key' and 'value'.")
            }
            guard secretKeys.contains(key) else {
                throw DirectoryError.badRequest("The synchronization secret '\(key)' is not supported; Tessera reads \(secretKeys.sorted().joined(separator: ", ")).")
            }
            out[key] = value
        }
        return out
    }

    /// `POST jobs/validateCredentials`: 204 when the target named (or saved) can be synchronized into, else 400 with why.
    func validateCredentials() async throws -> APIResponse {
        let body = try context.request.jsonObject()
        var secrets: [String: String]
        if body["useSavedCredentials"]?.boolValue == true {
            secrets = try await SynchronizationSettings.load(tenant: tenant, store: app.store).servicePrincipals[spID]?.secrets ?? [:]
        } else {
            secrets = try Self.pairs(body["credentials"], name: "credentials")
        }
        guard let target = secrets["CompanyId"]?.lowercased() else { throw DirectoryError.badRequest("The credentials name no target tenant (CompanyId).") }
        switch try await CrossTenantSyncTransport(app: app, target: target, secrets: secrets) {
        case .unreachable(let failure): throw DirectoryError.badRequest(failure.message)
        case .local(let importer, let record):
            if let refusal = try await importer.refusal(source: tenant, target: record) { throw DirectoryError.badRequest(refusal.message) }
        case .remote: break  // The credential is checked by the target at the first batch.
        }
        return .noContent
    }

    func restartScope() throws(DirectoryError) -> Set<String> {
        let body = context.request.body.isEmpty ? [:] : try context.request.jsonObject()
        let scope = body["criteria"]?["resetScope"]?.stringValue ?? ""
        return Set(scope.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty })
    }

    /// `POST jobs/{id}/provisionOnDemand`: synchronizes the subjects now, and answers with the steps, as Entra's
    /// `stringKeyStringValuePair` whose value is the JSON of the provisioning steps.
    func provisionOnDemand(_ job: CrossTenantSyncJob) async throws -> APIResponse {
        let body = try context.request.jsonObject()
        guard let parameters = body["parameters"]?.arrayValue, !parameters.isEmpty else {
            throw DirectoryError.badRequest("Property 'parameters' is required: the rule and the subjects to provision.")
        }
        var subjects: Set<String> = []
        for parameter in parameters {
            guard parameter["ruleId"]?.stringValue == SynchronizationSchema.ruleID else {
                throw DirectoryError.badRequest("Unknown ruleId '\(parameter["ruleId"]?.stringValue ?? "")'; read it from the job's schema.")
            }
            for subject in parameter["subjects"]?.arrayValue ?? [] {
                guard let id = subject["objectId"]?.stringValue, Identifier.isGUID(id),
                      ["user", "group"].contains(subject["objectTypeName"]?.stringValue?.lowercased() ?? "") else {
                    throw DirectoryError.badRequest("Each subject needs an objectId and an objectTypeName of User or Group.")
                }
                subjects.insert(id.lowercased())
            }
        }
        guard !subjects.isEmpty, subjects.count <= 5 else { throw DirectoryError.badRequest("Provision on demand takes one to five subjects.") }
        let report = try await runner.run(.init(tenant: try await tenantRecord(), servicePrincipalID: spID, jobID: job.id, subjects: subjects))
        var steps: [JSONValue] = report.entries.map { entry in
            ["provisioningSteps": [["name": "EntryExport", "type": "Export", "status": .string(entry.status == "success" ? "Success" : entry.status == "skipped" ? "Skipped" : "Failure"),
                                    "description": .string(entry.reason), "timestamp": .string(Timestamp.format(app.clock.now)),
                                    "details": ["objectId": .string(entry.sourceID), "targetObjectId": .optional(entry.targetID),
                                                "action": .string(entry.action)]]],
             "statusInfo": ["status": .string(entry.status)]]
        }
        if let refusal = report.refusal {
            steps = [["provisioningSteps": [["name": "EntryExport", "type": "Export", "status": "Failure", "description": .string(refusal.message),
                                             "timestamp": .string(Timestamp.format(app.clock.now)), "details": ["errorCode": .string(refusal.code)]]],
                      "statusInfo": ["status": "failure"]]]
        }
        return .json(["@odata.context": .string("\(context.base)/$metadata#microsoft.graph.stringKeyStringValuePair"),
                      "key": "Microsoft.Identity.Health.CPP.Common.DataContracts.SyncFabric.StatusInfo",
                      "value": .string(JSONValue.array(steps).serialized)])
    }

    /// Graph's `synchronizationJob`.
    static func render(_ job: CrossTenantSyncJob) -> [String: JSONValue] {
        func execution(_ e: CrossTenantSyncJob.Execution?) -> JSONValue {
            guard let e else { return .null }
            return ["activityIdentifier": nil, "countEntitled": .int(Int64(e.countImported)), "countEntitledForProvisioning": .int(Int64(e.countImported)),
                    "countEscrowed": 0, "countEscrowedRaw": 0, "countExported": .int(Int64(e.countExported)), "countExports": .int(Int64(e.countExported)),
                    "countImported": .int(Int64(e.countImported)), "countImportedDeltas": 0, "countImportedReferenceDeltas": 0,
                    "state": .string(e.state), "timeBegan": .string(e.timeBegan), "timeEnded": .string(e.timeEnded),
                    "error": e.error.map { ["code": .string($0.code), "message": .string($0.message), "tenantActionable": true] }
                        ?? ["code": "None", "message": "", "tenantActionable": false]]
        }
        let quarantine: JSONValue = job.quarantine.map { failure in
            ["currentBegan": .optional(job.lastExecution?.timeBegan), "nextAttempt": nil, "seriesBegan": .optional(job.lastExecution?.timeBegan),
             "seriesCount": .int(Int64(max(1, job.countSuccessiveCompleteFailures))),
             "reason": .string(failure.code == "TooManyDeletes" ? "TooManyDeletes" : "EncounteredQuarantineException"),
             "error": ["code": .string(failure.code), "message": .string(failure.message), "tenantActionable": true]]
        } ?? .null
        let minutes = job.intervalSeconds / 60
        return [
            "id": .string(job.id), "templateId": .string(job.templateId),
            "schedule": ["expiration": nil, "interval": .string("PT\(minutes)M"), "state": .string(job.scheduleState)],
            "status": [
                "code": .string(job.statusCode), "countSuccessiveCompleteFailures": .int(Int64(job.countSuccessiveCompleteFailures)),
                "escrowsPruned": false, "lastExecution": execution(job.lastExecution),
                "lastSuccessfulExecution": execution(job.lastSuccessfulExecution),
                "lastSuccessfulExecutionWithExports": execution(job.lastSuccessfulExecution), "quarantine": quarantine,
                "steadyStateFirstAchievedTime": "0001-01-01T00:00:00Z", "steadyStateLastAchievedTime": "0001-01-01T00:00:00Z",
                "troubleshootingUrl": nil, "progress": [],
                // Tessera's: the last run was handed back by a node that stopped (and resumed by another).
                "tesseraHandedBackDateTime": .optional(job.handedBackAt), "tesseraResumedDateTime": .optional(job.resumedAt),
                "synchronizedEntryCountByType": [["key": "User to User", "value": .int(Int64(job.synchronizedUsers))],
                                                 ["key": "Group to Group", "value": .int(Int64(job.synchronizedGroups))]],
            ],
            "synchronizationJobSettings": [["name": "AzureIngestionAttributeOptimization", "value": "False"],
                                           ["name": "LookaheadQueryEnabled", "value": "False"]],
        ]
    }
}
