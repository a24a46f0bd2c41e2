import Accounts
import Audit
import ArgumentParser
import AsyncHTTPClient
import Foundation
import Gateway
import GridContract
import GridSupervisor
import NIOCore
import RadGridCore
import RedisClient
import Routing
import Screening
import StudyLifecycle
import StudyStore
import Synchronization

/// `radgrid-bench portal`: the expert portal under its real load shape. Every expert of the
/// roster (600) signs in and keeps an event stream open while studies flow through the grid;
/// meanwhile clients ask for worklists and scroll through 512×512 slices.
/// Measures p99 of `GET /api/v1/me/cases`, of a `/rendered` 512×512 frame (PNG), and the delay
/// from the router's offer to the offer arriving on the expert's stream.
struct PortalBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "portal", abstract: "Worklist and rendered-frame latency, offer push delay, with every expert signed in.")

    @Option(help: "Experts on the roster, all signed in with an open event stream.") var experts = 600
    @Option(help: "Studies submitted during the run (one every --interval seconds).") var studies = 30
    @Option(help: "Seconds between two studies.") var interval = 1.0
    @Option(help: "Slices per study.") var slices = 24
    @Option(help: "Matrix size of the phantoms.") var size = 512
    @Option(help: "Concurrent worklist readers.") var worklistClients = 4
    @Option(help: "Concurrent slice readers (an expert scrolling).") var frameClients = 2
    @Option(help: "Worker processes.") var workers = 2
    @Flag(help: "Print one JSON object as the last line.") var json = false

    final class Samples: Sendable {
        let worklist = Mutex<[Double]>([])
        let frames = Mutex<[Double]>([])
        let offers = Mutex<[Double]>([])
        let errors = Mutex<[String: Int]>([:])
        let connected = Mutex(0)
        /// Set when the run is over: the streams stop counting errors.
        let stopped = Mutex(false)
        func error(_ what: String) { errors.withLock { $0[what, default: 0] += 1 } }
    }

    func run() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-bench-portal-\(getpid())").path
        var options = LocalGrid.Options(directory: dir)
        options.prefix = KeyPrefix("rg:")
        options.workers = workers
        options.experts = experts
        options.stableAge = 30
        let grid = LocalGrid(options: options)
        try await grid.start()
        let redis = try RedisClient(url: grid.redisURL)
        let http = HTTPClient(eventLoopGroupProvider: .singleton,
                              configuration: .init(connectionPool: .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: experts + 64)))
        let samples = Samples()
        var report: [String: Any] = [:]
        do {
            report = try await measure(grid: grid, redis: redis, http: http, prefix: options.prefix, samples: samples)
        } catch {
            try? await http.shutdown()
            redis.shutdown()
            await grid.stop(grace: .seconds(5))
            throw error
        }
        try? await http.shutdown()
        redis.shutdown()
        await grid.stop(grace: .seconds(10))
        if json { print(String(decoding: try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys]), as: UTF8.self)) }
    }

    func measure(grid: LocalGrid, redis: RedisClient, http: HTTPClient, prefix: KeyPrefix, samples: Samples) async throws -> [String: Any] {
        let portal = grid.portalURL
        let router = ExpertRouter(redis: redis, prefix: prefix, actor: "bench")
        let rosterIDs = try await router.expertIDs().sorted()
        // Accounts with bcrypt cost 4: sign-in cost is not what this measures (600 × cost 10 would
        // take ~40 s of CPU before the run starts).
        var settings = AccountSettings()
        settings.bcryptCost = 4
        let accounts = AccountStore(client: redis, prefix: prefix, settings: settings)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, id) in rosterIDs.enumerated() {
                group.addTask { try await accounts.setPassword(user: id, role: .expert, expert: id, password: "bench-\(id)-password", by: "admin:bench") }
                if n % 16 == 15 { try await group.waitForAll() }
            }
            try await group.waitForAll()
        }
        var tokens: [String: String] = [:]
        var lapsed = 0
        for id in rosterIDs {
            let reply = try await send(http, "POST", portal + "/api/v1/login", body: ["user": id, "password": "bench-\(id)-password"])
            if reply.status == 403 { lapsed += 1; continue }  // the generated roster has expired licences too: refused, as they must be
            guard reply.status == 200, let token = reply.json?["token"] as? String else { throw ValidationError("login of \(id) failed: \(reply.status)") }
            tokens[id] = token
        }
        let ids = tokens.keys.sorted()
        if !json { print("\(ids.count) experts signed in (\(lapsed) refused: no valid licence); opening their event streams") }

        var streams: [Task<Void, Never>] = []
        for id in ids {
            let token = tokens[id]!
            streams.append(Task { await listen(http, portal, token: token, samples: samples) })
        }
        let openDeadline = ContinuousClock.now + .seconds(60)
        while samples.connected.withLock({ $0 }) < ids.count && ContinuousClock.now < openDeadline { try await Task.sleep(for: .milliseconds(100)) }
        let open = samples.connected.withLock { $0 }
        if !json { print("\(open) event streams open; submitting \(studies) studies of \(slices) × \(size)² slices, one every \(interval) s") }

        // Studies flow in the background for the whole run.
        let store = StudyStore(client: redis, prefix: prefix)
        let submitted = Mutex<[StudyUID]>([])
        let feeder = Task {
            for i in 0..<studies {
                if Task.isCancelled { break }
                if let uid = try? await submit(store: store, seed: UInt64(31_000 + i), kind: i % 2 == 0 ? .head : .chest) {
                    submitted.withLock { $0.append(uid) }
                }
                try? await Task.sleep(for: .seconds(interval))
            }
        }

        // The first assigned study is accepted by its expert, who then scrolls through it.
        var reader: (token: String, study: StudyUID, sops: [(series: String, sop: String)])?
        let readerDeadline = ContinuousClock.now + .seconds(120)
        while reader == nil && ContinuousClock.now < readerDeadline {
            for uid in submitted.withLock({ $0 }) {
                guard let record = try await store.record(uid), record.state == .assigned, let caseID = record.caseID, let expert = record.expert,
                      let token = tokens[expert.rawValue] else { continue }
                let accepted = try await send(http, "POST", portal + "/api/v1/cases/\(caseID)/accept", token: token)
                guard accepted.status == 200 else { continue }
                let detail = try await send(http, "GET", portal + "/api/v1/cases/\(caseID)", token: token)
                let instances = (detail.json?["instances"] as? [[String: Any]] ?? []).compactMap { row -> (String, String)? in
                    guard let series = row["series"] as? String, let sop = row["sop"] as? String else { return nil }
                    return (series, sop)
                }
                reader = (token, uid, instances)
                break
            }
            if reader == nil { try await Task.sleep(for: .milliseconds(200)) }
        }
        guard let reader, !reader.sops.isEmpty else { throw ValidationError("no study reached an expert within 120 s") }

        let signedIn = tokens
        let runSeconds = max(10, Double(studies) * interval)
        let loadEnd = ContinuousClock.now + .seconds(runSeconds)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in 0..<worklistClients {
                group.addTask {
                    var n = client
                    while ContinuousClock.now < loadEnd {
                        let token = signedIn[ids[(n * 7919) % ids.count]]!
                        n += worklistClients
                        let started = ContinuousClock.now
                        let reply = try await send(http, "GET", portal + "/api/v1/me/cases", token: token)
                        let ms = Self.milliseconds(ContinuousClock.now - started)
                        if reply.status == 200 { samples.worklist.withLock { $0.append(ms) } } else { samples.error("worklist \(reply.status)") }
                    }
                }
            }
            let windows = ["40,80", "-600,1500", "500,2000", "50,400"]
            for client in 0..<frameClients {
                group.addTask {
                    var n = client
                    while ContinuousClock.now < loadEnd {
                        let (series, sop) = reader.sops[n % reader.sops.count]
                        let window = windows[(n / reader.sops.count) % windows.count]
                        n += frameClients
                        let url = portal + "/dicomweb/studies/\(reader.study)/series/\(series)/instances/\(sop)/rendered?window=\(window)"
                        let started = ContinuousClock.now
                        let reply = try await send(http, "GET", url, token: reader.token, accept: "image/png")
                        let ms = Self.milliseconds(ContinuousClock.now - started)
                        if reply.status == 200 { samples.frames.withLock { $0.append(ms) } } else { samples.error("rendered \(reply.status)") }
                    }
                }
            }
            try await group.waitForAll()
        }
        await feeder.value
        // Let the last offers arrive.
        try await Task.sleep(for: .seconds(3))
        samples.stopped.withLock { $0 = true }
        for stream in streams { stream.cancel() }

        func pct(_ values: [Double], _ p: Double) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
        }
        let worklist = samples.worklist.withLock { $0 }, frames = samples.frames.withLock { $0 }, offers = samples.offers.withLock { $0 }
        let errors = samples.errors.withLock { $0 }
        let assigned = try await submitted.withLock { $0 }.asyncCount { try await store.record($0)?.state != .failed }
        print(String(format: "portal: %d experts signed in (%d refused, no valid licence), %d streams open; %d studies (%d×%d, %d slices)",
                     ids.count, lapsed, open, assigned, size, size, slices))
        print(String(format: "  GET /api/v1/me/cases   n=%d  p50 %.1f ms  p99 %.1f ms  max %.1f ms", worklist.count, pct(worklist, 0.5), pct(worklist, 0.99), worklist.max() ?? 0))
        print(String(format: "  /rendered 512² PNG     n=%d  p50 %.1f ms  p99 %.1f ms  max %.1f ms", frames.count, pct(frames, 0.5), pct(frames, 0.99), frames.max() ?? 0))
        print(String(format: "  offer → stream delay   n=%d  p50 %.0f ms  p99 %.0f ms  max %.0f ms", offers.count, pct(offers, 0.5), pct(offers, 0.99), offers.max() ?? 0))
        if !errors.isEmpty { print("  errors: \(errors)") }
        return ["benchmark": "portal", "experts": ids.count, "refused_lapsed": lapsed, "streams_open": open, "studies": assigned, "size": size, "slices": slices,
                "worklist_n": worklist.count, "worklist_p50_ms": pct(worklist, 0.5), "worklist_p99_ms": pct(worklist, 0.99),
                "rendered_n": frames.count, "rendered_p50_ms": pct(frames, 0.5), "rendered_p99_ms": pct(frames, 0.99),
                "offer_n": offers.count, "offer_p50_ms": pct(offers, 0.5), "offer_p99_ms": pct(offers, 0.99), "offer_max_ms": offers.max() ?? 0,
                "errors": errors]
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    struct Reply {
        var status: Int
        var body: ByteBuffer
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] }
    }

    func send(_ http: HTTPClient, _ method: String, _ url: String, token: String? = nil, body: [String: Any]? = nil, accept: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        if let accept { request.headers.add(name: "Accept", value: accept) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        return Reply(status: Int(response.status.code), body: try await response.body.collect(upTo: 64 << 20))
    }

    /// One expert's event stream: counts the stream as open at its first line, and for every
    /// offer the delay from the router's decision (`time_ms`, the router's clock, same host).
    func listen(_ http: HTTPClient, _ portal: String, token: String, samples: Samples) async {
        var request = HTTPClientRequest(url: portal + "/api/v1/events")
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        do {
            let response = try await http.execute(request, timeout: .seconds(3600))
            guard response.status.code == 200 else { samples.error("events \(response.status.code)"); return }
            var pending = ""
            var counted = false
            var event = ""
            for try await buffer in response.body {
                pending += String(decoding: buffer.readableBytesView, as: UTF8.self)
                while let newline = pending.firstIndex(of: "\n") {
                    let line = String(pending[..<newline])
                    pending = String(pending[pending.index(after: newline)...])
                    if !counted { counted = true; samples.connected.withLock { $0 += 1 } }
                    if line.hasPrefix("event: ") { event = String(line.dropFirst(7)) }
                    if line.hasPrefix("data: "), event == "offer",
                       let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any],
                       let sent = (object["time_ms"] as? NSNumber)?.int64Value {
                        let delay = Double(WallClock.nowMilliseconds() - sent)
                        samples.offers.withLock { $0.append(delay) }
                    }
                }
                if samples.stopped.withLock({ $0 }) { break }
            }
        } catch {
            if !samples.stopped.withLock({ $0 }) { samples.error("events stream: \(type(of: error))") }
        }
    }

    func submit(store: StudyStore, seed: UInt64, kind: PhantomSpec.Kind) async throws -> StudyUID {
        try await PhantomStudy.submit(store: store, kind: kind, size: size, slices: slices, seed: seed)
    }
}

extension Array {
    func asyncCount(_ predicate: (Element) async throws -> Bool) async rethrows -> Int {
        var count = 0
        for element in self where try await predicate(element) { count += 1 }
        return count
    }
}
