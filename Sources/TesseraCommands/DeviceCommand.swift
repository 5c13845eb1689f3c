import ArgumentParser
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwiftASN1
import TesseraCore
import X509

/// `tessera device join`: the client side of hybrid join through Kerberos for a domain-joined Linux machine, as
/// Himmelblau does it for Entra: a ticket for `adrs/<server's host>` from the machine's keytab (through the system's
/// MIT GSSAPI), a new P-256 key and its certificate request, the registration, the server's mutual authentication
/// checked, and the device certificate and key written to a folder.
struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "This machine as a device of a Tessera tenant; a tenant's device certificate authority.", subcommands: [Join.self, DeviceCACommand.self])

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register this domain-joined machine as a hybrid joined device, proving its membership with Kerberos.")
        @Option(help: "Tessera's URL as the SCP names it (https://tessera.corp.example.test).") var server: String
        @Option(help: "The tenant id (the SCP's azureADId keyword).") var tenant: String
        @Option(help: "The machine's keytab (/etc/krb5.keytab).") var keytab: String
        @Option(help: "The machine's principal in the keytab (WS01$@CORP.EXAMPLE.TEST; default: the keytab's first).") var principal: String?
        @Option(help: "PEM file of the CA that signed Tessera's TLS certificate (default: the system's roots).") var caFile: String?
        @Option(help: "Connect to this IP address instead of resolving the server's name (as curl --resolve).") var address: String?
        @Option(help: "Where to write device.pem, device-key.pem and device.json.") var out: String = "./tessera-device"
        @Option(help: "The device's display name (default: the computer's name).") var displayName: String?
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            guard FileManager.default.isReadableFile(atPath: keytab) else { throw ValidationError("cannot read \(keytab)") }
            guard let url = URL(string: server), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw ValidationError("--server must be an https:// URL")
            }
            if let caFile { guard FileManager.default.isReadableFile(atPath: caFile) else { throw ValidationError("cannot read \(caFile)") } }
        }

        func run() async throws {
            let base = server.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
            guard let host = URL(string: base)?.host else { throw ValidationError("--server has no host") }
            // MIT reads these when the library first needs them: the machine's keytab for its initial ticket, and a
            // cache of this process's own.
            setenv("KRB5_CLIENT_KTNAME", "FILE:" + URL(fileURLWithPath: keytab).standardizedFileURL.path, 1)
            setenv("KRB5CCNAME", "MEMORY:tessera-device-join", 1)
            let gss = try GSSAPIInitiator(principal: principal)
            let token = try gss.firstToken(service: "adrs@\(host)")

            let key = P256.Signing.PrivateKey()
            // Without a display name the service names the device after the computer its ticket proves.
            let name = displayName ?? principal.map {
                String($0.split(separator: "@")[0]).trimmingCharacters(in: CharacterSet(charactersIn: "$")).uppercased()
            }
            let body = try Self.body(key: key, name: name)
            let response = try await DeviceJoinHTTP.post(url: "\(base)/EnrollmentServer/\(tenant)/device", body: body.serializedBytes,
                                                         headers: [("Authorization", "Negotiate " + Data(token).base64EncodedString()),
                                                                   ("Content-Type", "application/json")], caFile: caFile, address: address)
            let answer = (try? JSONParser.parse(response.body)) ?? .null
            guard response.status == 200, let raw = answer["Certificate"]?["RawBody"]?.stringValue.flatMap({ Data(base64Encoded: $0) }),
                  let deviceID = answer["DeviceId"]?.stringValue
            else {
                let error = answer["error"]
                throw DeviceJoinFailure("registration refused (HTTP \(response.status)): "
                    + "\(error?["code"]?.stringValue ?? "") \(error?["message"]?.stringValue ?? String(decoding: response.body.prefix(300), as: UTF8.self))")
            }
            // The server proves it holds the service key before anything it sent is kept.
            guard let reply = response.header("www-authenticate"), reply.lowercased().hasPrefix("negotiate "),
                  let replyToken = Data(base64Encoded: String(reply.dropFirst("negotiate ".count)))
            else { throw DeviceJoinFailure("the server sent no mutual-authentication reply (WWW-Authenticate: Negotiate)") }
            try gss.finish(reply: Array(replyToken))
            let certificate = try Certificate(derEncoded: Array(raw))
            guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw DeviceJoinFailure("the certificate the server issued is not for this device's key")
            }

            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let thumbprint = answer["Certificate"]?["Thumbprint"]?.stringValue ?? ""
            try Self.write(key.pemRepresentation, to: out + "/device-key.pem", mode: 0o600)
            try Self.write(try certificate.serializeAsPEM().pemString, to: out + "/device.pem", mode: 0o644)
            let record: JSONValue = ["deviceId": .string(deviceID), "thumbprint": .string(thumbprint), "server": .string(base),
                                     "tenantId": .string(tenant)]
            try Self.write(record.serialized, to: out + "/device.json", mode: 0o644)
            say(json ? record.serialized : "joined as device \(deviceID) (certificate \(thumbprint)); key and certificate in \(out)")
        }

        /// MS-DVRJ's join request for `key`: its PKCS #10 request, this system, and the display name when one is given.
        static func body(key: P256.Signing.PrivateKey, name: String?) throws -> JSONValue {
            let csr = try CertificateSigningRequest(version: .v1, subject: try DistinguishedName { CommonName(name ?? "device") },
                                                    privateKey: .init(key), attributes: .init())
            var der = DER.Serializer()
            try der.serialize(csr)
            var body: JSONValue = [
                "CertificateRequest": ["Type": "pkcs10", "Data": .string(Data(der.serializedBytes).base64EncodedString())],
                "DeviceType": "Linux", "OSVersion": .string(osVersion), "JoinType": 4,
            ]
            if let name { body["DeviceDisplayName"] = .string(name) }
            return body
        }

        static var osVersion: String {
            var info = utsname()
            uname(&info)
            return withUnsafeBytes(of: &info.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }

        static func write(_ text: String, to path: String, mode: Int) throws {
            guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: mode]) else {
                throw DeviceJoinFailure("cannot write \(path)")
            }
        }
    }
}

/// Why `tessera device join` stopped, in a sentence.
struct DeviceJoinFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP(S) request on its own connection, keeping the response's headers (the Negotiate reply is one).
enum DeviceJoinHTTP {
    struct Response {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }
    }

    static func post(url text: String, body: [UInt8], headers: [(String, String)], caFile: String?, address: String?) async throws -> Response {
        guard let url = URL(string: text), let host = url.host, let scheme = url.scheme else { throw DeviceJoinFailure("\(text) is not a URL") }
        let secure = scheme == "https"
        let port = url.port ?? (secure ? 443 : 80)
        let context: NIOSSLContext? = try secure ? {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            if let caFile { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile)) }
            return try NIOSSLContext(configuration: tls)
        }() : nil
        let serverName = host.split(separator: ".").allSatisfy({ Int($0) != nil }) || host.contains(":") ? nil : host
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(15))
            .connect(host: address ?? host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.path.isEmpty ? "/" : url.path)
            head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
            head.headers.add(name: "Content-Length", value: "\(body.count)")
            head.headers.add(name: "Connection", value: "close")
            for (name, value) in headers { head.headers.add(name: name, value: value) }
            try await outbound.write(.head(head))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
            var response = Response(status: 0, headers: [], body: [])
            for try await part in inbound {
                switch part {
                case .head(let h):
                    response.status = Int(h.status.code)
                    response.headers = h.headers.map { ($0.name, $0.value) }
                case .body(var buffer): response.body += buffer.readBytes(length: buffer.readableBytes) ?? []
                case .end: return response
                }
            }
            throw DeviceJoinFailure("\(text): the connection closed before the response ended")
        }
    }
}
