import ArgumentParser
import Edge
import Foundation

/// `radgridctl edge`: a hospital edge's spool, read (and its failures requeued) on the edge's
/// own machine; needs no Redis.
struct EdgeCtlCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "edge", abstract: "The hospital edge's spool: what waits, what was forwarded, what failed.",
        subcommands: [Status.self, Retry.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Studies queued, in flight, forwarded and failed; the oldest waiting; the upstream's last error.")
        @Option(help: "The edge's spool directory.") var spool: String
        @Flag(help: "JSON output (queued, in_flight, forwarded, failed, oldest_s, …).") var json = false

        func run() async throws {
            let status: EdgeStatus
            do {
                status = try EdgeStatus.read(spool: spool)
            } catch {
                throw CommandFailure(error)
            }
            if json {
                print(status.json())
                return
            }
            print("studies   queued \(status.queued)  in flight \(status.inFlight)  forwarded \(status.forwarded)  failed \(status.failed)")
            print("instances queued \(status.instances.queued)  in flight \(status.instances.inFlight)  forwarded \(status.instances.forwarded)  failed \(status.instances.failed)")
            print("oldest waiting study: \(status.oldestSeconds > 0 ? String(format: "%.0f s", status.oldestSeconds) : "none")")
            let limit = status.spoolLimitBytes > 0 ? " of \(status.spoolLimitBytes >> 20) MiB" : ""
            print("spool: \(status.spoolBytes >> 20) MiB\(limit)")
            if let error = status.upstream.lastError, (status.upstream.lastErrorAt ?? 0) > (status.upstream.lastSuccessAt ?? 0) {
                print("upstream: failing — \(error)")
            } else {
                print("upstream: \(status.upstream.lastSuccessAt == nil ? "no upload yet" : "ok")")
            }
            for failure in status.failures { print("  failed \(failure.study) \(failure.sop): \(failure.reason)") }
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue failed instances again (all, or one study's).")
        @Option(help: "The edge's spool directory.") var spool: String
        @Option(help: "Only this StudyInstanceUID.") var study: String?

        func run() async throws {
            do {
                print("requeued \(try EdgeSpool.retryFailed(spool: spool, study: study)) instance(s)")
            } catch {
                throw CommandFailure(error)
            }
        }
    }
}
