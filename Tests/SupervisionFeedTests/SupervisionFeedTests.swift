import Audit
import Crypto
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import RadGridCore
import RedisClient
import ServiceLifecycle
import SupervisionFeed
import TestSupport
import Testing

/// The supervision feed against a real receiver (Tests/Clients/feed_receiver.py, which checks
/// every signature with Python's own HMAC): every entry arrives, a failing endpoint is retried,
/// a restart resends only the unacknowledged batch under its own id, a refusal stops the feed,
/// and each closed day's statistics follow the entries.
@Suite("Supervision feed")
struct SupervisionFeedTests {
    static let secret = "feed-test-secret-0123456789"
    static let logger = Logger(label: "radgrid.feed.test")

    struct Fixture {
        let client: RedisClient
        let prefix: KeyPrefix

        static func make() async throws -> Fixture {
            Fixture(client: try RedisClient(url: try await TestRedis.url()), prefix: KeyPrefix(TestRedis.uniquePrefix("feed")))
        }

        /// Appends `count` entries spread over a study chain, the access chain and the critical
        /// results' chain, each kind the FHIR mapping knows.
        func write(_ count: Int, from first: Int = 0) async throws {
            let study = "1.2.826.0.1.3680043.77"
            for index in first..<(first + count) {
                switch index % 3 {
                case 0:
                    try await AuditTrail(client: client, prefix: prefix, chain: "s:" + study)
                        .append(actor: AuditActor(.site, "H1"), action: index == 0 ? "study.received" : "instance.stored", study: study, details: "n=\(index)")
                case 1:
                    try await AuditTrail(client: client, prefix: prefix, chain: "access")
                        .append(actor: AuditActor(.system, "portal"), action: "auth.login", details: "user=E\(index);role=expert;address=10.0.0.1")
                default:
                    try await AuditTrail(client: client, prefix: prefix, chain: "cr")
                        .append(actor: AuditActor(.expert, "E1"), action: "critical.raised", study: study, details: "result=cr-\(index);source=report;priority=stat;site=H1")
                }
            }
            // The feed takes entries older than its horizon (Redis's clock): let a millisecond pass.
            try await Task.sleep(for: .milliseconds(10))
        }

        /// Every entry as `chain/id`, in the feed's order.
        func entries() async throws -> [String] {
            var positions: [FeedPosition] = []
            for chain in try await AuditTrail.chains(client: client, prefix: prefix) {
                positions += try await AuditTrail(client: client, prefix: prefix, chain: chain).entries().compactMap { FeedPosition(chain: chain, entryID: $0.id) }
            }
            return positions.sorted().map(\.description)
        }

        func settings(_ receiver: FeedReceiver, batch: Int) throws -> SupervisionFeedSettings {
            var settings = try SupervisionFeedSettings(endpoint: receiver.url, name: "platform", secret: Array(SupervisionFeedTests.secret.utf8))
            settings.batchSize = batch
            settings.settle = .zero
            settings.backoff = (.milliseconds(20), .milliseconds(100))
            settings.requestTimeout = .seconds(5)
            return settings
        }

        var cursors: FeedCursorStore { FeedCursorStore(client: client, prefix: prefix, name: "platform") }
    }

    @Test func everyEntryArrivesSignedAndAFailingEndpointIsRetried() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        try await fixture.write(7)
        let receiver = FeedReceiver(secret: Self.secret)
        try await receiver.start(["--fail", "2"])
        defer { receiver.stop() }

        // The daemon's service, stopped gracefully once everything has arrived.
        let pusher = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: try fixture.settings(receiver, batch: 3), logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [SupervisionFeedService(pusher: pusher, interval: .milliseconds(50), logger: Self.logger)],
                                                      logger: Self.logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while receiver.storedEntries().count < 7, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }

        let posts = receiver.posts()
        #expect(posts.allSatisfy { $0.signatureValid })
        #expect(posts.allSatisfy { $0.contentType == "application/fhir+ndjson" })
        // The first batch failed twice (503) and was sent again under the same id.
        try #require(posts.count == 5)
        #expect(posts[0].status == 503 && posts[1].status == 503 && posts[2].status == 200)
        #expect(posts[0].batch == posts[2].batch && posts[1].batch == posts[2].batch)
        #expect(posts.filter(\.stored).map { $0.entries.count } == [3, 3, 1])
        #expect(posts.filter(\.duplicate).isEmpty)
        let written = try await fixture.entries()
        #expect(receiver.storedEntries() == written)
        #expect(try await fixture.cursors.load().position?.description == written.last)
        try await FeedReceiver.validateFHIR(posts.filter(\.stored).map(\.body).joined())
    }

    @Test func aRestartResendsTheUnacknowledgedBatchUnderItsIdAndLosesNothing() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        try await fixture.write(5)
        let receiver = FeedReceiver(secret: Self.secret)
        // The second batch is stored but its answer never comes in time: delivered, not acknowledged.
        try await receiver.start(["--hang", "2"])
        defer { receiver.stop() }

        var settings = try fixture.settings(receiver, batch: 2)
        settings.requestTimeout = .milliseconds(500)
        let first = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: settings, logger: Self.logger)
        await #expect(throws: FeedError.self) { try await first.pushPending(maxAttempts: 1) }
        try await first.shutdown()
        let interrupted = try await fixture.cursors.load()
        let posts = receiver.posts()
        try #require(posts.count == 2)
        #expect(interrupted.position?.description == posts[0].entries.last)
        #expect(interrupted.pending?.id == posts[1].batch && interrupted.pending?.count == 2)

        // More entries arrive while the feed is down; the restarted feed sends the interrupted
        // batch exactly as it was, then the rest.
        try await fixture.write(2, from: 5)
        let second = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: try fixture.settings(receiver, batch: 2), logger: Self.logger)
        let summary = try await second.pushPending(maxAttempts: 3)
        try await second.shutdown()
        #expect(summary.entries == 5 && summary.batches == 3)

        let all = receiver.posts()
        #expect(all.allSatisfy { $0.signatureValid })
        #expect(all[2].batch == all[1].batch && all[2].duplicate && all[2].body == all[1].body)
        // Each entry went in exactly one batch id; only that batch was seen twice.
        var batchesOfEntry: [String: Set<String>] = [:]
        for post in all where post.stored {
            for entry in post.entries { batchesOfEntry[entry, default: []].insert(post.batch) }
        }
        #expect(batchesOfEntry.values.allSatisfy { $0.count == 1 })
        #expect(all.filter(\.duplicate).map(\.batch) == [all[1].batch])
        let written = try await fixture.entries()
        #expect(Set(batchesOfEntry.keys) == Set(written) && written.count == 7)
        let cursor = try await fixture.cursors.load()
        #expect(cursor.position?.description == written.last && cursor.pending == nil)
    }

    @Test func aRefusalStopsTheFeedWithoutMovingItsPosition() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        try await fixture.write(3)
        let receiver = FeedReceiver(secret: Self.secret)
        try await receiver.start(["--refuse", "403"])
        defer { receiver.stop() }

        let once = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: try fixture.settings(receiver, batch: 10), logger: Self.logger)
        do {
            try await once.pushPending(maxAttempts: 5)
            Issue.record("a 403 must stop the push")
        } catch let error as FeedError {
            #expect(error.is(.refused) && error.message.contains("403"))
        }
        try await once.shutdown()
        #expect(receiver.posts().count == 1)
        #expect(try await fixture.cursors.load().position == nil)

        // The daemon's service stops the same way, with the error.
        let pusher = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: try fixture.settings(receiver, batch: 10), logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [SupervisionFeedService(pusher: pusher, interval: .milliseconds(50), logger: Self.logger)],
                                                      logger: Self.logger))
        await #expect(throws: FeedError.self) { try await group.run() }
        #expect(receiver.posts().count == 2)
    }

    @Test func eachClosedDaysStatisticsFollowTheEntries() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        try await fixture.write(1)
        let today = try #require(try await AuditTrail(client: fixture.client, prefix: fixture.prefix, chain: "s:1.2.826.0.1.3680043.77").entries().first)
            .timestampMilliseconds / ServiceStatistics.dayMilliseconds
        // The feed has been running: its statistics are due from two days ago.
        try await fixture.client.send("HSET", RedisArgument(fixture.cursors.key), "stats_day", RedisArgument(ServiceStatistics.dayString(today - 2)))
        let receiver = FeedReceiver(secret: Self.secret)
        try await receiver.start()
        defer { receiver.stop() }

        var settings = try fixture.settings(receiver, batch: 10)
        settings.statisticsDelay = .zero
        let pusher = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: settings, logger: Self.logger)
        let summary = try await pusher.pushPending(maxAttempts: 3)
        let again = try await pusher.pushPending(maxAttempts: 3)
        try await pusher.shutdown()
        #expect(summary.batches == 1 && summary.entries == 1)
        #expect(summary.statisticsDays >= 2)
        #expect(again == SupervisionFeedPusher.Summary())

        let posts = receiver.posts()
        #expect(posts.allSatisfy { $0.signatureValid && $0.status == 200 })
        try #require(posts.count >= 3)
        #expect(posts[0].contentType == "application/fhir+ndjson")
        let days = [ServiceStatistics.dayString(today - 2), ServiceStatistics.dayString(today - 1)]
        #expect(posts[1].contentType == "application/json" && posts[2].contentType == "application/json")
        #expect(posts[1].batch == "platform-stats-\(days[0])" && posts[2].batch == "platform-stats-\(days[1])")
        let figures = try [posts[1], posts[2]].map { try JSONDecoder().decode(DailyServiceStatistics.self, from: Data($0.body.utf8)) }
        #expect(figures.map(\.day) == days && figures.allSatisfy { $0.wholeDay && $0.schema == DailyServiceStatistics.currentSchema })
        let cursor = try await fixture.cursors.load()
        #expect(cursor.statisticsDay == today - 2 + Int64(summary.statisticsDays))
    }

    @Test func signedCheckpointsReachThePlatformAsWrittenAndOnce() async throws {
        let fixture = try await Fixture.make()
        defer { fixture.client.shutdown() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rg-feed-ckpt-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let key = try CheckpointKey.loadOrCreate(privateKeyPath: directory + "/checkpoint.key", publicKeyPath: directory + "/checkpoint.pub")
        try await fixture.write(2)
        _ = try await AuditCheckpoints.write(client: fixture.client, prefix: fixture.prefix, directory: directory + "/checkpoints", key: key)
        try await fixture.write(1, from: 2)
        _ = try await AuditCheckpoints.write(client: fixture.client, prefix: fixture.prefix, directory: directory + "/checkpoints", key: key)
        let receiver = FeedReceiver(secret: Self.secret)
        try await receiver.start()
        defer { receiver.stop() }
        var settings = try fixture.settings(receiver, batch: 10)
        settings.checkpoints = directory + "/checkpoints"
        let pusher = try SupervisionFeedPusher(client: fixture.client, prefix: fixture.prefix, settings: settings, logger: Self.logger)
        let first = try await pusher.pushPending(maxAttempts: 3)
        #expect(first.checkpoints == 2)
        // A third checkpoint later: only it travels.
        _ = try await AuditCheckpoints.write(client: fixture.client, prefix: fixture.prefix, directory: directory + "/checkpoints", key: key)
        let second = try await pusher.pushPending(maxAttempts: 3)
        try await pusher.shutdown()
        #expect(second.checkpoints == 1)
        #expect(try await fixture.cursors.load().checkpointSequence == 3)

        let posts = receiver.posts().filter { $0.contentType == SupervisionFeedPusher.checkpointsContentType }
        #expect(posts.map(\.batch) == ["platform-checkpoints-1-2", "platform-checkpoints-3-3"])
        #expect(posts.allSatisfy { $0.signatureValid && $0.status == 200 })
        // Byte for byte the auditor's lines, so the platform verifies them with the grid's public key.
        let files = try FileManager.default.contentsOfDirectory(atPath: directory + "/checkpoints").filter { $0.hasSuffix(".jsonl") }.sorted()
        let written = try files.map { try String(contentsOfFile: directory + "/checkpoints/" + $0, encoding: .utf8) }.joined()
        #expect(posts.map(\.body).joined() == written)
        let publicKey = key.publicKey
        for line in written.split(separator: "\n") {
            let checkpoint = try JSONDecoder().decode(AuditCheckpoint.self, from: Data(line.utf8))
            #expect(publicKey.isValidSignature(Data(base64Encoded: checkpoint.signature) ?? Data(), for: Data(checkpoint.signedText.utf8)))
        }
    }

    @Test func signatureIsHMACSHA256OfTheBody() {
        // RFC 4231, test case 2.
        let body = Array("what do ya want for nothing?".utf8), key = Array("Jefe".utf8)
        let signature = FeedSignature.sign(body: body, secret: key)
        #expect(signature == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        #expect(FeedSignature.verify(body: body, secret: key, signature: signature))
        #expect(!FeedSignature.verify(body: body + [0x20], secret: key, signature: signature))
    }

    @Test func positionsOrderByTimeThenChainThenSequence() throws {
        let a = try #require(FeedPosition(chain: "access", entryID: "1700000000000-5"))
        let b = try #require(FeedPosition(chain: "cr", entryID: "1700000000000-0"))
        let c = try #require(FeedPosition(chain: "access", entryID: "1700000000001-0"))
        #expect(a < b && b < c)
        #expect(FeedPosition(chain: "x", entryID: "nonsense") == nil)
        #expect(throws: FeedError.self) { try SupervisionFeedSettings(endpoint: "ftp://x", secret: Array(Self.secret.utf8)) }
        #expect(throws: FeedError.self) { try SupervisionFeedSettings(endpoint: "https://x.example", secret: Array("short".utf8)) }
        #expect(try SupervisionFeedSettings(endpoint: "https://sup.example.org:8443/feed", secret: Array(Self.secret.utf8)).name == "sup.example.org")
    }
}

/// Tests/Clients/feed_receiver.py on a free port, its requests read back from its log.
final class FeedReceiver: @unchecked Sendable {
    static let script = Corpus.packageRoot.path + "/Tests/Clients/feed_receiver.py"
    let port = ChildProcess.freePort()
    let secret: String
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-feed-\(UUID().uuidString).jsonl").path
    private var process: ChildProcess?

    init(secret: String) { self.secret = secret }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: log)
    }

    var url: String { "http://127.0.0.1:\(port)/audit" }

    func start(_ options: [String] = []) async throws {
        process = try ChildProcess(executable: "/usr/bin/python3", arguments: [Self.script, String(port), secret, log] + options)
        for _ in 0..<200 {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/health")!)
            request.timeoutInterval = 1
            if let (_, response) = try? await URLSession.shared.data(for: request), (response as? HTTPURLResponse)?.statusCode == 200 { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestSupportError("the feed receiver did not start")
    }

    func stop() {
        process?.terminate(grace: .seconds(2))
        process = nil
    }

    struct Post {
        var status: Int
        var stored: Bool
        var duplicate: Bool
        var signatureValid: Bool
        var batch: String
        var contentType: String
        var body: String
        /// `chain/entry id` of each AuditEvent in the body (from its entity details).
        var entries: [String]
    }

    func posts() -> [Post] {
        guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line -> Post? in
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { return nil }
            let body = object["body"] as? String ?? ""
            let contentType = object["contentType"] as? String ?? ""
            return Post(status: (object["status"] as? NSNumber)?.intValue ?? 0, stored: object["stored"] as? Bool ?? false,
                        duplicate: object["duplicate"] as? Bool ?? false, signatureValid: object["signatureValid"] as? Bool ?? false,
                        batch: object["batch"] as? String ?? "", contentType: contentType, body: body,
                        entries: contentType == "application/fhir+ndjson" ? Self.entries(body) : [])
        }
    }

    /// Entries of every stored batch, first copies only, in arrival order.
    func storedEntries() -> [String] {
        var seen = Set<String>()
        return posts().filter { $0.stored && !$0.duplicate }.flatMap(\.entries).filter { seen.insert($0).inserted }
    }

    static func entries(_ ndjson: String) -> [String] {
        ndjson.split(separator: "\n").compactMap { line in
            guard let event = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                  let details = (event["entity"] as? [[String: Any]])?.first?["detail"] as? [[String: Any]] else { return nil }
            let value = { (type: String) in details.first { $0["type"] as? String == type }?["valueString"] as? String }
            guard let chain = value("chain"), let entry = value("entry") else { return nil }
            return "\(chain)/\(entry)"
        }
    }

    /// Runs Tests/Clients/fhir_validate.py on the AuditEvents (skipped when the pinned Python
    /// packages are not installed: `make test` installs them into .pydeps).
    static func validateFHIR(_ ndjson: String) async throws {
        let root = Corpus.packageRoot.path
        guard FileManager.default.fileExists(atPath: root + "/.pydeps/fhir") else { return }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-feed-fhir-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try ndjson.write(toFile: directory + "/events.ndjson", atomically: true, encoding: .utf8)
        let count = ndjson.split(separator: "\n").count
        let python = try ChildProcess(executable: "/usr/bin/python3", arguments: [root + "/Tests/Clients/fhir_validate.py", directory + "/events.ndjson"],
                                      environment: ["PYTHONPATH": root + "/.pydeps", "PATH": "/usr/bin:/bin"], outputPath: directory + "/validate.log")
        let status = await python.exit(timeout: .seconds(60))
        let text = (try? String(contentsOfFile: directory + "/validate.log", encoding: .utf8)) ?? ""
        #expect(status == 0 && text.contains("valid \(count)"), "fhir_validate.py: \(text)")
    }
}
