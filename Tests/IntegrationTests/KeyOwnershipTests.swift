import Foundation
import GridContract
import RadGridCore
import RedisClient
import StudyLifecycle
import Screening
import Testing
import TestSupport

/// Every key the grid writes has an owner that deletes it, a TTL, or a cap. The registry
/// below is the list (docs/ARCHITECTURE.md, "Keys and their owners"); a key the grid writes
/// that matches no entry fails the test, so a new key cannot slip in without an owner.
@Suite("Keys: every key has an owner, a TTL or a cap", .serialized)
struct KeyOwnershipTests {
    enum Lifetime: Equatable {
        /// Must carry a TTL.
        case ttl
        /// Bounded by a cap or a trim (streams, counters).
        case capped
        /// Deleted by its owner at a known step (named for the reader).
        case owned(String)
    }

    static let registry: [(pattern: String, lifetime: Lifetime)] = [
        ("{s:*}:study", .owned("study store: expired at retention by the sweeper")),
        ("{s:*}:instances", .owned("study store: expired with the record")),
        ("{s:*}:outcomes", .owned("study store: expired with the record")),
        ("{s:*}:thumbs", .owned("study store: expired with the record")),
        ("{s:*}:report", .owned("portal writes it; expired with the record")),
        ("{s:*}:blob:*", .owned("deleted when the study is reported, else expired with the record")),
        ("{s:*}:audit:*", .owned("audit chain: kept for the record (archived, never expired)")),
        ("{rt}:audit:*", .owned("audit chain: kept for the record")),
        ("{admin}:audit:*", .owned("audit chain of operators' changes (radgridctl): kept for the record")),
        ("audit:chains", .owned("audit chain registry")),
        ("audit:chains:study", .owned("audit chain registry")),
        ("studies:all", .owned("sweeper: a study leaves it when its record expires")),
        ("studies:due", .owned("sweeper: a study leaves it when its record expires")),
        ("studies:state:*", .owned("sweeper: a study leaves it when its record expires")),
        ("studies:committed", .capped),
        ("coord:case:*", .ttl),
        ("sites:region", .owned("configuration")),
        ("sites:uploading:*", .ttl),
        ("sites:policy", .owned("configuration: radgridctl sites policy")),
        ("sites:uploads:*", .ttl),
        ("sites:open:*", .owned("study store: a study leaves its site's open index when it ends or its record expires")),
        ("feed:{feed}:cursor:*", .owned("supervision feed: its position, kept")),
        ("gateway:tokens", .owned("configuration: radgridctl sites")),
        ("sites:dicom:callers", .owned("configuration: radgridctl sites dicom / dicom-remove")),
        ("sites:dicom:pacs", .owned("configuration: radgridctl sites pacs")),
        ("dimse:{out}:due", .owned("DIMSE outbox: a job leaves when sent or dead-lettered")),
        ("dimse:{out}:job:*", .owned("DIMSE outbox: deleted when sent; a dead job pruned after 30 days or requeued")),
        ("dimse:{out}:dead", .owned("DIMSE outbox: pruned by the senders after 30 days; radgridctl dimse retry")),
        ("accounts:*", .owned("configuration: radgridctl experts passwd, accounts set")),
        ("sessions:*", .ttl),
        ("login:fail:*", .ttl),
        ("workers", .owned("each heartbeat prunes workers gone for an hour")),
        ("workers:*", .ttl),
        // Both queues (`tasks`, the ai stage's `ai`): the same families, kept by the same queue code.
        ("{q:*}:lane:*", .capped),
        ("{q:*}:state", .owned("queue: records of completed tasks pruned by housekeeping")),
        ("{q:*}:completed", .owned("queue: pruned by housekeeping")),
        ("{q:*}:groups*", .owned("queue: fan-in groups dropped when they fire or expire")),
        ("{q:*}:delayed:*", .owned("queue: retries promoted when due")),
        ("{q:*}:dead", .capped),
        ("{q:tasks}:screened", .capped),
        ("{q:*}:result:*", .ttl),
        ("{q:ai}:screening:*", .ttl),
        ("route:{rt}:case:*", .owned("router: a case expires after it is completed or cancelled")),
        ("route:{rt}:pool:*", .owned("router roster")),
        ("route:{rt}:ex:*", .owned("router roster")),
        ("route:{rt}:wait", .owned("router: cases leave when offered")),
        ("route:{rt}:held", .owned("router: a member leaves when its case leaves its holder")),
        ("route:{rt}:timers", .owned("router: timers leave when they fire")),
        ("route:{rt}:escalated", .owned("router: cases leave when they close")),
        ("route:{rt}:wake", .owned("router: drained by the control loop")),
        ("route:{rt}:stats", .capped),
        ("route:{rt}:intake", .capped),
        ("route:{rt}:audit", .capped),
        // Critical results (CriticalResultKeys): a result stays until acknowledged, then expires.
        ("crit:{cr}:r:*", .owned("critical results: kept until acknowledged, then a TTL of the retention")),
        ("crit:{cr}:open", .owned("critical results: a member leaves when acknowledged")),
        ("crit:{cr}:deliveries", .owned("critical results: a member leaves when delivered, dead-lettered or acknowledged")),
        ("crit:{cr}:timers", .owned("critical results: a member leaves after the last escalation or the acknowledgement")),
        ("crit:{cr}:dead", .owned("critical results: a member leaves on retry or acknowledgement")),
        ("crit:{cr}:acked", .owned("critical results: pruned by the notifiers past the retention")),
        ("crit:{cr}:config:*", .owned("configuration: radgridctl sites webhook, critical admin-webhook; the notifiers' policy")),
        ("{cr}:audit:*", .owned("audit chain: kept for the record")),
        // Quality control (QCStore): open reviews stay until closed, the rest expire.
        ("{qc}:case:*", .owned("QC: an unsampled read expires; an open review stays until closed, then expires")),
        ("{qc}:open", .owned("QC: a member leaves when its review closes")),
        ("{qc}:arbitration", .owned("QC: a member leaves when arbitrated")),
        ("{qc}:reads", .owned("QC: per-expert counters (one field per expert)")),
        ("{qc}:stats", .owned("QC: per-expert figures")),
        ("{qc}:flagged", .owned("QC: cleared by radgridctl qc unflag")),
        ("{qc}:audit:*", .owned("audit chain: kept for the record")),
        ("turnaround", .owned("coordinator: turnaround counters of reported studies (radgridctl status)")),
    ]

    static func matches(_ key: String, _ pattern: String) -> Bool {
        // `*` matches any run of characters.
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        guard key.hasPrefix(parts[0]) else { return false }
        var rest = key.dropFirst(parts[0].count)
        for (i, part) in parts.dropFirst().enumerated() {
            let isLast = i == parts.count - 2
            if isLast { return part.isEmpty || rest.hasSuffix(part) }
            guard let range = rest.firstRange(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return rest.isEmpty
    }

    @Test func afterAStudyIsReportedAndAnotherAssignedEveryKeyIsAccountedFor() async throws {
        let grid = try await InProcessGrid()
        grid.startCoordinator()
        // With a model, so the ai stage's keys are accounted for too.
        try grid.startWorker(models: try ModelCatalog.load(directory: ModelStageTests.modelFolder))
        let reported = try await grid.submit(seed: 41, slices: 3)
        let routed = try await grid.submit(seed: 42, slices: 3)
        let first = try await grid.wait(reported, for: .assigned)
        try await grid.wait(routed, for: .assigned)
        let caseID = try #require(first.caseID), expert = try #require(first.expert)
        try await grid.router.accept(caseID: caseID.rawValue, expert: expert.rawValue)
        try await grid.router.complete(caseID: caseID.rawValue, expert: expert.rawValue, reportReference: "R-9")
        try await grid.wait(reported, for: .reported) { $0.blobsDeleted }
        try await Task.sleep(for: .milliseconds(300))

        var cursor = "0"
        var keys: [String] = []
        repeat {
            let reply = try await grid.client.send("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(grid.prefix.value + "*"), "COUNT", "1000")
            cursor = reply.array?.first?.string ?? "0"
            keys += (reply.array?.last?.array ?? []).compactMap(\.string)
        } while cursor != "0"
        #expect(keys.count > 20)
        for key in keys {
            let name = String(key.dropFirst(grid.prefix.value.count))
            guard let entry = Self.registry.first(where: { Self.matches(name, $0.pattern) }) else {
                Issue.record("key \(name) has no owner in the registry")
                continue
            }
            if entry.lifetime == .ttl {
                let ttl = try await grid.client.send("PTTL", RedisArgument(key)).int ?? -2
                #expect(ttl > 0, "\(name) must carry a TTL")
            }
        }
        // The reported study's blobs are gone; its router case closes with a TTL.
        #expect(!keys.contains { $0.contains("{s:\(reported)}:blob:") })
        let caseKey = grid.prefix.value + "route:{rt}:case:" + caseID.rawValue
        #expect(try await grid.client.send("PTTL", RedisArgument(caseKey)).int ?? -2 > 0, "a completed case expires")
        await grid.close()
    }
}
