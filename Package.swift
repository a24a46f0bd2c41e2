// swift-tools-version: 6.1
import PackageDescription

// OpenVINO's libraries, installed from its pinned wheel by scripts/openvino.sh (pkg-config names
// the headers and the library to link); the run path lets the worker load them without
// LD_LIBRARY_PATH, and pkg-config files may not carry one. The second entry is where a
// deployment installs them (docs/OPERATIONS.md, "Deploying with systemd").
let openVINORunPaths = [Context.packageDirectory + "/.openvino/openvino/libs", "/usr/local/lib/radgrid/openvino"]

// Strict concurrency is the Swift 6 language mode default; every target builds in it.
let package = Package(
    name: "radgrid",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "radgrid", targets: ["radgrid"]),
        .executable(name: "radgridctl", targets: ["radgridctl"]),
        .executable(name: "radgrid-worker", targets: ["radgrid-worker"]),
        .executable(name: "radgrid-bench", targets: ["radgrid-bench"]),
        // libFuzzer harnesses: scripts/fuzz-dicom.sh builds this archive with the fuzzer and
        // AddressSanitizer and links one fuzzer binary per harness from it.
        .library(name: "DICOMFuzzing", type: .static, targets: ["DICOMFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        // bcrypt for the portal's passwords (HummingbirdBcrypt only).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.0.0"),
        // Already in the graph through Hummingbird; named for the thread pool (bcrypt off the
        // cooperative pool) and the benchmark's HTTP client.
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        // The portal benchmark's HTTP client (600 event streams plus requests); benchmarks only.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        // TLS settings of the edge's upstream client (private CA, client certificate); already
        // in the graph through async-http-client.
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    ],
    targets: [
        // MARK: C shims (system libraries from Debian)
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CJPEGTurbo", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CCharLS", pkgConfig: "charls", providers: [.apt(["libcharls-dev"])]),
        .systemLibrary(name: "COpenJPEG", pkgConfig: "libopenjp2", providers: [.apt(["libopenjp2-7-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenVINO", pkgConfig: "radgrid-openvino"),
        // OpenJPH (C++, HTJ2K decoding) behind a C interface; its exceptions stop at the shim.
        // Debian's openjph.pc is empty, so the library is named here.
        .target(name: "COpenJPHShim", linkerSettings: [.linkedLibrary("openjph")]),
        // setjmp/longjmp recovery around libjpeg calls (its default error handler exits).
        .target(name: "CJPEGTurboRecovery", dependencies: ["CJPEGTurbo"], linkerSettings: [.linkedLibrary("jpeg")]),

        // MARK: Build tools: Lua scripts live in `<Module>/Lua/*.lua`, embedded at build time.
        .executableTarget(name: "lua-embed", path: "Sources/lua-embed"),
        .plugin(name: "LuaEmbed", capability: .buildTool(), dependencies: ["lua-embed"]),

        // MARK: Shared libraries (control plane)
        .target(name: "RadGridCore", dependencies: [
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The grid's contract between processes: typed ids, task payloads, events, keys.
        .target(name: "GridContract", dependencies: ["RadGridCore"]),
        // Options shared by the executables (argument parsing stays out of the libraries).
        .target(name: "RadGridCLI", dependencies: [
            "RadGridCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "RedisClient", dependencies: [
            "CHiredis", "RadGridCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "Zstd", dependencies: ["CZstd", "RadGridCore"]),
        // SQLite (the edge's spool index): one connection type, statements cached, values typed.
        .target(name: "SQLite", dependencies: ["CSQLite", "RadGridCore"]),
        // DICOMweb's wire formats shared by the central gateway, the edge and clients:
        // multipart/related bodies (parse and write), STOW-RS responses (write and read).
        .target(name: "DICOMWeb", dependencies: [
            "Zstd", "RadGridCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .target(name: "DICOMCodecs", dependencies: ["CJPEGTurbo", "CJPEGTurboRecovery", "CCharLS", "COpenJPEG", "COpenJPHShim", "RadGridCore"]),
        .target(name: "DICOM", dependencies: ["CZlib", "DICOMCodecs", "RadGridCore"]),
        .target(name: "Audit", dependencies: [
            "RedisClient", "RadGridCore", "Zstd",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // The study lifecycle as a pure state machine (no I/O), tested in-process.
        .target(name: "StudyLifecycle", dependencies: [
            "GridContract",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        // Instance blobs sealed at rest (AES-GCM, per-site keys from a key file outside Redis).
        .target(name: "BlobSealing", dependencies: ["RadGridCore", .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "StudyStore", dependencies: [
            "BlobSealing", "RedisClient", "Audit", "RadGridCore", "GridContract", "StudyLifecycle",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // Portal accounts: roles, bcrypt passwords, sessions (opaque tokens stored hashed),
        // sign-in throttling, the access audit chain.
        .target(name: "Accounts", dependencies: [
            "RedisClient", "Audit", "GridContract", "Routing", "RadGridCore",
            .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        .target(name: "Telemetry", dependencies: [
            "RadGridCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // What every intake checks before it accepts an instance (gateway, DIMSE, edge).
        .target(name: "IntakeCheck", dependencies: ["DICOM", "DICOMWeb", "GridContract", "RadGridCore"]),
        // DICOM de-identification (PS3.15 Annex E basic profile + options), pseudonymous UIDs per site secret.
        .target(name: "Compliance", dependencies: ["DICOM", "RadGridCore", .product(name: "Crypto", package: "swift-crypto")]),
        // HTTPS for the grid's HTTP servers (HummingbirdTLS on swift-nio-ssl), mutual TLS optional.
        .target(name: "ServerTLS", dependencies: [
            "RadGridCore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .target(name: "Gateway", dependencies: [
            "IntakeCheck", "ServerTLS", "DICOMWeb", "CriticalResults", "StudyStore", "BlobSealing", "StudyLifecycle", "GridContract", "Audit", "DICOM", "Zstd", "RedisClient", "RadGridCore", "Telemetry", "QualityControl", "Routing",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The DICOM upper layer (PS3.8) on SwiftNIO: PDUs, association negotiation and timers,
        // DIMSE messages; a C-ECHO/C-STORE SCP and a C-STORE SCU. Knows nothing of the grid.
        .target(name: "DIMSE", dependencies: [
            "RadGridCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The grid's DICOM network side: site AE registry, the C-STORE intake behind the SCP,
        // and the outbox that sends reports and pre-screens back to the sites' PACS.
        .target(name: "DIMSEGateway", dependencies: [
            "DIMSE", "DICOMWeb", "Gateway", "StudyStore", "BlobSealing", "StudyLifecycle", "Audit", "GridContract", "DICOM", "DICOMCodecs", "Zstd", "RedisClient", "RadGridCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // The hospital-side edge gateway: a durable spool (files + SQLite) fed by C-STORE and
        // STOW-RS, forwarded to the central gateway over HTTPS. Never touches Redis.
        .target(name: "Edge", dependencies: [
            "DIMSE", "DICOMWeb", "DICOM", "IntakeCheck", "GridContract", "SQLite", "Zstd", "Telemetry", "RadGridCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // The experts' portal: sign-in, worklist API, live offers (SSE), DICOMweb read side,
        // reports, and the reading page's static files (Public/).
        .target(name: "Portal", dependencies: [
            "ServerTLS", "CriticalResults", "Accounts", "Routing", "StudyStore", "BlobSealing", "QualityControl", "GridContract", "Audit", "DICOM", "Imaging", "Zstd", "RedisClient", "RadGridCore", "Telemetry",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], resources: [.copy("Public")]),
        .target(name: "TaskQueue", dependencies: [
            "RedisClient", "RadGridCore", "GridContract",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        .target(name: "Routing", dependencies: [
            "RedisClient", "RadGridCore", "Audit", "GridContract",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // Critical results, closed loop: signed webhooks to the sending site, retries, escalation,
        // the site's acknowledgement (docs/CRITICAL-RESULTS.md).
        .target(name: "CriticalResults", dependencies: [
            "RedisClient", "RadGridCore", "GridContract", "Audit",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // Peer review of signed reports: sampling, blinded second reads, RADPEER scores,
        // arbitration, per-expert figures and flags.
        .target(name: "QualityControl", dependencies: [
            "Routing", "StudyStore", "Audit", "GridContract", "RedisClient", "RadGridCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], exclude: ["Lua"], plugins: ["LuaEmbed"]),
        // The regulator's supervision feed: audit entries as FHIR AuditEvent NDJSON and daily statistics, signed HTTPS pushes, resumable.
        .target(name: "SupervisionFeed", dependencies: [
            "Audit", "RedisClient", "RadGridCore",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "Coordinator", dependencies: [
            "CriticalResults", "StudyStore", "StudyLifecycle", "TaskQueue", "Routing", "Audit", "GridContract", "RedisClient", "RadGridCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // What `radgrid up` runs: the local grid's child processes, kept alive.
        .target(name: "GridSupervisor", dependencies: [
            "RedisClient", "Routing", "StudyStore", "BlobSealing", "DIMSEGateway", "GridContract", "RadGridCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "RadGridCtl", dependencies: [
            "CriticalResults", "Coordinator", "WorkerDaemon", "RedisClient", "Zstd", "DICOM", "TaskQueue", "Routing", "RadGridCore", "RadGridCLI", "GridContract", "StudyLifecycle", "Imaging", "Screening", "Audit", "StudyStore", "BlobSealing", "Gateway", "Accounts", "QualityControl",
            "DIMSE", "DIMSEGateway", "Edge", "Compliance",
            "SupervisionFeed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .executableTarget(name: "radgrid", dependencies: [
            "CriticalResults", "Coordinator", "GridSupervisor", "Portal", "QualityControl", "RadGridCLI", "StudyStore", "BlobSealing", "RedisClient", "TaskQueue", "Routing", "RadGridCore", "Gateway", "Telemetry", "ServerTLS",
            "DIMSE", "DIMSEGateway", "StudyLifecycle", "Edge",
            "SupervisionFeed",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .executableTarget(name: "radgridctl", dependencies: [
            "RadGridCtl", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Data plane (Workers/)
        .target(name: "Imaging", dependencies: ["DICOM", "DICOMCodecs", "CZlib", "RadGridCore"], path: "Workers/Imaging"),
        // ONNX models in-process through OpenVINO's C API: compile once, infer off the cooperative pool.
        .target(name: "Inference", dependencies: [
            "COpenVINO", "RadGridCore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ], path: "Workers/Inference", linkerSettings: [.unsafeFlags(openVINORunPaths.flatMap { ["-Xlinker", "-rpath", "-Xlinker", $0] })]),
        .target(name: "Screening", dependencies: [
            "Imaging", "Inference", "DICOM", "RadGridCore", "GridContract",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ], path: "Workers/Screening"),
        .target(name: "WorkerDaemon", dependencies: [
            "TaskQueue", "RedisClient", "Zstd", "DICOM", "Imaging", "Screening", "RadGridCore", "StudyStore", "BlobSealing", "StudyLifecycle", "GridContract", "Audit",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Workers/WorkerDaemon"),
        .executableTarget(name: "radgrid-worker", dependencies: [
            "WorkerDaemon", "BlobSealing", "RadGridCLI", "RadGridCore", "Telemetry",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ], path: "Workers/radgrid-worker"),

        // MARK: Benchmarks (kept apart from tests)
        .executableTarget(name: "radgrid-bench", dependencies: [
            "Edge", "DICOMWeb", "DIMSEGateway", "RedisClient", "Zstd", "DICOM", "TaskQueue", "Routing", "Imaging", "Screening", "WorkerDaemon", "RadGridCore", "RadGridCLI", "RadGridCtl", "GridContract", "StudyLifecycle", "GridSupervisor", "Gateway", "Coordinator", "StudyStore", "Audit", "Accounts", "QualityControl",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Collections", package: "swift-collections"),
        ], path: "Benchmarks/radgrid-bench"),

        // MARK: Fuzzing (Fuzz/): a plain library in every build, so the harnesses keep compiling.
        .target(name: "DICOMFuzzing", dependencies: ["DICOM", "DICOMCodecs"], path: "Fuzz/DICOMFuzzing"),

        // MARK: Tests
        .target(name: "TestSupport", dependencies: ["RedisClient", "RadGridCore"], path: "Tests/TestSupport"),
        .testTarget(name: "RedisClientTests", dependencies: ["RedisClient", "TestSupport"]),
        .testTarget(name: "ZstdTests", dependencies: ["Zstd"]),
        .testTarget(name: "CriticalResultsTests", dependencies: [
            "CriticalResults", "Gateway", "StudyStore", "Audit", "GridContract", "RedisClient", "TestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .testTarget(name: "DICOMCodecsTests", dependencies: ["DICOMCodecs"], resources: [.copy("Resources")]),
        .testTarget(name: "GridContractTests", dependencies: ["GridContract"]),
        .testTarget(name: "StudyLifecycleTests", dependencies: ["StudyLifecycle", "GridContract"]),
        .testTarget(name: "DICOMTests", dependencies: ["DICOM", "DICOMCodecs", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
                    exclude: ["Resources/charset"], resources: [.copy("Resources/codecs")]),
        .testTarget(name: "ComplianceTests", dependencies: ["Compliance", "DICOM", "RadGridCore", "TestSupport"]),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "RedisClient", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "SupervisionFeedTests", dependencies: ["SupervisionFeed", "Audit", "RedisClient", "TestSupport",
                                                               .product(name: "Crypto", package: "swift-crypto"),
                                                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        .testTarget(name: "BlobSealingTests", dependencies: ["BlobSealing"]),
        .testTarget(name: "StudyStoreTests", dependencies: ["StudyStore", "BlobSealing", "StudyLifecycle", "GridContract", "Audit", "RedisClient", "TestSupport"]),
        .testTarget(name: "PortalTests", dependencies: ["Portal", "Accounts", "Routing", "DICOM", "RedisClient", "TestSupport",
                                                     .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")]),
        .testTarget(name: "AccountsTests", dependencies: ["Accounts", "Audit", "Routing", "RedisClient", "TestSupport"]),
        .testTarget(name: "EdgeTests", dependencies: ["Edge", "SQLite", "DICOMWeb", "DICOM", "GridContract", "Screening", "TestSupport"]),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "DICOMWeb", "GridContract", "StudyStore", "DICOM", "Zstd", "RedisClient", "TestSupport"]),
        .testTarget(name: "TaskQueueTests", dependencies: ["TaskQueue", "RedisClient", "TestSupport"]),
        .testTarget(name: "RoutingTests", dependencies: ["Routing", "GridContract", "Audit", "RedisClient", "TestSupport"]),
        .testTarget(name: "QualityControlTests", dependencies: ["QualityControl", "Routing", "StudyStore", "GridContract", "Audit", "RedisClient", "RadGridCore", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "DICOM", "DICOMCodecs", "TestSupport"]),
        .testTarget(name: "ScreeningTests", dependencies: ["Screening", "Inference", "Imaging", "DICOM", "TestSupport"]),
        .testTarget(name: "InferenceTests", dependencies: ["Inference", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["CriticalResults", "Portal", "GridContract", "Gateway", "RadGridCtl", "DICOM", "Imaging", "GridSupervisor", "StudyLifecycle", "RedisClient", "TaskQueue", "Routing", "TestSupport", "StudyStore", "Audit", "Screening", "WorkerDaemon", "Coordinator", "Accounts", "QualityControl",
                                                               "DIMSE", "DIMSEGateway", "Edge", "DICOMWeb", "Zstd", .product(name: "NIOCore", package: "swift-nio")],
                    exclude: ["Models"]),
    ]
)
