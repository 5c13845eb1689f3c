public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
public import NIOSSL
import TesseraCore

/// The requests Tessera itself makes to another server: an OpenID Connect provider's discovery document, its keys and
/// its token endpoint (B2B with users of another deployment). Injected into `TesseraApp`, so tests can put another
/// Tessera in the network's place.
public protocol OutboundHTTP: Sendable {
    /// Sends `request` and returns the whole response; throws when the server cannot be reached or answers too much.
    func send(_ request: OutboundRequest) async throws -> OutboundResponse
}

/// An outbound request: `GET` or a form `POST`.
public struct OutboundRequest: Sendable {
    public var method: String
    public var url: URL
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Whether plain `http` is allowed when the host is a loopback address (back-channel logout to an app on this
    /// machine); every other request is https.
    public var allowsLoopbackHTTP = false

    public init(method: String, url: URL, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

public struct OutboundResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// HTTPS over SwiftNIO: one request a connection, TLS 1.2 or later with full verification against the system's roots
/// and the operator's (`serve --identity-provider-ca`), 10 seconds to connect, 15 for the answer, at most 1 MiB.
public struct NIOOutboundHTTP: OutboundHTTP {
    let tls: NIOSSLContext
    static let maxBody = 1 << 20

    /// `additionalRoots` are trusted besides the system's.
    public init(additionalRoots: [NIOSSLCertificate] = []) throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if !additionalRoots.isEmpty { configuration.additionalTrustRoots = [.certificates(additionalRoots)] }
        tls = try NIOSSLContext(configuration: configuration)
    }

    public func send(_ request: OutboundRequest) async throws -> OutboundResponse {
        let plain = request.allowsLoopbackHTTP && request.url.scheme == "http" && request.url.host.map(LogoutURLRule.isLoopback) == true
        guard request.url.scheme == "https" || plain, let host = request.url.host else {
            throw DirectoryError.badRequest("Only https URLs are fetched: \(request.url.absoluteString)")
        }
        let port = request.url.port ?? (plain ? 80 : 443)
        let name = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        let isAddress = name.contains(":") || name.split(separator: ".").allSatisfy { Int($0) != nil }
        let tls = self.tls
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: name, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if !plain { try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : name)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await withThrowingTaskGroup(of: OutboundResponse?.self) { group in
            group.addTask {
                try await channel.executeThenClose { inbound, outbound in
                    var path = request.url.path.isEmpty ? "/" : request.url.path
                    if let query = request.url.query { path += "?" + query }
                    var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: path)
                    head.headers.add(name: "Host", value: request.url.port.map { "\(host):\($0)" } ?? host)
                    head.headers.add(name: "Connection", value: "close")
                    head.headers.add(name: "Accept", value: "application/json")
                    if request.method != "GET" { head.headers.add(name: "Content-Length", value: "\(request.body.count)") }
                    for (field, value) in request.headers { head.headers.add(name: field, value: value) }
                    // One write: a server may answer and close as soon as the body's bytes arrive (its Content-Length
                    // reached), and a separate write of the end (no bytes on the wire) would then fail.
                    var parts: [HTTPClientRequestPart] = [.head(head)]
                    if !request.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: request.body)))) }
                    parts.append(.end(nil))
                    try await outbound.write(contentsOf: parts)
                    var response = OutboundResponse(status: 0, body: [])
                    for try await part in inbound {
                        switch part {
                        case .head(let head): response.status = Int(head.status.code)
                        case .body(var buffer):
                            guard response.body.count + buffer.readableBytes <= Self.maxBody else {
                                throw FederationFailure(50107, "\(request.url.host ?? "The server") answered more than 1 MiB.")
                            }
                            response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
                        case .end: return response
                        }
                    }
                    throw FederationFailure(50107, "\(request.url.host ?? "The server") closed the connection before its answer ended.")
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(15))
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let response = first else {
                channel.channel.close(promise: nil)
                throw FederationFailure(50107, "\(request.url.host ?? "The server") did not answer within 15 seconds.")
            }
            return response
        }
    }
}
