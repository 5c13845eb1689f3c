import Foundation
import Logging
import TesseraCore

/// `POST /$batch`: up to 20 requests, honouring `dependsOn` (a request whose dependency failed gets 424).
///
/// A batch whose requests are all independent writes (no `dependsOn`; creates and updates of users and groups, members
/// and owners added to groups) runs them through `DirectoryService.apply` in one transaction: each is checked as its
/// own request would be (permissions, the object it names, its body), each is all or nothing on its own (one refused
/// fails alone with its own error, the others are written), and each is answered exactly as the request alone would
/// be. Any other batch runs its requests in order, each as a request of its own.
struct BatchHandler {
    let api: GraphAPI

    static let maxRequests = 20

    func handle(_ c: RequestContext) async throws -> APIResponse {
        guard c.request.method == "POST" else { throw DirectoryError(.methodNotAllowed, "Use POST for $batch.") }
        let body = try c.request.jsonObject()
        guard let requests = body["requests"]?.arrayValue else { throw DirectoryError.badRequest("Property 'requests' is required.") }
        guard !requests.isEmpty, requests.count <= Self.maxRequests else {
            throw DirectoryError.badRequest("The number of batch requests must be between 1 and \(Self.maxRequests).")
        }
        var ids: [String] = []
        for request in requests {
            guard let id = request["id"]?.stringValue ?? request["id"]?.intValue.map(String.init), !id.isEmpty else {
                throw DirectoryError.badRequest("Every batch request needs an 'id'.")
            }
            guard !ids.contains(id) else { throw DirectoryError.badRequest("Batch request ids must be unique: '\(id)' repeats.") }
            for dependency in request["dependsOn"]?.arrayValue?.compactMap(\.stringValue) ?? [] where !ids.contains(dependency) {
                throw DirectoryError.badRequest("Request '\(id)' depends on '\(dependency)', which is not an earlier request.")
            }
            guard request["method"]?.stringValue != nil, request["url"]?.stringValue != nil else {
                throw DirectoryError.badRequest("Request '\(id)' needs 'method' and 'url'.")
            }
            ids.append(id)
        }
        let inner = requests.map { innerRequest($0, context: c) }
        let responses: [APIResponse]
        if let writes = Self.independentWrites(requests, inner) {
            responses = try await applyTogether(writes, context: c)
        } else {
            responses = await runInOrder(requests, inner, ids: ids)
        }
        return .json(["responses": .array(zip(ids, responses).map(Self.item))])
    }

    /// Each request as a request of its own, in order; one whose dependency failed is answered 424.
    func runInOrder(_ requests: [JSONValue], _ inner: [Result<APIRequest, DirectoryError>], ids: [String]) async -> [APIResponse] {
        var statuses: [String: Int] = [:]
        var responses: [APIResponse] = []
        for (index, request) in requests.enumerated() {
            let dependencies = request["dependsOn"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let response: APIResponse
            if dependencies.contains(where: { !(200..<300).contains(statuses[$0] ?? 0) }) {
                response = .error(DirectoryError(.failedDependency, "A request this request depends on failed."))
            } else {
                switch inner[index] {
                case .success(let request): response = await api.app.handle(request)
                case .failure(let error): response = .error(error)
                }
            }
            statuses[ids[index]] = response.status
            responses.append(response)
        }
        return responses
    }

    /// One entry of `responses`: the request's id, status, headers and body.
    static func item(id: String, response: APIResponse) -> JSONValue {
        var headers: [String: JSONValue] = [:]
        for (name, value) in response.headers { headers[name] = .string(value) }
        var item: [String: JSONValue] = ["id": .string(id), "status": .int(Int64(response.status)), "headers": .object(headers)]
        if !response.body.isEmpty {
            item["body"] = (try? JSONParser.parse(response.body)) ?? .string(String(decoding: response.body, as: UTF8.self))
        }
        return .object(item)
    }

    /// A batch request as the request it stands for: the batch's caller, the request's own headers and body.
    func innerRequest(_ request: JSONValue, context c: RequestContext) -> Result<APIRequest, DirectoryError> {
        let method = request["method"]?.stringValue ?? "GET"
        var url = request["url"]?.stringValue ?? ""
        if !url.hasPrefix("/") { url = "/" + url }
        let parts = url.split(separator: "?", maxSplits: 1)
        let path = "/\(c.version)" + String(parts.first ?? "")
        let query = parts.count > 1 ? APIRequest.parseForm(String(parts[1])) : []
        var headers = c.request.headers.filter { ["authorization", "host"].contains($0.key) }
        for (name, value) in request["headers"]?.objectValue ?? [:] { headers[name.lowercased()] = value.stringValue ?? "" }
        var body: [UInt8] = []
        if let payload = request["body"], payload != .null {
            guard headers["content-type"] != nil else {
                return .failure(DirectoryError.badRequest("Write requests (POST, PUT, PATCH) must specify a Content-Type header value."))
            }
            body = payload.serializedBytes
        }
        let inner = APIRequest(method: method, path: path, query: query, headers: headers, body: body, baseURL: c.request.baseURL)
        if inner.segments.dropFirst().first == "$batch" {
            return .failure(DirectoryError.badRequest("Nested $batch requests are not allowed."))
        }
        return .success(inner)
    }
}

// MARK: Independent writes in one transaction

extension BatchHandler {
    /// A write `DirectoryService.apply` can run beside the others, as its URL and method name it.
    enum IndependentWrite {
        /// `POST /users`, `POST /groups`.
        case create(ObjectKind)
        /// `PATCH /users/{id}`, `PATCH /groups/{id}` (an id, or a user's principal name).
        case update(ObjectKind, key: String)
        /// `POST /groups/{id}/members/$ref`, `POST /groups/{id}/owners/$ref`.
        case link(key: String, relation: String)
    }

    /// The batch's requests as independent writes, or nil when one of them is not one: it depends on another, has a
    /// query, brings its own credentials, is refused before it names anything, or is anything else.
    static func independentWrites(_ requests: [JSONValue],
                                  _ inner: [Result<APIRequest, DirectoryError>]) -> [(write: IndependentWrite, request: APIRequest)]? {
        var writes: [(write: IndependentWrite, request: APIRequest)] = []
        for (request, inner) in zip(requests, inner) {
            guard request["dependsOn"]?.arrayValue?.isEmpty ?? true, case .success(let inner) = inner, inner.query.isEmpty,
                  request["headers"]?.objectValue?.keys.contains(where: { $0.lowercased() == "authorization" }) != true,
                  let write = independentWrite(inner)
            else { return nil }
            writes.append((write, inner))
        }
        return writes
    }

    static func independentWrite(_ request: APIRequest) -> IndependentWrite? {
        let path = GraphAPI.normalizeKeySegments(Array(request.segments.dropFirst()))
        guard let set = path.first, let kind = GraphAPI.entitySets[set], kind == .user || kind == .group else { return nil }
        // `delta` and `$count` are functions, not objects: they are answered by their own handlers.
        if path.count > 1, ["delta", "$count"].contains(path[1]) { return nil }
        switch (request.method, path.count) {
        case ("POST", 1): return .create(kind)
        case ("PATCH", 2): return .update(kind, key: path[1])
        case ("POST", 4) where kind == .group && ["members", "owners"].contains(path[2]) && path[3] == "$ref":
            return .link(key: path[1], relation: path[2])
        default: return nil
        }
    }

    /// A write checked as its request would be, ready for `apply`, with how its outcome is answered.
    struct PlannedWrite {
        let write: DirectoryWrite
        let respond: (StoredObject) -> APIResponse
    }

    /// Checks each write as `ResourceHandler` and `RelationHandler` check its request, in the same order (the object it
    /// names, then the permission, then the body), runs those that pass in one `apply`, and answers each: a refused one
    /// with its error, as the request alone would have been answered.
    func applyTogether(_ writes: [(write: IndependentWrite, request: APIRequest)], context c: RequestContext) async throws -> [APIResponse] {
        // Refused while checked: answered now. Checked: answered from `apply`'s result, in place.
        var answers: [Result<PlannedWrite, any Error>] = []
        for (write, request) in writes {
            do {
                answers.append(.success(try await plan(write, RequestContext(request: request, caller: c.caller, version: c.version))))
            } catch {
                answers.append(.failure(error))
            }
        }
        let planned = answers.compactMap { try? $0.get() }
        var results = try await api.app.directory.apply(planned.map(\.write), tenant: c.tenant, actor: c.caller.actor).makeIterator()
        return zip(writes, answers).map { write, answer in
            switch answer {
            case .failure(let error): return self.answer(error, to: write.request)
            case .success(let plan):
                switch results.next() {
                case .success(let object)?: return plan.respond(object)
                case .failure(let error)?: return self.answer(error, to: write.request)
                case nil: return self.answer(DirectoryError(.internalError, "The batch lost a result."), to: write.request)
                }
            }
        }
    }

    func plan(_ write: IndependentWrite, _ c: RequestContext) async throws -> PlannedWrite {
        switch write {
        case .create(let kind):
            try c.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            let body = try c.request.jsonObject()
            return PlannedWrite(write: .create(kind, body: body)) { ResourceHandler.created($0, context: c) }
        case .update(let kind, let key):
            let id = try await ResourceHandler(api: api, context: c, kind: kind).resolve(key)
            try c.caller.require(anyOf: Caller.permissions(for: kind, write: true))
            if kind == .user { try await c.caller.requireMayManage(user: id, app: api.app) }
            let patch = try c.request.jsonObject()
            return PlannedWrite(write: .update(id: id, kind: kind, patch: patch, ifMatch: try c.etagVersion())) { _ in .noContent }
        case .link(let key, let relation):
            let resource = ResourceHandler(api: api, context: c, kind: .group)
            let id = try await resource.resolve(key)
            try RelationHandler(resource: resource, id: id).requireWrite()
            let target = try RelationHandler.referenceTarget(try c.request.jsonObject())
            return PlannedWrite(write: .link(source: id, relation: relation, target: target)) { _ in .noContent }
        }
    }

    /// An error as `TesseraApp.handle` answers it for a request of its own.
    func answer(_ error: any Error, to request: APIRequest) -> APIResponse {
        if let error = error as? DirectoryError { return .error(error, request: request, now: api.app.clock.now) }
        api.app.logger.error("Unhandled error in $batch on \(request.method) /\(request.segments.joined(separator: "/")): \(String(describing: error))")
        return .error(DirectoryError(.internalError, "An unexpected error occurred."), request: request, now: api.app.clock.now)
    }
}
