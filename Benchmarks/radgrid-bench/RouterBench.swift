import ArgumentParser
import Collections
import Foundation
import GridContract
import QualityControl
import RadGridCore
import RedisClient
import Routing
import Synchronization

/// `radgrid-bench router`: (a) decision latency through Redis with 600 and 10,000 experts,
/// (b) a seeded discrete-event simulation of a staffed period driving the real scripts with
/// a virtual clock. The last line with `--json` is one JSON object.
struct RouterBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "router", abstract: "Expert router: decision latency and workload simulation.")

    @Option(help: "Redis URL (use a private redis-server; keys go under a fresh prefix and are deleted).")
    var redis: String?
    @Option(help: "Seed for rosters, arrivals and service times.") var seed: UInt64 = 42
    @Option(help: "Timed decisions per roster size.") var decisions: Int = 5000
    @Option(help: "Roster sizes for the latency run.") var sizes: [Int] = [600, 10_000]
    @Option(help: "Experts in the simulation.") var simExperts: Int = 600
    @Option(help: "Simulated hours.") var simHours: Double = 4
    @Option(help: "Offered load as a fraction of reading capacity.") var load: Double = 0.85
    @Option(help: "Routing policy JSON for the simulation (default: built in, = Ops/routing.json).") var routingConfig: String?
    @Option(help: "QC: share of reads drawn at random for a second read.") var qcRate: Double = 0.05
    @Option(help: "QC: share of first reads seeded wrong (a discrepancy a second reader should find).") var seededWrong: Double = 0.03
    @Option(help: "QC: chance a second reader finds a seeded discrepancy.") var qcDetect: Double = 0.9
    @Flag(help: "Skip the simulation.") var noSim = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() async throws {
        let client = try RedisClient(url: RedisEndpoint.resolve(option: redis))
        defer { client.shutdown() }
        var result: [String: Any] = ["seed": seed]
        for size in sizes {
            let figures = try await latency(client: client, size: size)
            print("latency  experts=\(size)  decisions=\(decisions)  p50=\(fmt(figures.p50)) ms  p99=\(fmt(figures.p99)) ms  max=\(fmt(figures.max)) ms  assigned=\(figures.assigned)  server script mean=\(fmt(figures.serverMicros / 1000)) ms")
            result["p50_ms_\(size)"] = figures.p50
            result["p99_ms_\(size)"] = figures.p99
            result["server_script_mean_ms_\(size)"] = figures.serverMicros / 1000
        }
        if !noSim {
            var qc = QCPolicy.standard
            qc.samplingRate = ["default": qcRate]
            qc.firstCases = 0  // the simulated experts are established: their first reads are behind them
            let routing = try routingConfig.map { try RoutingConfig.load(path: $0) } ?? .standard
            let sim = try await RouterSimulation(client: client, seed: seed, experts: simExperts, hours: simHours, load: load, routing: routing,
                                                 qc: qc, seededWrong: seededWrong, qcDetect: qcDetect).run()
            sim.printTable()
            for (key, value) in sim.json { result[key] = value }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    func fmt(_ value: Double) -> String { String(format: "%.3f", value) }

    /// Times `decisions` submit decisions (the assign script's round trip) against a roster
    /// of `size`, completing old cases to keep experts at moderate load.
    func latency(client: RedisClient, size: Int) async throws -> (p50: Double, p99: Double, max: Double, assigned: Int, serverMicros: Double) {
        let prefix = "bench\(UInt32.random(in: 0...UInt32.max)):"
        defer { Task { try? await RouterBenchSupport.deleteKeys(client: client, prefix: prefix) } }
        let router = ExpertRouter(redis: client, prefix: KeyPrefix(prefix), actor: "bench")
        var experts = RosterGenerator.generate(count: size, seed: seed)
        for index in experts.indices { experts[index].shifts = [] }
        try await router.upsertExperts(experts, presence: .online, heartbeatUntil: router.now + 3_600_000)
        try await client.send("CONFIG", "RESETSTAT")
        var rng = SeededGenerator(seed: seed &+ UInt64(size))
        var open: Deque<(String, String)> = []
        var samples: [Double] = []
        samples.reserveCapacity(decisions)
        var assigned = 0
        let warmup = min(500, decisions / 5)
        for index in 0..<(decisions + warmup) {
            let request = RouterBenchSupport.demand(experts: experts, id: "L\(index)", rng: &rng)
            let (outcome, nanos) = try await router.submitCaseTimed(request)
            if index >= warmup {
                samples.append(Double(nanos) / 1e6)
                if outcome.expert != nil { assigned += 1 }
            }
            if let expert = outcome.expert { open.append((request.id, expert)) }
            // Keep about one open case per expert: complete the oldest.
            while open.count > size {
                let (caseID, expert) = open.removeFirst()
                try await router.accept(caseID: caseID, expert: expert)
                try await router.complete(caseID: caseID, expert: expert, reportReference: "R")
            }
        }
        samples.sort()
        func pct(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
        // Server-side mean per EVALSHA (all router scripts of this run), free of client scheduling noise.
        let stats = try await client.send("INFO", "commandstats").string ?? ""
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_evalsha:") } ?? ""
        let micros = line.split(separator: ",").first { $0.hasPrefix("usec_per_call=") }.flatMap { Double($0.dropFirst(14)) } ?? 0
        return (pct(0.5), pct(0.99), samples.last ?? 0, assigned, micros)
    }
}

enum RouterBenchSupport {
    static func deleteKeys(client: RedisClient, prefix: String) async throws {
        var cursor = "0"
        repeat {
            let reply = try await client.send("SCAN", RedisArgument(cursor), "MATCH", RedisArgument(prefix + "*"), "COUNT", "1000")
            guard let parts = reply.array, parts.count == 2 else { return }
            cursor = parts[0].string ?? "0"
            let keys = (parts[1].array ?? []).compactMap { $0.string }
            if !keys.isEmpty { try await client.send(["UNLINK"] + keys.map { RedisArgument($0) }) }
        } while cursor != "0"
    }

    static let modalityMinutes: [String: Double] = ["CR": 3, "DX": 3, "US": 6, "MG": 5, "CT": 10, "MR": 14, "NM": 12, "PT": 15]

    /// A case the roster can read: a random expert's specialty at a site they cover, so
    /// demand follows supply in aggregate (not per expert).
    static func demand(experts: [Expert], id: String, rng: inout SeededGenerator, now: Int64 = 0) -> CaseRequest {
        let expert = experts.randomElement(using: &rng)!
        let specialty = expert.specialties.randomElement(using: &rng)!
        let credential = expert.credentials.randomElement(using: &rng)!
        let site: String
        if credential.scope.hasPrefix("region:") {
            let region = String(credential.scope.dropFirst(7))
            let sites = (1...60).map(RosterGenerator.site).filter { RosterGenerator.region(ofSite: $0) == region }
            site = sites.randomElement(using: &rng)!
        } else {
            site = credential.scope
        }
        let roll = Int.random(in: 0..<100, using: &rng)
        let priority: Priority = roll < 10 ? .stat : (roll < 35 ? .urgent : .routine)
        let weight = WeightTable.standard.weight(modality: specialty.modality, seriesCount: Int.random(in: 1...8, using: &rng))
        return CaseRequest(id: id, specialty: specialty, site: site, region: RosterGenerator.region(ofSite: site), priority: priority, weight: weight)
    }
}

final class SimClock: Sendable {
    private let value: Mutex<Int64>
    init(_ start: Int64) { value = Mutex(start) }
    var now: Int64 { value.withLock { $0 } }
    func set(_ ms: Int64) { value.withLock { $0 = ms } }
}

/// Discrete-event simulation: Poisson arrivals at `load` of the experts' reading capacity,
/// exponential reading times by modality, each expert reading one case at a time (STAT
/// first), 3 % declines, 1 % ignored offers. Routing runs through the real scripts. QC: a
/// share of first reads is seeded wrong; reads are drawn for a second read at the policy's
/// random rate, and a wrong read of a STAT case (the pre-screen's critical finding not
/// reported) always; second reads are routed like any case (another hospital than the first
/// reader's, never the first reader) and take expert time; a second reader finds a seeded
/// discrepancy with `qcDetect`.
struct RouterSimulation {
    let client: RedisClient
    let seed: UInt64
    let expertCount: Int
    let hours: Double
    let load: Double
    let routing: RoutingConfig
    let qc: QCPolicy
    let seededWrong: Double
    let qcDetect: Double

    init(client: RedisClient, seed: UInt64, experts: Int, hours: Double, load: Double, routing: RoutingConfig, qc: QCPolicy, seededWrong: Double, qcDetect: Double) {
        self.routing = routing
        self.client = client
        self.seed = seed
        self.expertCount = experts
        self.hours = hours
        self.load = load
        self.qc = qc
        self.seededWrong = seededWrong
        self.qcDetect = qcDetect
    }

    struct Event: Comparable {
        enum Kind { case arrival, finish(Int), tick }
        var time: Int64
        var seq: Int
        var kind: Kind
        static func < (a: Event, b: Event) -> Bool { (a.time, a.seq) < (b.time, b.seq) }
        static func == (a: Event, b: Event) -> Bool { a.time == b.time && a.seq == b.seq }
    }

    struct SimCase {
        var request: CaseRequest
        var submitted: Int64
        var serviceMs: Int64
        var started: Int64?
        /// A second read: the first read's case index.
        var reviewOf: Int?
        /// A first read seeded wrong (set when it is read).
        var wrong = false
        var reader: String?
    }

    struct Reader {
        var queue: [Int] = []
        var current: Int?
        var busyMs: Int64 = 0
        var reviewBusyMs: Int64 = 0
    }

    struct Report {
        var cases = 0
        var started = 0
        var waits: [Priority: [Double]] = [:]
        var utilisation: [Double] = []
        var credentialViolations = 0
        var eligibilityViolations = 0
        var capacityViolations = 0
        var doubleAssignments = 0
        var offers = 0, declines = 0, timeouts = 0, escalations = 0, widened = 0, aged = 0
        /// Received → accepted, minutes, first reads by priority.
        var accepts: [Priority: [Double]] = [:]
        var qcSampled = 0, qcReviews = 0, qcSeeded = 0, qcSeededSampled = 0, qcCaught = 0, qcViolations = 0
        var busyMs: Int64 = 0, reviewBusyMs: Int64 = 0
        var qcShare: Double { busyMs > 0 ? Double(reviewBusyMs) / Double(busyMs) : 0 }

        func pct(_ values: [Double], _ p: Double) -> Double {
            guard !values.isEmpty else { return 0 }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
        }

        var meanUtilisation: Double { utilisation.isEmpty ? 0 : utilisation.reduce(0, +) / Double(utilisation.count) }
        var maxUtilisation: Double { utilisation.max() ?? 0 }

        func printTable() {
            print("simulation  cases=\(cases)  started=\(started)  offers=\(offers)  declines=\(declines)  timeouts=\(timeouts)  widened=\(widened)  aged=\(aged)  escalations=\(escalations)")
            for priority in Priority.allCases {
                let w = waits[priority] ?? []
                print("  wait \(priority.description.padding(toLength: 8, withPad: " ", startingAt: 0)) n=\(w.count)  p50=\(String(format: "%.1f", pct(w, 0.5))) min  p95=\(String(format: "%.1f", pct(w, 0.95))) min  max=\(String(format: "%.1f", w.max() ?? 0)) min")
            }
            print("  utilisation mean=\(String(format: "%.3f", meanUtilisation)) max=\(String(format: "%.3f", maxUtilisation)) max/mean=\(String(format: "%.3f", maxUtilisation / max(meanUtilisation, 1e-9)))  p10=\(String(format: "%.3f", pct(utilisation, 0.1))) p50=\(String(format: "%.3f", pct(utilisation, 0.5))) p90=\(String(format: "%.3f", pct(utilisation, 0.9))) p99=\(String(format: "%.3f", pct(utilisation, 0.99)))  ≥0.98: \(utilisation.filter { $0 >= 0.98 }.count)")
            print("  violations credential=\(credentialViolations) eligibility=\(eligibilityViolations) capacity=\(capacityViolations) double=\(doubleAssignments) qc=\(qcViolations)")
            for priority in Priority.allCases {
                let a = accepts[priority] ?? []
                print("  received→accepted \(priority.description.padding(toLength: 8, withPad: " ", startingAt: 0)) n=\(a.count)  p50=\(String(format: "%.1f", pct(a, 0.5))) min  p95=\(String(format: "%.1f", pct(a, 0.95))) min")
            }
            print("  qc  sampled=\(qcSampled) reviews=\(qcReviews) seeded=\(qcSeeded) seeded-sampled=\(qcSeededSampled) caught=\(qcCaught)  share of expert time=\(String(format: "%.3f", qcShare))")
        }

        var json: [String: Any] {
            var p50: [String: Double] = [:], p95: [String: Double] = [:], maxima: [String: Double] = [:]
            for priority in Priority.allCases {
                let w = waits[priority] ?? []
                p50[priority.description] = pct(w, 0.5)
                p95[priority.description] = pct(w, 0.95)
                maxima[priority.description] = w.max() ?? 0
            }
            return [
                "sim_cases": cases, "sim_started": started, "mean_utilisation": meanUtilisation, "max_utilisation": maxUtilisation,
                "max_over_mean_utilisation": maxUtilisation / max(meanUtilisation, 1e-9),
                "credential_violations": credentialViolations, "eligibility_violations": eligibilityViolations,
                "capacity_violations": capacityViolations, "double_assignments": doubleAssignments,
                "wait_p50_min": p50, "wait_p95_min": p95, "wait_max_min": maxima,
                "declines": declines, "accept_timeouts": timeouts, "escalations": escalations,
                "stat_p95_accept_min": pct(accepts[.stat] ?? [], 0.95),
                "accept_p95_min": Dictionary(uniqueKeysWithValues: Priority.allCases.map { ($0.description, pct(accepts[$0] ?? [], 0.95)) }),
                "qc_sampled": qcSampled, "qc_reviews": qcReviews, "qc_seeded": qcSeeded, "qc_seeded_sampled": qcSeededSampled,
                "qc_caught": qcCaught, "qc_violations": qcViolations, "qc_share_of_expert_time": qcShare,
            ]
        }
    }

    func run() async throws -> Report {
        let prefix = "sim\(UInt32.random(in: 0...UInt32.max)):"
        defer { Task { try? await RouterBenchSupport.deleteKeys(client: client, prefix: prefix) } }
        let start = RosterGenerator.baseTime + 300 * 86_400_000
        let end = start + Int64(hours * 3_600_000)
        // Utilisation is measured after a warm-up (a fifth of the run, at most 30 minutes).
        let warm = start + min(1_800_000, (end - start) / 5)
        let clock = SimClock(start)
        let router = ExpertRouter(redis: client, prefix: KeyPrefix(prefix), config: routing, actor: "sim", clock: { clock.now })
        var rng = SeededGenerator(seed: seed)
        var experts = RosterGenerator.generate(count: expertCount, seed: seed)
        // A staffed period: everyone on shift; 1 % of credentials lapse during the run.
        for index in experts.indices {
            experts[index].shifts = []
            for c in experts[index].credentials.indices where Int.random(in: 0..<100, using: &rng) == 0 {
                experts[index].credentials[c].expires = start + Int64.random(in: 0..<(end - start), using: &rng)
            }
        }
        try await router.upsertExperts(experts, presence: .online, heartbeatUntil: end + 86_400_000)
        let index = Dictionary(uniqueKeysWithValues: experts.enumerated().map { ($1.id, $0) })

        // Arrival rate from the mean reading time of the demand mix.
        var probe = SeededGenerator(seed: seed &+ 1)
        var meanMinutes = 0.0
        for n in 0..<5000 {
            let request = RouterBenchSupport.demand(experts: experts, id: "p\(n)", rng: &probe)
            meanMinutes += RouterBenchSupport.modalityMinutes[request.specialty.modality] ?? 8
        }
        meanMinutes /= 5000
        let arrivalsPerMs = load * Double(expertCount) / (meanMinutes * 60_000)

        var events = Heap<Event>()
        var seq = 0
        func schedule(_ time: Int64, _ kind: Event.Kind) { seq += 1; events.insert(Event(time: time, seq: seq, kind: kind)) }
        func exponential(_ mean: Double) -> Double { -mean * log(1 - Double.random(in: 0..<1, using: &rng)) }
        schedule(start, .arrival)
        schedule(start + 60_000, .tick)

        var cases: [SimCase] = []
        var caseIndex: [String: Int] = [:]
        var readers = Array(repeating: Reader(), count: experts.count)
        var report = Report()
        var expertLoad: [String: Int] = [:]
        var holder: [String: String] = [:]
        var excluded: [String: Set<String>] = [:]
        var lastAudit = "-"

        func startNext(_ e: Int, at now: Int64) {
            guard readers[e].current == nil, !readers[e].queue.isEmpty else { return }
            // STAT first, then by submission.
            let pick = readers[e].queue.indices.min { a, b in
                let ca = cases[readers[e].queue[a]], cb = cases[readers[e].queue[b]]
                return (ca.request.priority, ca.submitted) < (cb.request.priority, cb.submitted)
            }!
            let c = readers[e].queue.remove(at: pick)
            readers[e].current = c
            cases[c].started = now
            let finish = now + cases[c].serviceMs
            let busy = max(0, min(finish, end) - max(now, warm))
            readers[e].busyMs += busy
            if cases[c].reviewOf == nil {
                report.started += 1
                report.waits[cases[c].request.priority, default: []].append(Double(now - cases[c].submitted) / 60_000)
            } else {
                readers[e].reviewBusyMs += busy
            }
            schedule(finish, .finish(e))
        }

        // Reads new audit entries: checks every offer against the roster, and lets the
        // offered expert decline (3 %), ignore (1 %, first offers only) or accept.
        func followAudit(now: Int64) async throws {
            while true {
                let entries = try await router.auditEntries(after: lastAudit, count: 2000)
                guard let last = entries.last else { return }
                lastAudit = last.id
                for entry in entries {
                    let d = entry.details
                    switch entry.action {
                    case "offer":
                        report.offers += 1
                        let expertID = d["expert"] ?? ""
                        guard let e = index[expertID], let c = caseIndex[entry.caseID] else { report.eligibilityViolations += 1; continue }
                        let expert = experts[e]
                        let request = cases[c].request
                        let weight = Int(d["weight"] ?? "") ?? 0
                        if holder[entry.caseID] != nil { report.doubleAssignments += 1 }
                        let limit = d["eprio"] == "0" ? Double(expert.capacity) * (1 + routing.statCapacityMargin) : Double(expert.capacity)
                        if Double(expertLoad[expertID, default: 0] + weight) > limit + 1e-9 { report.capacityViolations += 1 }
                        let scopes = [request.site, "region:" + (request.region ?? "")]
                        if !expert.credentials.contains(where: { scopes.contains($0.scope) && $0.isValid(at: entry.time) }) { report.credentialViolations += 1 }
                        let level = Int(d["level"] ?? "") ?? 0
                        if !expert.qualifies(for: request.specialty.widened(to: level)) || expert.homeSite == request.site
                            || excluded[entry.caseID, default: []].contains(expertID) { report.eligibilityViolations += 1 }
                        if let first = cases[c].reviewOf {
                            // A second read: never the first reader, never from the first reader's hospital.
                            let firstReader = cases[first].reader.flatMap { index[$0] }.map { experts[$0] }
                            if firstReader?.id == expertID || (firstReader?.homeSite != nil && firstReader?.homeSite == expert.homeSite) {
                                report.qcViolations += 1
                            }
                        }
                        holder[entry.caseID] = expertID
                        expertLoad[expertID, default: 0] += weight
                        let roll = Int.random(in: 0..<100, using: &rng)
                        let offers = (excluded[entry.caseID]?.count ?? 0)
                        if roll < 3 && offers < 3 {
                            _ = try await router.decline(caseID: entry.caseID, expert: expertID, reason: .workload)
                        } else if roll == 3 && offers < 1 {
                            continue // ignored; the accept timeout hands it on
                        } else {
                            try await router.accept(caseID: entry.caseID, expert: expertID)
                            if cases[c].reviewOf == nil {
                                report.accepts[request.priority, default: []].append(Double(now - cases[c].submitted) / 60_000)
                            }
                            readers[e].queue.append(c)
                            startNext(e, at: now)
                        }
                    case "decline", "accept_timeout", "complete", "release", "cancel":
                        let expertID = d["expert"] ?? ""
                        expertLoad[expertID, default: 0] -= Int(d["weight"] ?? "") ?? 0
                        holder[entry.caseID] = nil
                        if entry.action == "decline" { report.declines += 1; excluded[entry.caseID, default: []].insert(expertID) }
                        if entry.action == "accept_timeout" { report.timeouts += 1; excluded[entry.caseID, default: []].insert(expertID) }
                    case "escalate", "sla_breach": report.escalations += 1
                    case "widen": report.widened += 1
                    case "age": report.aged += 1
                    default: break
                    }
                }
            }
        }

        while let event = events.popMin() {
            clock.set(event.time)
            let now = event.time
            switch event.kind {
            case .arrival:
                guard now < end else { continue }
                var request = RouterBenchSupport.demand(experts: experts, id: "S\(cases.count)", rng: &rng)
                request.id = "S\(cases.count)"
                let minutes = RouterBenchSupport.modalityMinutes[request.specialty.modality] ?? 8
                caseIndex[request.id] = cases.count
                cases.append(SimCase(request: request, submitted: now, serviceMs: max(30_000, Int64(exponential(minutes * 60_000)))))
                try await router.submitCase(request)
                try await followAudit(now: now)
                schedule(now + max(1, Int64(exponential(1 / arrivalsPerMs))), .arrival)
            case .finish(let e):
                guard let c = readers[e].current else { continue }
                readers[e].current = nil
                try await router.complete(caseID: cases[c].request.id, expert: experts[e].id, reportReference: "R")
                if let first = cases[c].reviewOf {
                    report.qcReviews += 1
                    if cases[first].wrong && Double.random(in: 0..<1, using: &rng) < qcDetect { report.qcCaught += 1 }
                } else {
                    // The report is signed: seeded wrong or not, and whether QC reads it again.
                    cases[c].reader = experts[e].id
                    cases[c].wrong = Double.random(in: 0..<1, using: &rng) < seededWrong
                    if cases[c].wrong { report.qcSeeded += 1 }
                    let request = cases[c].request
                    let drawn = QCSampler.randomlySampled(caseID: request.id, modality: request.specialty.modality, policy: qc)
                    // A wrong read of a STAT case misses the pre-screen's critical finding.
                    let disagreement = !QCSampler.disagreement(aiCritical: request.priority == .stat, reportCritical: request.priority == .stat && !cases[c].wrong,
                                                               policy: qc).isEmpty
                    if drawn || disagreement {
                        report.qcSampled += 1
                        if cases[c].wrong { report.qcSeededSampled += 1 }
                        var review = CaseRequest(id: request.id + QCReview.reviewSuffix, specialty: request.specialty, site: request.site,
                                                 region: request.region, priority: Priority(name: qc.reviewPriority) ?? .routine, weight: request.weight,
                                                 deadline: now + Int64(qc.reviewDeadlineHours) * 3_600_000)
                        review.kind = .review
                        review.excludedExperts = [experts[e].id]
                        review.avoidHomeSite = experts[e].homeSite
                        caseIndex[review.id] = cases.count
                        let minutes = RouterBenchSupport.modalityMinutes[request.specialty.modality] ?? 8
                        cases.append(SimCase(request: review, submitted: now, serviceMs: max(30_000, Int64(exponential(minutes * 60_000))), reviewOf: c))
                        try await router.submitCase(review)
                    }
                }
                try await router.drainWaiting(limit: 500)
                try await followAudit(now: now)
                startNext(e, at: now)
            case .tick:
                try await router.processDueTimers()
                try await followAudit(now: now)
                if now < end { schedule(now + 60_000, .tick) }
            }
            if now >= end, case .tick = event.kind { break }
        }
        report.cases = cases.filter { $0.reviewOf == nil }.count
        report.busyMs = readers.reduce(0) { $0 + $1.busyMs }
        report.reviewBusyMs = readers.reduce(0) { $0 + $1.reviewBusyMs }
        // Cases not started by the end count with their wait so far.
        for simCase in cases where simCase.started == nil && simCase.reviewOf == nil {
            report.waits[simCase.request.priority, default: []].append(Double(end - simCase.submitted) / 60_000)
        }
        report.utilisation = readers.map { Double($0.busyMs) / Double(end - warm) }
        return report
    }
}
