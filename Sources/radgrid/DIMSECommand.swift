import ArgumentParser
import BlobSealing
import DIMSE
import DIMSEGateway
import Foundation
import Gateway
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import ServiceLifecycle
import StudyLifecycle
import StudyStore
import Telemetry

/// `radgrid dimse`: the DICOM network gateway. C-ECHO and C-STORE from the sites' PACS into
/// the same intake as STOW-RS, and results sent back to their PACS over C-STORE.
struct DIMSECommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dimse", abstract: "Run the DICOM network gateway (C-ECHO and C-STORE SCP; results back by C-STORE SCU).")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 11112
    @Option(help: "This gateway's AE title (the called AE title sites use).") var aeTitle = "RADGRID"
    @Option(help: "Concurrent associations, all sites together.") var maxAssociations = 64
    @Option(help: "Concurrent associations of one site (unless its registration says otherwise).") var maxAssociationsPerSite = 8
    @Option(help: "Largest P-DATA PDU received, in bytes.") var maxPDU = 1 << 20
    @Option(help: "Largest single instance in MiB.") var maxInstanceMib = 512
    @Option(help: "Seconds a peer may stay silent on an association.") var idleTimeout = 120
    @Option(help: "Refuse instances (A700) when this many studies wait for processing.") var maxWaitingStudies = 10_000
    @Option(help: "Seconds without a new instance after which a study is complete (must match the coordinators').") var stableAge: Double = 10
    @Option(help: "Port for /metrics (0 picks a free one; -1 none).") var metricsPort = -1
    @Flag(inversion: .prefixedNo, help: "Send reports and pre-screens back to the sites' PACS.") var sendResults = true
    @Option(help: "Blob key file (JSON, mode 0600): instances are sealed (AES-GCM) before they reach Redis (default: $RADGRID_BLOB_KEYS; none: stored unencrypted).") var blobKeys: String?

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.dimse")
        let blobKeys = try BlobKeyring.configured(option: self.blobKeys)
        if let blobKeys {
            logger.info("blobs are sealed at rest", metadata: ["keyFile": "\(blobKeys.path ?? "")", "currentKey": "\(blobKeys.currentKeyID)"])
        } else {
            logger.info("no blob keys (--blob-keys, RADGRID_BLOB_KEYS): blobs are stored unencrypted")
        }
        try SiteNetwork.validate(aeTitle: aeTitle)
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        let store = StudyStore(client: client, prefix: redis.keyPrefix, keyring: blobKeys)
        var limits = InstanceIntake.Limits()
        limits.maxInstanceBytes = maxInstanceMib << 20
        var thresholds = Backpressure.Thresholds()
        thresholds.maxWaitingStudies = maxWaitingStudies
        var lifecycle = LifecycleSettings()
        lifecycle.stableAge = Int64((max(0.05, stableAge) * 1000).rounded())
        var intakeLimits = DIMSEIntake.Limits()
        intakeLimits.maxAssociations = maxAssociations
        intakeLimits.maxAssociationsPerSite = maxAssociationsPerSite
        let delegate = DIMSEIntake(network: SiteNetwork(client: client, prefix: redis.keyPrefix), tokens: SiteTokens(client: client, prefix: redis.keyPrefix),
                                   intake: InstanceIntake(store: store, limits: limits, logger: logger),
                                   backpressure: Backpressure(client: client, store: store, thresholds: thresholds),
                                   store: store, machine: StudyStateMachine(settings: lifecycle), limits: intakeLimits, logger: logger)
        var scp = StorageSCP.Configuration()
        scp.host = host
        scp.port = port
        scp.aeTitle = aeTitle
        scp.maxPDULength = UInt32(max(4096, maxPDU))
        scp.maxDataSetBytes = limits.maxInstanceBytes
        scp.idle = .seconds(Int64(max(1, idleTimeout)))
        scp.transferSyntaxes = DIMSEIntake.acceptedTransferSyntaxes
        let host = host
        var services: [any Service] = [client, StorageSCP(configuration: scp, delegate: delegate, logger: logger) { port in
            print("radgrid dimse listening on dicom://\(host):\(port)")
            fflush(nil)
        }]
        if sendResults {
            var settings = ResultSender.Settings()
            settings.callingAETitle = aeTitle
            settings.queueShards = redis.queueShards
            services.append(ResultSender(client: client, prefix: redis.keyPrefix, settings: settings, logger: logger, blobKeys: blobKeys))
        }
        if metricsPort >= 0 { services.append(Telemetry.metricsServer(host: host, port: metricsPort, logger: logger)) }
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
