import ArgumentParser
import BlobSealing
import Foundation
import Inference
import Logging
import RadGridCLI
import RadGridCore
import RedisClient
import Screening
import ServiceLifecycle
import Telemetry
import WorkerDaemon

/// `radgrid-worker`: runs the instance, study and ai stages (see docs/OPERATIONS.md).
@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "radgrid-worker", abstract: "Decompress, parse, preprocess and pre-screen studies.")

    @OptionGroup var redis: RedisOptions
    @Option(help: "Concurrent task slots (default: twice the number of cores).") var slots: Int = WorkerSettings.defaultSlots
    @Option(help: "Consumer name (default host-pid-random).") var name: String?
    @Option(help: "Screening config JSON (default: Ops/screening.json if present, else built in).") var screeningConfig: String?
    @Option(help: "Prometheus /metrics port (0 = off).") var metricsPort: Int = 0
    @Option(help: "Seconds in-flight tasks may run on after SIGTERM before being handed back.") var drainSeconds: Int = 20
    @Option(help: "Task lease in seconds: a task held longer by a dead worker goes to another (every worker of a queue should use the same).") var lease: Double = 30
    @Option(help: "Blob key file (JSON, mode 0600) that opens sealed instances (default: $RADGRID_BLOB_KEYS).") var blobKeys: String?
    @Option(help: "Stages served: instance,study (decode and rule screening) and/or ai (models).") var stages = "instance,study,ai"
    @Option(help: "Folder of model manifests (*.json beside their .onnx files); none keeps the rule-based screeners only.") var models: String?
    @Option(help: "OpenVINO device for the models: CPU, or GPU where OpenVINO sees one.") var device = "CPU"
    @Option(help: "Threads per inference (default: OpenVINO's choice, all cores).") var inferenceThreads: Int?
    @Option(help: "Model tasks run at once.") var aiSlots = 2
    @Flag(help: "Check the --models folder (manifests, checksums, one compile each), print what would run, and exit.") var checkModels = false

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.worker")
        let blobKeys = try BlobKeyring.configured(option: self.blobKeys)
        if let blobKeys {
            logger.info("blobs are sealed at rest", metadata: ["keyFile": "\(blobKeys.path ?? "")", "currentKey": "\(blobKeys.currentKeyID)"])
        } else {
            logger.info("no blob keys (--blob-keys, RADGRID_BLOB_KEYS): blobs are stored unencrypted")
        }
        var settings = WorkerSettings()
        settings.prefix = redis.keyPrefix
        settings.queueShards = redis.queueShards
        settings.slots = max(1, slots)
        settings.shutdownGrace = .seconds(drainSeconds)
        guard lease >= 1 else { throw ValidationError("--lease must be at least 1 second") }
        settings.lease = .milliseconds(Int64(lease * 1000))
        if let name { settings.name = name }
        settings.blobKeys = blobKeys
        let path = screeningConfig ?? (FileManager.default.fileExists(atPath: "Ops/screening.json") ? "Ops/screening.json" : nil)
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            settings.screening = try JSONDecoder().decode(ScreeningConfig.self, from: data)
            try settings.screening.validate()
        }
        settings.stages = try WorkerStage.parse(stages)
        settings.modelSlots = max(1, aiSlots)
        settings.inference = CompileOptions(device: device, threads: inferenceThreads)
        if let models {
            // Every manifest and checksum is checked at start: a mismatch stops the worker.
            settings.models = try ModelCatalog.load(directory: models)
            logger.info("models", metadata: ["folder": "\(models)", "models": "\(settings.models.entries.map { $0.manifest.provenance.description }.joined(separator: ","))"])
        } else if settings.stages == [.ai] || checkModels {
            throw ValidationError("--stages ai and --check-models need --models DIR")
        }
        if checkModels {
            let screeners = try ModelScreeners(catalog: settings.models, options: settings.inference)
            for screener in screeners.screeners {
                let m = screener.manifest
                print("\(m.provenance)  \(m.input.modality)/\(m.input.bodyParts.joined(separator: ","))  input \(screener.model.inputs.map(\.description).joined(separator: " "))  findings \(m.output.findings.map(\.code).joined(separator: ","))  on \(settings.inference.device)")
            }
            print("\(screeners.screeners.count) model(s) ready")
            return
        }
        let client = try RedisClient(url: redis.resolvedURL, logger: logger)
        let daemon = try WorkerDaemon(client: client, settings: settings, logger: logger)
        var services: [any Service] = [client]
        if metricsPort > 0 { services.append(Telemetry.metricsServer(host: "127.0.0.1", port: metricsPort, logger: logger)) }
        services += daemon.services
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
