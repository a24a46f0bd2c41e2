import ArgumentParser
import Audit
import Foundation
import StudyStore
import StudyLifecycle
import GridContract
import Coordinator
import Crypto
import RadGridCLI
import RadGridCore
import RedisClient

/// `radgridctl audit verify`: walk every audit chain and report any edited, inserted or
/// deleted entry. Exit code 2 when tampering is found.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Inspect and verify the hash-chained audit trail.",
        subcommands: [Verify.self, AuditCheckpointCommand.self, AuditExportCommand.self, AuditArchiveCommand.self, AuditPushCommand.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute every hash and check every link of every chain; with --checkpoints, check them against the signed checkpoints too; with --archive, check the archived segments and their link to Redis.")
        @OptionGroup var redis: RedisOptions
        @Option(help: "Directory of signed checkpoints (radgrid up --dir DIR keeps them in DIR/audit/checkpoints).") var checkpoints: String?
        @Option(help: "The checkpoints' Ed25519 public key file (DIR/audit/checkpoint.pub).") var publicKey: String?
        @Option(help: "Directory of the audit archives (radgridctl audit archive --dir); needed with --checkpoints once entries were archived.") var archive: String?
        @Flag(help: "Print one JSON object.") var json = false

        func validate() throws {
            guard (checkpoints == nil) == (publicKey == nil) else { throw ValidationError("--checkpoints and --public-key go together") }
        }

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            var result = try await AuditTrail.verify(client: client, prefix: redis.keyPrefix)
            var checked = ""
            if let archive {
                let archived = try await AuditArchive.verify(directory: archive, client: client, prefix: redis.keyPrefix)
                result.problems += archived.problems
                checked += ", \(archived.entries) archived entries of \(archived.chains) chain(s)"
            }
            if let checkpoints, let publicKey {
                let key: Curve25519.Signing.PublicKey
                do { key = try CheckpointKey.publicKey(path: publicKey) } catch let error as any CodedError { throw CommandFailure(error) }
                let (count, problems) = try await AuditCheckpoints.verify(client: client, prefix: redis.keyPrefix, directory: checkpoints, publicKey: key, archive: archive)
                result.problems += problems
                checked += ", against \(count) signed checkpoint(s)"
            }
            if json {
                print(try JSONOutput.string(result))
            } else {
                print("\(result.chains) chain(s), \(result.entries) entries\(checked): \(result.isIntact ? "intact" : "TAMPERED")")
                for problem in result.problems {
                    print("  chain \(problem.chain) entry \(problem.entryID ?? "-"): \(problem.reason)")
                }
            }
            if !result.isIntact { throw ExitCode(2) }
        }
    }
}

/// `radgridctl audit checkpoint`: sign a checkpoint of every chain now.
struct AuditCheckpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "checkpoint", abstract: "Write a signed checkpoint of every audit chain now.")
    @OptionGroup var redis: RedisOptions
    @Option(help: "Directory of the checkpoint files (DIR/audit/checkpoints under radgrid up).") var checkpoints: String
    @Option(help: "Ed25519 private key file (created 0600 when missing).") var key: String
    @Option(help: "Public key file written beside it.") var publicKey: String
    @Flag(help: "Print the checkpoint as JSON.") var json = false

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        do {
            let signing = try CheckpointKey.loadOrCreate(privateKeyPath: key, publicKeyPath: publicKey)
            let checkpoint = try await AuditCheckpoints.write(client: client, prefix: redis.keyPrefix, directory: checkpoints, key: signing)
            print(json ? try JSONOutput.string(checkpoint) : "checkpoint \(checkpoint.sequence): \(checkpoint.chains.count) chain(s) changed since the last one")
        } catch let error as RadGridError {
            throw CommandFailure(error)
        }
    }
}

/// `radgridctl audit export --since T [--until T] --format fhir|stats [--bundle] [--out FILE]`:
/// the audit trail as FHIR R4 AuditEvent resources (NDJSON, or one Bundle), or the daily
/// service statistics (one JSON object per UTC day), for the regulator's supervision platform.
struct AuditExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export audit entries as FHIR R4 AuditEvent resources (NDJSON, or one Bundle), or the daily service statistics (NDJSON).")
    @OptionGroup var redis: RedisOptions
    @Option(help: "From this time (inclusive): 2026-12-01, 2026-12-01T08:00:00Z or milliseconds since 1970.") var since: String
    @Option(help: "Until this time (exclusive; default: now).") var until: String?
    @Option(help: "fhir (AuditEvent resources) or stats (the service statistics of each UTC day in the range, one JSON object per line).") var format = "fhir"
    @Flag(help: "One FHIR Bundle (type collection) instead of one resource per line.") var bundle = false
    @Option(help: "Write to this file (mode 0600) instead of standard output.") var out: String?

    func validate() throws {
        guard format == "fhir" || format == "stats" else { throw ValidationError("--format must be fhir or stats") }
        guard format == "fhir" || !bundle else { throw ValidationError("--bundle goes with --format fhir") }
        guard Self.milliseconds(since) != nil else { throw ValidationError("--since: a date, an ISO 8601 time or milliseconds") }
        if let until, Self.milliseconds(until) == nil { throw ValidationError("--until: a date, an ISO 8601 time or milliseconds") }
    }

    func run() async throws {
        let client = try RedisClient(url: redis.resolvedURL)
        defer { client.shutdown() }
        let from = Self.milliseconds(since)!
        let to = until.flatMap(Self.milliseconds) ?? WallClock.nowMilliseconds() + 1
        if format == "stats" {
            let days = try await ServiceStatistics.daily(client: client, prefix: redis.keyPrefix, sinceMilliseconds: from, untilMilliseconds: to)
            let text = try days.map { String(decoding: try $0.encoded(), as: UTF8.self) + "\n" }.joined()
            if let out {
                try Files.write(out, text, mode: 0o600)
                FileHandle.standardError.write(Data("exported the statistics of \(days.count) day(s) to \(out)\n".utf8))
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            return
        }
        let records = try await FHIRAuditEvent.entries(client: client, prefix: redis.keyPrefix, sinceMilliseconds: from, untilMilliseconds: to)
        let resources = records.map(FHIRAuditEvent.resource)
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        var text = ""
        if bundle {
            text = String(decoding: try JSONSerialization.data(withJSONObject: FHIRAuditEvent.bundle(resources), options: options), as: UTF8.self) + "\n"
        } else {
            for resource in resources { text += String(decoding: try JSONSerialization.data(withJSONObject: resource, options: options), as: UTF8.self) + "\n" }
        }
        if let out {
            try Files.write(out, text, mode: 0o600)
            FileHandle.standardError.write(Data("exported \(resources.count) AuditEvent(s) to \(out)\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }

    /// Milliseconds since 1970 of a date (UTC midnight), an ISO 8601 time or a number.
    static func milliseconds(_ text: String) -> Int64? {
        if let number = Int64(text), number >= 0 { return number }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: text) { return Int64(date.timeIntervalSince1970 * 1000) }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        day.timeZone = TimeZone(identifier: "UTC")
        return day.date(from: text).map { Int64($0.timeIntervalSince1970 * 1000) }
    }
}

/// `radgridctl study UID`: a study's record, its instances with their status and its audit
/// timeline; `radgridctl study requeue UID`: send a failed, quarantined or not-routable study
/// through the pipeline again.
struct StudyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "study", abstract: "Show a study (record, instances, timeline) or requeue it.",
                                                    subcommands: [Show.self, Requeue.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a study's state, instances and audit timeline.")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Study Instance UID.") var studyInstanceUID: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let uid = try StudyUID(studyInstanceUID)
            let store = StudyStore(client: client, prefix: redis.keyPrefix)
            let record = try await store.record(uid)
            let outcomes = try await store.outcomes(uid)
            let instances = try await store.instances(uid).map { entry in
                StudyOutput.Instance(sop: entry.sop.rawValue, series: entry.series?.rawValue ?? "", bytes: entry.bytes, outcome: outcomes[entry.sop])
            }
            let timeline = try await AuditTrail.timeline(client: client, prefix: redis.keyPrefix, study: studyInstanceUID)
            var output = StudyOutput(study: studyInstanceUID, record: record, instances: instances, timeline: timeline)
            output.report = try await store.report(uid)
            if json {
                print(try JSONOutput.string(output))
                return
            }
            guard record != nil || !timeline.isEmpty else {
                print("no study \(studyInstanceUID)")
                throw ExitCode(1)
            }
            print(output.render())
        }
    }

    struct Requeue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a failed, quarantined or not-routable study through the pipeline again (audited).")
        @OptionGroup var redis: RedisOptions
        @Argument(help: "Study Instance UID.") var studyInstanceUID: String
        @Option(help: "Why (recorded in the audit trail).") var reason: String = "operator"
        @Option(help: "Who (recorded in the audit trail; default: the operating-system user, or RADGRID_OPERATOR).") var actor: String = AdminAudit.operatorName

        func run() async throws {
            let client = try RedisClient(url: redis.resolvedURL)
            defer { client.shutdown() }
            let outcome = try await Self.requeue(try StudyUID(studyInstanceUID), reason: reason, actor: actor, client: client, prefix: redis.keyPrefix, queueShards: redis.queueShards)
            print(outcome)
            guard case .requeued = outcome else { throw ExitCode(1) }
        }

        enum Outcome: CustomStringConvertible {
            case requeued(StudyUID, generation: Int)
            case notApplicable(StudyUID, why: String)
            case unknown(StudyUID)

            var description: String {
                switch self {
                case .requeued(let uid, let generation): "requeued \(uid) (generation \(generation))"
                case .notApplicable(let uid, let why): "\(uid) not requeued: \(why)"
                case .unknown(let uid): "no study \(uid)"
                }
            }
        }

        /// Requeues through the state machine (audited as `admin:<actor>`).
        static func requeue(_ uid: StudyUID, reason: String, actor: String, client: RedisClient, prefix: KeyPrefix, queueShards: Int = 1) async throws -> Outcome {
            let store = StudyStore(client: client, prefix: prefix)
            let cleanReason = String(reason.filter { $0.isLetter || $0.isNumber || "-_. ".contains($0) }.prefix(64))
            let handled = try await store.handle(.requeue(reason: cleanReason), study: uid, actor: AuditActor(.admin, actor), machine: StudyStateMachine(),
                                                 effects: StudyWork(client: client, prefix: prefix, queueShards: queueShards))
            switch handled {
            case .unknownStudy: return .unknown(uid)
            case .handled(let decision, let record):
                if let why = decision.ignored { return .notApplicable(uid, why: why) }
                return .requeued(uid, generation: record.generation)
            }
        }
    }
}

/// What `radgridctl study UID --json` prints.
struct StudyOutput: Encodable {
    struct Instance: Encodable {
        let sop: String
        let series: String
        let bytes: Int64
        let status: String
        let code: String?

        init(sop: String, series: String, bytes: Int64, outcome: InstanceOutcome?) {
            self.sop = sop
            self.series = series
            self.bytes = bytes
            switch outcome {
            case .image?: status = "image"; code = nil
            case .nonImage(let kind)?: status = "non-image"; code = kind
            case .failed(let failure)?: status = "failed"; code = failure
            case nil: status = "pending"; code = nil
            }
        }
    }

    let study: String
    let state: String?
    let reason: String?
    let reasonDetail: String?
    let priority: String?
    let caseID: String?
    let expert: String?
    let specialty: String?
    let routeNote: String?
    let urgency: String?
    let partial: Bool
    let lateInstances: Int
    let generation: Int
    let instances: [Instance]
    let timeline: [AuditRecord]
    /// The expert's report (draft, signed, addenda), when there is one.
    var report: StudyReport?

    init(study: String, record: StudyRecord?, instances: [Instance], timeline: [AuditRecord]) {
        self.study = study
        state = record?.state.rawValue
        reason = record?.failure?.code
        reasonDetail = record?.failure?.detail
        priority = record?.priority.rawValue
        caseID = record?.caseID?.rawValue
        expert = record?.expert?.rawValue
        specialty = record?.route?.specialty
        routeNote = record?.route?.note
        urgency = record?.screening?.urgency.rawValue
        partial = record?.screening?.isPartial ?? false
        lateInstances = record?.lateInstances ?? 0
        generation = record?.generation ?? 0
        self.instances = instances
        self.timeline = timeline
    }

    func render() -> String {
        var lines = ["study \(study)"]
        if let state {
            var head = "  state \(state)"
            if let reason { head += "  reason \(reason)" + (reasonDetail.map { $0.isEmpty ? "" : " (\($0))" } ?? "") }
            lines.append(head)
            lines.append("  priority \(priority ?? "-")  urgency \(urgency ?? "-")  case \(caseID ?? "-")  expert \(expert ?? "-")  specialty \(specialty ?? "-")")
            if let routeNote, !routeNote.isEmpty { lines.append("  routing: \(routeNote)") }
            if partial || lateInstances > 0 { lines.append("  flags:" + (partial ? " partial" : "") + (lateInstances > 0 ? " late-instances=\(lateInstances)" : "")) }
        } else {
            lines.append("  (record expired; audit trail below)")
        }
        if let report {
            let signed = report.signedMs.map { " signed " + Date(timeIntervalSince1970: Double($0) / 1000).formatted(.iso8601) } ?? ""
            lines.append("REPORT \(report.status.rawValue) by \(report.author)\(signed)\(report.critical ? "  CRITICAL" : "")  sha256 \(report.hash.prefix(16))…")
            if !report.findings.isEmpty { lines.append("  findings: " + report.findings.replacingOccurrences(of: "\n", with: "\n            ")) }
            lines.append("  impression: " + report.impression.replacingOccurrences(of: "\n", with: "\n              "))
            for addendum in report.addenda {
                lines.append("  addendum by \(addendum.author) (\(addendum.reason)): " + addendum.text.replacingOccurrences(of: "\n", with: " "))
            }
        }
        if !instances.isEmpty {
            lines.append("INSTANCES (\(instances.count))")
            for instance in instances {
                lines.append("  \(instance.sop)  \(instance.status)" + (instance.code.map { " \($0)" } ?? ""))
            }
        }
        lines.append("TIMELINE")
        for record in timeline {
            let time = Date(timeIntervalSince1970: Double(record.timestampMilliseconds) / 1000)
            lines.append("  \(time.formatted(.iso8601))  \(record.actor.padding(toLength: 22, withPad: " ", startingAt: 0)) \(record.action.padding(toLength: 24, withPad: " ", startingAt: 0)) \(record.details)")
        }
        return lines.joined(separator: "\n")
    }
}

struct StudyTimelineOutput: Encodable {
    let study: String
    let timeline: [AuditRecord]
}

/// JSON for `--json` flags: sorted keys, no escaped slashes.
enum JSONOutput {
    static func string<Value: Encodable>(_ value: Value) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
