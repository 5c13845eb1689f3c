import Foundation
import TesseraCore

/// `POST /$batch`: up to 20 requests, run in order, honouring `dependsOn` (a request whose dependency
/// failed gets 424).
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
        var statuses: [String: Int] = [:]
        var responses: [JSONValue] = []
        for (index, request) in requests.enumerated() {
            let id = ids[index]
            let dependencies = request["dependsOn"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let response: APIResponse
            if dependencies.contains(where: { !(200..<300).contains(statuses[$0] ?? 0) }) {
                response = .error(DirectoryError(.failedDependency, "A request this request depends on failed."))
            } else {
                response = await run(request, context: c)
            }
            statuses[id] = response.status
            var headers: [String: JSONValue] = [:]
            for (name, value) in response.headers { headers[name] = .string(value) }
            var item: [String: JSONValue] = ["id": .string(id), "status": .int(Int64(response.status)), "headers": .object(headers)]
            if !response.body.isEmpty {
                item["body"] = (try? JSONParser.parse(response.body)) ?? .string(String(decoding: response.body, as: UTF8.self))
            }
            responses.append(.object(item))
        }
        return .json(["responses": .array(responses)])
    }

    func run(_ request: JSONValue, context c: RequestContext) async -> APIResponse {
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
                return .error(DirectoryError.badRequest("Write requests (POST, PUT, PATCH) must specify a Content-Type header value."))
            }
            body = payload.serializedBytes
        }
        let inner = APIRequest(method: method, path: path, query: query, headers: headers, body: body, baseURL: c.request.baseURL)
        if inner.segments.dropFirst().first == "$batch" {
            return .error(DirectoryError.badRequest("Nested $batch requests are not allowed."))
        }
        return await api.app.handle(inner)
    }
}

