// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "tessera",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tessera", targets: ["tessera"]),
        .library(name: "TesseraCore", targets: ["TesseraCore"]),
        .library(name: "WebAuthn", targets: ["WebAuthn"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.10.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        // The WebAuthn relying-party verifier: no HTTP, no storage, only these three packages.
        .target(
            name: "WebAuthn",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TesseraCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Store",
            dependencies: [
                "TesseraCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Backup and Recovery: content-addressed snapshots, difference reports, recovery (issue 5).
        .target(
            name: "Backup",
            dependencies: [
                "TesseraCore",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // An LDAP v3 client: BER through swift-asn1, TLS through swift-nio-ssl (issue 6's connector to AD).
        .target(
            name: "LDAP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),  // the TLS handshake's completion event
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // AES-CTS on the processor's AES instructions with each key expanded once (Kerberos validation's cost; where
        // they are missing, Kerberos uses swift-crypto's AES). Plain C and the compiler's own intrinsics headers.
        .target(name: "CKerberosAES"),
        // Kerberos AP-REQ validation in Swift (issue 16): RFC 3961/3962/8009 crypto, RFC 4120 messages, the MS-PAC.
        .target(
            name: "Kerberos",
            dependencies: [
                "CKerberosAES",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        // A tenant's own CA kept in the store (the device, health agents' and TLS inspection CAs).
        .target(
            name: "TenantPKI",
            dependencies: [
                "TesseraCore",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Directory sync from on-premises Active Directory (issue 6): matching and its protections.
        .target(
            name: "Sync",
            dependencies: ["TesseraCore", "LDAP"],
            swiftSettings: swiftSettings
        ),
        // The traffic importer's log scanner (issue 17): 64-byte blocks to bitmasks with SSE2, or AVX2 behind a CPUID
        // check, and portable C elsewhere. Plain C and the compiler's own intrinsics headers.
        .target(name: "CLogScan"),
        // Internet Access (issue 17): the AI app catalog, traffic log parsers, matching, traffic records and reports.
        .target(
            name: "InternetAccess",
            dependencies: [
                "TesseraCore",
                "TenantPKI",
                "CLogScan",
                // The forward proxy (`tessera proxy`).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // TLS inspection of AI apps: the inspection CA, its leaves, and HTTP/1.1 inside the terminated TLS.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            resources: [.copy("Resources/ai-apps.json"), .copy("Prompts/Resources/prompt-model.bin")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "Server",
            dependencies: [
                "TesseraCore",
                "InternetAccess",
                "Backup",
                "Sync",
                "Store",
                "WebAuthn",
                "Kerberos",  // the device registration service validates domain computers' tickets (issue 16)
                "TenantPKI",
                "LDAP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // The health listener (issue 16) is a SwiftNIO HTTP/1.1 server of its own, for mutual TLS.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "TesseraCommands",
            dependencies: [
                "TesseraCore",
                "Store",
                "Server",
                "Backup",
                "Sync",
                "WebAuthn",
                "Kerberos",
                "InternetAccess",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                // `bench signin` drives the server over real HTTP/1.1 connections.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // `health agent` uploads over mutual TLS and times LDAP binds against a domain controller.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "LDAP",
            ],
            swiftSettings: swiftSettings
        ),
        // libFuzzer over the WebAuthn parsers (Fuzz/README.md); built normally it replays a corpus.
        .executableTarget(
            name: "WebAuthnFuzz",
            dependencies: ["WebAuthn"],
            path: "Fuzz/WebAuthnFuzz",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "tessera",
            dependencies: [
                "TesseraCommands",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // What every test target shares: the test clock (fixed start, or TESSERA_TEST_CLOCK_START) and a software
        // authenticator.
        .target(
            name: "TesseraTesting",
            dependencies: ["TesseraCore", "WebAuthn", .product(name: "Crypto", package: "swift-crypto")],
            path: "Tests/TesseraTesting",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WebAuthnTests",
            dependencies: [
                "WebAuthn",
                "TesseraTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Vectors"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "KerberosTests",
            dependencies: [
                "Kerberos",
                "TesseraTesting",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            exclude: ["Vectors", "Fixtures"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TesseraCoreTests",
            dependencies: ["TesseraCore", "TesseraTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "BackupTests",
            dependencies: ["Backup", "Store", "TesseraCore", "TesseraTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SyncTests",
            dependencies: ["Sync", "TesseraCore", "TesseraTesting", "LDAP", "Store", .product(name: "SwiftASN1", package: "swift-asn1")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "StoreTests",
            dependencies: ["Store", "TesseraCore", "TesseraTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "InternetAccessTests",
            dependencies: [
                "InternetAccess", "TesseraCore", "Store", "TesseraTesting",
                // The forward proxy's tests run it on loopback with NIO origins and clients.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // TLS inspection's tests: origins with test-CA certificates and clients trusting the inspection CA.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line's own logic: serve's configuration file, environment and flags (issue 22).
        .testTarget(
            name: "TesseraCommandsTests",
            dependencies: ["TesseraCommands", "TesseraTesting", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "Store", "TesseraCore", "Backup", "TesseraTesting", "InternetAccess", "Kerberos", "LDAP", "Sync",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The health listener's tests connect over real sockets with TLS clients of their own.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
