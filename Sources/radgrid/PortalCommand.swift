import ArgumentParser
import BlobSealing
import Foundation
import Logging
import Portal
import QualityControl
import RadGridCLI
import RadGridCore
import ServerTLS
import RedisClient
import Routing
import ServiceLifecycle
import Telemetry

/// `radgrid portal`: the experts' sign-in, worklist, DICOMweb and reading page.
struct PortalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "portal", abstract: "Run the expert portal (sign-in, worklist, DICOMweb, reading page).")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 8106
    @Option(help: "Minutes a session lasts without use.") var idleMinutes = 30
    @Option(help: "Hours a session lasts at most.") var maxSessionHours = 12
    @Option(help: "Folder of the reading page's files (default: the copy built in).") var publicDir: String?
    @Option(help: "Memory for decoded images kept for scrolling, MiB.") var imageCacheMib = 512
    @Option(help: "Routing policy JSON (qualification rules); defaults built in.") var routingConfig: String?
    @Option(help: "QC policy JSON (sampling, arbitration, flags); defaults built in (= Ops/qc.json).") var qcPolicy: String?
    @Option(help: "Web origin of a DICOMweb viewer served elsewhere that may call /dicomweb (repeatable), e.g. https://ohif.example.org.") var corsOrigin: [String] = []
    @Option(help: "PEM certificate chain: serve HTTPS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key of --tls-cert.") var tlsKey: String?
    @Option(help: "PEM CA of client certificates: require one (mutual TLS).") var tlsClientCa: String?
    @Option(help: "Blob key file (JSON, mode 0600) that opens sealed instances (default: $RADGRID_BLOB_KEYS).") var blobKeys: String?

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsClientCa == nil || tlsCert != nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
    }

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.portal")
        let blobKeys = try BlobKeyring.configured(option: self.blobKeys)
        if let blobKeys {
            logger.info("blobs are sealed at rest", metadata: ["keyFile": "\(blobKeys.path ?? "")", "currentKey": "\(blobKeys.currentKeyID)"])
        } else {
            logger.info("no blob keys (--blob-keys, RADGRID_BLOB_KEYS): blobs are stored unencrypted")
        }
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        var configuration = PortalConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.accounts.idleTimeout = .seconds(max(1, idleMinutes) * 60)
        configuration.accounts.maximumLifetime = .seconds(max(1, maxSessionHours) * 3600)
        configuration.publicDirectory = publicDir
        configuration.imageCacheBytes = max(16, imageCacheMib) << 20
        configuration.corsOrigins = corsOrigin
        if let tlsCert, let tlsKey { configuration.tls = ServerTLS(certificateChainPath: tlsCert, privateKeyPath: tlsKey, clientCAPath: tlsClientCa) }
        if let routingConfig { configuration.routing = try RoutingConfig.load(path: routingConfig) }
        if let qcPolicy { configuration.qc = try QCPolicy.load(path: qcPolicy) }
        let scheme = configuration.tls == nil ? "http" : "https"
        let services = try PortalApplication.services(client: client, prefix: redis.keyPrefix, configuration: configuration, logger: logger, blobKeys: blobKeys) { port in
            print("radgrid portal listening on \(scheme)://\(host):\(port)")
            fflush(nil)
        }
        try await ServiceGroup(configuration: .init(services: [client] + services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
