import ArgumentParser
import DICOM
import DIMSE
import Edge
import Foundation
import Logging
import RadGridCLI
import RadGridCore
import ServiceLifecycle
import Telemetry

/// `radgrid edge`: the hospital-side gateway. Takes studies from the hospital's PACS and
/// modalities (C-STORE, STOW-RS), keeps them in a durable spool, and forwards them to the
/// central gateway whenever the link allows. Needs no Redis.
struct EdgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "edge", abstract: "Run the hospital-side store-and-forward gateway (C-STORE and STOW-RS in, STOW-RS to the centre).")

    @Option(help: "The central gateway's base URL (https://… in production).") var upstream: String
    @Option(help: "The site's bearer token at the central gateway (also what local STOW-RS senders present); else --token-file, else RADGRID_TOKEN.") var token: String?
    @Option(help: "A file holding the token (keeps it off the command line; systemd: a credential).") var tokenFile: String?

    /// `--token`, else the file's contents, else `RADGRID_TOKEN`.
    var resolvedToken: String {
        if let token, !token.isEmpty { return token }
        if let tokenFile { return String((Files.read(tokenFile) ?? "").filter { !$0.isWhitespace }) }
        return ProcessEnvironment.current["RADGRID_TOKEN"] ?? ""
    }
    @Option(help: "The spool directory (created 0700).") var spool: String
    @Option(help: "Address to listen on (the hospital's network).") var host = "0.0.0.0"
    @Option(help: "STOW-RS port (0 picks a free one).") var port = 8105
    @Option(help: "DICOM (C-STORE) port (0 picks a free one; --dimse-port=-1 for none).") var dimsePort = 11112
    @Option(help: "Calling AE titles allowed to store, comma-separated (default: any).") var allowAe: String?
    @Option(help: "This edge's AE title (the called AE title the PACS uses).") var aeTitle = "RADGRID-EDGE"
    @Option(help: "Spool size limit in MiB; above it new instances are refused (A700 / 503).") var spoolLimitMib = 10_240
    @Option(help: "Seconds without a new instance after which a study is complete.") var stableAge: Double = 10
    @Option(help: "Bandwidth cap towards the centre, megabits per second (0: none).") var maxMbps: Double = 0
    @Option(help: "Uploads in flight at once.") var parallel = 4
    @Option(help: "Uncompressed MiB of instances per upload.") var batchMib = 4
    @Option(help: "Largest single instance in MiB.") var maxInstanceMib = 512
    @Option(help: "PEM file of the CA certificates the upstream's certificate must chain to (default: the system's).") var caFile: String?
    @Option(help: "PEM certificate chain presented to the upstream (mutual TLS); needs --client-key.") var clientCert: String?
    @Option(help: "PEM private key of --client-cert.") var clientKey: String?

    func validate() throws {
        guard let url = URL(string: upstream), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ValidationError("--upstream must be an http(s) URL")
        }
        guard !resolvedToken.isEmpty else { throw ValidationError("the site token is missing: --token, --token-file (readable, not empty) or RADGRID_TOKEN") }
        guard (clientCert == nil) == (clientKey == nil) else { throw ValidationError("--client-cert and --client-key go together") }
        guard spoolLimitMib > 0, parallel > 0, batchMib > 0, maxMbps >= 0, stableAge > 0 else {
            throw ValidationError("--spool-limit-mib, --parallel, --batch-mib and --stable-age must be positive")
        }
    }

    func run() async throws {
        LogSetup.bootstrap()
        Telemetry.bootstrap()
        let logger = Logger(label: "radgrid.edge")
        var settings = EdgeServices.Settings(spoolDirectory: spool, upstream: upstream, token: resolvedToken)
        settings.spool.limitBytes = Int64(spoolLimitMib) << 20
        settings.spool.stableAge = stableAge
        settings.forwarder.maxMbps = maxMbps > 0 ? maxMbps : nil
        settings.forwarder.parallelUploads = parallel
        settings.forwarder.batchBytes = batchMib << 20
        settings.forwarder.caFile = caFile
        if let clientCert, let clientKey { settings.forwarder.clientCertificate = (clientCert, clientKey) }
        settings.http.host = host
        settings.http.port = port
        settings.maxInstanceBytes = maxInstanceMib << 20
        settings.allowedAETitles = Set((allowAe ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        if dimsePort >= 0 {
            var scp = StorageSCP.Configuration()
            scp.host = host
            scp.port = dimsePort
            scp.aeTitle = aeTitle
            scp.transferSyntaxes = TransferSyntax.receivableUIDs
            settings.dimse = scp
            if settings.allowedAETitles.isEmpty {
                logger.warning("no --allow-ae: any calling AE title on the network may store to this edge")
            }
        }
        let host = host
        let services = try EdgeServices.make(settings, logger: logger) { listener, port in
            switch listener {
            case .http: print("radgrid edge listening on http://\(host):\(port)")
            case .dimse: print("radgrid edge listening on dicom://\(host):\(port)")
            }
            fflush(nil)
        }
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
