import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore
import TesseraCore

/// Adapts Hummingbird requests to `TesseraApp.handle`, and its answers back.
public struct TesseraResponder: HTTPResponder {
    public typealias Context = BasicRequestContext
    let app: TesseraApp
    let scheme: String

    public init(app: TesseraApp, scheme: String) {
        self.app = app
        self.scheme = scheme
    }

    public func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
        var request = request
        var headers: [String: String] = [:]
        for field in request.headers {
            let name = field.name.canonicalName.lowercased()
            headers[name] = headers[name].map { "\($0), \(field.value)" } ?? field.value
        }
        let limit = app.maxBodyBytes
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: limit + 1)
        } catch {
            return Self.convert(.error(.init(.requestTooLarge, "The request body exceeds the maximum of \(limit) bytes.")))
        }
        if body.readableBytes > limit {
            return Self.convert(.error(.init(.requestTooLarge, "The request body exceeds the maximum of \(limit) bytes.")))
        }
        let host = request.head.authority ?? headers["host"] ?? "localhost"
        let rawQuery = request.uri.query ?? ""
        let apiRequest = APIRequest(
            method: request.method.rawValue, path: request.uri.path,
            query: APIRequest.parseForm(rawQuery),
            headers: headers, body: Array(buffer: body), baseURL: "\(scheme)://\(host)")
        return Self.convert(await app.handle(apiRequest))
    }

    static func convert(_ response: APIResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        return Response(status: .init(code: response.status), headers: fields,
                        body: .init(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}
