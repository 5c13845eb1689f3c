public import Foundation
public import X509
import SwiftASN1

/// A FIDO Metadata Service (MDS3) BLOB, loaded from a file and verified against a configured root.
///
/// The BLOB is a JWT whose `x5c` header chains to the root (FIDO's GlobalSign root for the public service); its
/// entries map an AAGUID to a description, an icon, the authenticator's attestation root certificates and its
/// status reports. Revocation lists named in the certificates are not fetched: the library does no networking.
public struct MetadataBLOB: Sendable {
    /// The BLOB's serial number (`no`).
    public let number: Int
    /// When FIDO says to fetch a new one (`nextUpdate`).
    public let nextUpdate: String
    /// Entries with an AAGUID, by AAGUID (U2F entries keyed by certificate key identifiers are not kept).
    public let entries: [AAGUID: MetadataEntry]

    /// Verifies the JWT's signature and certificate chain at `time`, then reads the entries.
    public init(jwt: String, root: Certificate, at time: Date) async throws(WebAuthnError) {
        func fail(_ why: String) -> WebAuthnError { WebAuthnError(.metadataBlobInvalid, "the metadata BLOB \(why)") }
        let parts = jwt.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerBytes = Base64URL.decode(parts[0]), let payloadBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]),
              let header = JSON.parse(headerBytes), let payload = JSON.parse(payloadBytes)
        else { throw fail("is not a compact JWS") }
        let algorithm: COSEAlgorithm
        switch header["alg"]?.string {
        case "RS256": algorithm = .rs256
        case "ES256": algorithm = .es256
        case "PS256": algorithm = .ps256
        default: throw fail("uses an unsupported algorithm")
        }
        guard let x5c = header["x5c"]?.array, !x5c.isEmpty else { throw fail("has no x5c header") }
        var chain: [Certificate] = []
        for item in x5c {
            guard let text = item.string, let der = Base64URL.decodeStandard(text), let certificate = try? Certificate(derEncoded: der) else {
                throw fail("has an x5c entry that is not a certificate")
            }
            chain.append(certificate)
        }
        guard await TrustEvaluation.chains(chain, to: [root], at: time) else {
            throw fail("is not signed by a certificate that chains to the configured metadata root")
        }
        let signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        let jwsSignature = algorithm == .es256 ? (rawECDSAToDER(signature) ?? signature) : signature
        guard (try? CertificateChecks.verify(jwsSignature, over: signingInput, with: chain[0], algorithm: algorithm)) == true else {
            throw fail("signature does not verify")
        }
        guard let number = payload["no"]?.number, let entries = payload["entries"]?.array else {
            throw fail("payload lacks \"no\" or \"entries\"")
        }
        self.number = Int(number)
        self.nextUpdate = payload["nextUpdate"]?.string ?? ""
        var byAAGUID: [AAGUID: MetadataEntry] = [:]
        for entry in entries {
            guard let text = entry["aaguid"]?.string, let aaguid = AAGUID(text) else { continue }
            byAAGUID[aaguid] = MetadataEntry(aaguid: aaguid, json: entry)
        }
        self.entries = byAAGUID
    }

    /// The entry for an authenticator model, if FIDO knows it.
    public func entry(for aaguid: AAGUID) -> MetadataEntry? { entries[aaguid] }
}

/// One authenticator model in the metadata BLOB.
public struct MetadataEntry: Sendable {
    public let aaguid: AAGUID
    public let description: String?
    /// A `data:` URL.
    public let icon: String?
    /// `basic_full`, `basic_surrogate`, `attca`, `anonca`, `none`.
    public let attestationTypes: [String]
    public let attestationRootCertificates: [Certificate]
    public let statusReports: [StatusReport]

    /// One status report: `FIDO_CERTIFIED`, `REVOKED`, `USER_VERIFICATION_BYPASS`, `ATTESTATION_KEY_COMPROMISE`, …
    public struct StatusReport: Sendable {
        public let status: String
        public let effectiveDate: String?
    }

    init(aaguid: AAGUID, json: JSON) {
        self.aaguid = aaguid
        let statement = json["metadataStatement"]
        description = statement?["description"]?.string
        icon = statement?["icon"]?.string
        attestationTypes = statement?["attestationTypes"]?.array?.compactMap(\.string) ?? []
        attestationRootCertificates = statement?["attestationRootCertificates"]?.array?.compactMap { item in
            item.string.flatMap { Base64URL.decodeStandard($0) }.flatMap { try? Certificate(derEncoded: $0) }
        } ?? []
        statusReports = json["statusReports"]?.array?.compactMap { report in
            report["status"]?.string.map { StatusReport(status: $0, effectiveDate: report["effectiveDate"]?.string) }
        } ?? []
    }

    static let revokedStatuses: Set<String> = [
        "REVOKED", "ATTESTATION_KEY_COMPROMISE", "USER_KEY_REMOTE_COMPROMISE", "USER_KEY_PHYSICAL_COMPROMISE",
    ]

    /// Refuses an authenticator FIDO has reported revoked, compromised or able to bypass user verification.
    /// A report counts once it is effective (its `effectiveDate`, `YYYY-MM-DD`, is not after `time`).
    func checkStatus(at time: Date) throws(WebAuthnError) {
        let today = Self.day(time)
        for report in statusReports where (report.effectiveDate ?? "") <= today {
            if Self.revokedStatuses.contains(report.status) {
                throw WebAuthnError(.metadataAuthenticatorRevoked,
                                    "FIDO metadata reports \(description ?? aaguid.description) as \(report.status)")
            }
            if report.status == "USER_VERIFICATION_BYPASS" {
                throw WebAuthnError(.metadataUserVerificationBypass,
                                    "FIDO metadata reports that \(description ?? aaguid.description)'s user verification can be bypassed")
            }
        }
    }

    static func day(_ time: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd"
        return formatter.string(from: time)
    }
}

/// A JWS ES256 signature is r || s; the verifier wants DER.
func rawECDSAToDER(_ raw: [UInt8]) -> [UInt8]? {
    guard raw.count % 2 == 0, !raw.isEmpty else { return nil }
    func integer(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        var b = Array(bytes.drop { $0 == 0 })
        if b.isEmpty { b = [0] }
        if b[0] & 0x80 != 0 { b.insert(0, at: 0) }
        return [0x02, UInt8(b.count)] + b
    }
    let half = raw.count / 2
    let body = integer(raw[0..<half]) + integer(raw[half...])
    guard body.count < 128 else { return nil }
    return [0x30, UInt8(body.count)] + body
}
