import ArgumentParser
import BlobSealing
import Foundation
import Gateway
import Logging
import QualityControl
import RadGridCLI
import RadGridCore
import ServerTLS
import RedisClient
import ServiceLifecycle
import Telemetry

/// `radgrid gateway`: DICOMweb STOW-RS intake for hospitals.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gateway", abstract: "Run the edge gateway (DICOMweb STOW-RS).")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8104
    @Option(help: "Largest request body in MiB.") var maxRequestMib = 2048
    @Option(help: "Largest single instance in MiB.") var maxInstanceMib = 512
    @Option(help: "zstd level of stored instances (1 fastest; 3 stores ~15 % less on CT at ~4× the CPU).") var compressionLevel = 1
    @Option(help: "Uploads received at once, all sites together (429 beyond).") var maxUploads = 8
    @Option(help: "Uploads received at once from one site (429 beyond).") var maxUploadsPerSite = 4
    @Option(help: "Directory upload bodies are spooled to while they arrive (default: the system's temporary directory).") var spoolDir: String?
    @Option(help: "PEM certificate chain: serve HTTPS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "PEM CA of the sites' client certificates: require one (mutual TLS).") var tlsClientCa: String?

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsClientCa == nil || tlsCert != nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
        guard (1...19).contains(compressionLevel) else { throw ValidationError("--compression-level must be 1...19") }
    }
    @Option(help: "Refuse uploads (429) when this many studies wait for processing.") var maxWaitingStudies = 10_000
    @Option(help: "Seconds without a new instance after which a study is complete (must match the coordinators').") var stableAge: Double = 10
    @Option(help: "QC policy JSON (site disputes, second-read deadline); defaults built in (= Ops/qc.json).") var qcPolicy: String?
    @Option(help: "Blob key file (JSON, mode 0600): instances are sealed (AES-GCM) before they reach Redis (default: $RADGRID_BLOB_KEYS; none: stored unencrypted).") var blobKeys: String?

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.gateway")
        let blobKeys = try BlobKeyring.configured(option: self.blobKeys)
        if let blobKeys {
            logger.info("blobs are sealed at rest", metadata: ["keyFile": "\(blobKeys.path ?? "")", "currentKey": "\(blobKeys.currentKeyID)"])
        } else {
            logger.info("no blob keys (--blob-keys, RADGRID_BLOB_KEYS): blobs are stored unencrypted")
        }
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        var configuration = GatewayConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.maxRequestBytes = maxRequestMib << 20
        configuration.intake.maxInstanceBytes = maxInstanceMib << 20
        configuration.intake.compressionLevel = compressionLevel
        configuration.maxConcurrentUploads = maxUploads
        configuration.maxConcurrentUploadsPerSite = maxUploadsPerSite
        configuration.spoolDirectory = spoolDir
        if let tlsCert, let tlsKey { configuration.tls = ServerTLS(certificateChainPath: tlsCert, privateKeyPath: tlsKey, clientCAPath: tlsClientCa) }
        configuration.backpressure.maxWaitingStudies = maxWaitingStudies
        configuration.lifecycle.stableAge = Int64((max(0.05, stableAge) * 1000).rounded())
        if let qcPolicy { configuration.qc = try QCPolicy.load(path: qcPolicy) }
        let scheme = configuration.tls == nil ? "http" : "https"
        let app = try GatewayApplication.make(client: client, prefix: redis.keyPrefix, configuration: configuration, logger: logger, blobKeys: blobKeys) { port in
            print("radgrid gateway listening on \(scheme)://\(host):\(port)")
            fflush(nil)
        }
        try await ServiceGroup(configuration: .init(services: [client, app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
