// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "crocante-logout",
    products: [
        .executable(name: "crocante-logout", targets: ["CrocanteLogout"]),
        .executable(name: "crocante-standin-backend", targets: ["StandInBackend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64.git", from: "1.2.0"),
        // Already in the graph through async-http-client; named for the TLS settings (issue 11).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        // The fleet's shared outbox on PostgreSQL (issue 19).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // libfcgi from Debian's libfcgi-dev; only the FastCGI target imports it.
        .systemLibrary(
            name: "CFastCGI",
            pkgConfig: "fcgi",
            providers: [.apt(["libfcgi-dev"])]
        ),
        // Linux's epoll, which Glibc's Swift module leaves out: the kept connections' shared set.
        .systemLibrary(name: "CEpoll"),
        // Debian's libcrypto (libssl-dev), for AES-256-GCM contexts keyed once and reused:
        // swift-crypto keys every seal and open anew. Only LogoutCore's GCMContext imports it.
        .systemLibrary(
            name: "CLibcrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // The one door to the kernel: every errno read and sockaddr cast of the project.
        .target(name: "SystemCalls"),
        .target(
            name: "FastCGI",
            dependencies: ["CFastCGI", "CEpoll", "SystemCalls", .product(name: "Logging", package: "swift-log")]
        ),
        // The logout itself as plain values: cookies, sealing, tokens, response bytes, the
        // logout decision. No socket, no file, no global, no clock.
        .target(
            name: "LogoutCore",
            dependencies: [
                "CLibcrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]
        ),
        // The bounded queue that tells the backend, and the HTTP client that does it.
        .target(
            name: "Revocation",
            dependencies: [
                "LogoutCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // Subjects and expiry for check-config (NIOSSLCertificate shows neither fully).
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),
        // The durable spool behind the queue: sealed, append-only segment files (issue 9).
        .target(
            name: "RevocationSpool",
            dependencies: [
                "Revocation",
                "LogoutCore",
                "SystemCalls",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The fleet-wide outbox on PostgreSQL (issue 19): pending revocations that outlive their host.
        .target(
            name: "RevocationOutbox",
            dependencies: [
                "Revocation",
                "LogoutCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Appends records to a spool, then SIGKILLs itself or reports counters: the spool tests' child process.
        .executableTarget(
            name: "SpoolCrashProbe",
            dependencies: ["RevocationSpool", "Revocation", "LogoutCore", .product(name: "Logging", package: "swift-log")]
        ),
        // The service assembled: settings table and configuration, router, status page,
        // and `buildApplication`.
        .target(
            name: "LogoutService",
            dependencies: [
                "FastCGI",
                "LogoutCore",
                "Revocation",
                "RevocationSpool",
                "RevocationOutbox",
                "SystemCalls",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The executable: argument parsing and `run`, nothing else.
        .executableTarget(
            name: "CrocanteLogout",
            dependencies: [
                "FastCGI",
                "LogoutCore",
                "LogoutService",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // A recording stand-in for the backend, for the quick start and the tests.
        .executableTarget(
            name: "StandInBackend",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // What both fuzz targets do when built without libFuzzer: replay their seed corpora.
        .target(name: "FuzzSupport"),
        // libFuzzer target over the cookie header (scripts/fuzz); built normally, a corpus replay tool.
        .executableTarget(
            name: "CookieFuzz",
            dependencies: [
                "LogoutCore",
                "FuzzSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            ]
        ),
        // libFuzzer target over raw FastCGI bytes -> record validator, differential against
        // libfcgi (scripts/fuzz ... RecordFuzz); built normally, a corpus replay tool.
        .executableTarget(
            name: "RecordFuzz",
            dependencies: ["FastCGI", "CFastCGI", "FuzzSupport"]
        ),
        .testTarget(
            name: "FastCGITests",
            dependencies: ["FastCGI"]
        ),
        .testTarget(
            name: "LogoutCoreTests",
            dependencies: ["LogoutCore"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "LogoutServiceTests",
            dependencies: ["LogoutService", "LogoutCore", "FastCGI", "Revocation", "RevocationOutbox"]
        ),
        .testTarget(
            name: "RevocationTests",
            dependencies: [
                "Revocation", "LogoutCore", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        .testTarget(
            name: "RevocationSpoolTests",
            dependencies: [
                "RevocationSpool", "Revocation", "LogoutCore", "SpoolCrashProbe",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RevocationOutboxTests",
            dependencies: ["RevocationOutbox", "Revocation", "LogoutCore"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["LogoutCore", "CrocanteLogout", "StandInBackend"]
        ),
    ]
)
