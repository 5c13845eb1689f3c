import Crypto
import Foundation
import SwiftASN1
import X509

/// The local certificate authority and server certificate `tessera serve` makes on first start, so
/// MSAL and the Graph SDKs (which require https) can connect. Clients trust `tls/ca.pem`.
public struct TLSMaterial: Sendable {
    public let caPath: String
    public let certificatePath: String
    public let keyPath: String

    /// Loads the files under `directory`, creating them when missing. `hosts` go into the server
    /// certificate's subject alternative names, beside localhost, 127.0.0.1 and ::1.
    public static func loadOrCreate(directory: String, hosts: [String]) throws -> TLSMaterial {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let material = TLSMaterial(caPath: directory + "/ca.pem", certificatePath: directory + "/server.pem", keyPath: directory + "/server-key.pem")
        if fm.fileExists(atPath: material.caPath), fm.fileExists(atPath: material.certificatePath), fm.fileExists(atPath: material.keyPath) {
            return material
        }
        let now = Date()
        let caKey = P256.Signing.PrivateKey()
        let caName = try DistinguishedName { CommonName("Tessera local CA"); OrganizationName("Tessera") }
        let ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(10 * 365 * 86_400), issuer: caName, subject: caName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(caKey.publicKey))
            },
            issuerPrivateKey: .init(caKey))
        let serverKey = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.dnsName("localhost")]
        for host in Set(hosts) where !host.isEmpty && host != "localhost" {
            if let bytes = Self.ipBytes(host) { names.append(.ipAddress(ASN1OctetString(contentBytes: bytes[...]))) } else { names.append(.dnsName(host)) }
        }
        names.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        names.append(.ipAddress(ASN1OctetString(contentBytes: Array(repeating: 0, count: 15) + [1])))
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey), notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(397 * 86_400), issuer: caName,
            subject: try DistinguishedName { CommonName("localhost"); OrganizationName("Tessera") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(keyIdentifier: SubjectKeyIdentifier(hash: .init(caKey.publicKey)).keyIdentifier)
            },
            issuerPrivateKey: .init(caKey))
        try write(try ca.serializeAsPEM().pemString, to: material.caPath, mode: 0o644)
        try write(try server.serializeAsPEM().pemString + "\n" + (try ca.serializeAsPEM().pemString), to: material.certificatePath, mode: 0o644)
        try write(serverKey.pemRepresentation, to: material.keyPath, mode: 0o600)
        try write(caKey.pemRepresentation, to: directory + "/ca-key.pem", mode: 0o600)
        return material
    }

    static func write(_ text: String, to path: String, mode: Int) throws {
        guard FileManager.default.createFile(atPath: path, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: mode]) else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    static func ipBytes(_ host: String) -> [UInt8]? {
        let parts = host.split(separator: ".")
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}
