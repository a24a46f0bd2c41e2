import ArgumentParser
import Foundation
import RadGridCore
import RedisClient
import Screening
import StudyStore

/// `radgridctl demo`: pushes a batch of synthetic CT studies through a running grid (the
/// one `radgrid up` described in its env file), shows progress and the final case table.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo", abstract: "Submit demo phantom studies to a running grid and follow them to their experts.")

    @Option(help: "The grid.env written by `radgrid up`.") var env: String
    @Option(help: "Number of studies.") var studies: Int = 8
    @Option(help: "Matrix size of the phantoms.") var size: Int = 128
    @Option(help: "Seconds to wait for every study to reach an expert.") var timeout: Double = 90
    @Option(help: "Work directory for the generated DICOM files.") var work: String?

    struct Plan { var kind: PhantomSpec.Kind; var lesionMM: Double; var priority: String; var viaGateway: Bool }

    func run() async throws {
        guard let text = try? String(contentsOfFile: env, encoding: .utf8) else { throw ValidationError("cannot read \(env)") }
        var vars: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { vars[String(kv[0])] = String(kv[1]) }
        }
        guard let url = vars["REDIS_URL"], let gateway = vars["RADGRID_GATEWAY"], let token = vars["RADGRID_TOKEN"], let site = vars["RADGRID_SITE"] else {
            throw ValidationError("\(env) lacks REDIS_URL / RADGRID_GATEWAY / RADGRID_TOKEN / RADGRID_SITE")
        }
        let prefix = vars["RADGRID_PREFIX"] ?? KeyPrefix.default.value
        let root = work ?? FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-demo-\(getpid())").path
        let kinds: [Plan] = [
            Plan(kind: .head, lesionMM: 14, priority: "routine", viaGateway: true),
            Plan(kind: .chest, lesionMM: 0, priority: "routine", viaGateway: false),
            Plan(kind: .head, lesionMM: 0, priority: "urgent", viaGateway: true),
            Plan(kind: .chest, lesionMM: 18, priority: "routine", viaGateway: false),
            Plan(kind: .head, lesionMM: 0, priority: "routine", viaGateway: false),
            Plan(kind: .chest, lesionMM: 9, priority: "urgent", viaGateway: true),
            Plan(kind: .head, lesionMM: 18, priority: "routine", viaGateway: false),
            Plan(kind: .chest, lesionMM: 0, priority: "bulk", viaGateway: true),
        ]
        print("generating \(studies) phantom studies in \(root)")
        var submissions: [(dir: String, plan: Plan)] = []
        for i in 0..<studies {
            let plan = kinds[i % kinds.count]
            let dir = "\(root)/study-\(i + 1)"
            let generate = try PhantomCommand.parse(["--kind", plan.kind.rawValue, "--lesion-mm", String(plan.lesionMM), "--size", String(size),
                                                     "--slices", plan.kind == .head ? "24" : "40", "--seed", String(1000 + i * 7 + Int(getpid() % 1000) * 100), "--out", dir])
            try generate.run()
            submissions.append((dir, plan))
        }
        let started = Date()
        for (dir, plan) in submissions {
            var args = [dir, "--priority", plan.priority, "--redis", url, "--prefix", prefix]
            args += plan.viaGateway ? ["--gateway", gateway, "--token", token] : ["--site", site]
            print("submit \(dir.split(separator: "/").last!) (\(plan.kind.rawValue), lesion \(Int(plan.lesionMM)) mm, \(plan.priority)) via \(plan.viaGateway ? "STOW-RS" : "redis")")
            let submit = try SubmitCommand.parse(args)
            try await submit.run()
        }
        let client = try RedisClient(url: url)
        defer { client.shutdown() }
        let settled: Set<String> = ["assigned", "accepted", "reported", "failed", "quarantined"]
        var status = try await GridStatus.collect(client: client, prefix: KeyPrefix(prefix), listStudies: true)
        while Date().timeIntervalSince(started) < timeout {
            status = try await GridStatus.collect(client: client, prefix: KeyPrefix(prefix), listStudies: true)
            let list = status.studyList ?? []
            let done = list.filter { settled.contains($0.state) }.count
            let byState = Dictionary(grouping: list, by: \.state).map { "\($0.key) \($0.value.count)" }.sorted().joined(separator: ", ")
            let busy = status.workers.filter(\.alive).map(\.busy).reduce(0, +)
            print(String(format: "[%5.1fs] %d/%d studies with an expert or closed — %@ — workers busy %d, queue depth %d", Date().timeIntervalSince(started), done, list.count,
                         byState, busy, status.queue.lanes.map(\.depth).reduce(0, +)))
            if done == list.count && !list.isEmpty { break }
            try await Task.sleep(for: .seconds(1))
        }
        print("")
        print(status.render())
        let list = status.studyList ?? []
        // What the pre-screen said of each study, and which screener or model said it.
        print("\nPRE-SCREEN (urgency, priority, findings with the screener or model that said so)")
        for study in list.sorted(by: { $0.createdMs < $1.createdMs }) {
            let findings = study.findings ?? []
            print("  \(study.uid.suffix(24))  \(study.urgency.isEmpty ? "-" : study.urgency)  \(study.priority)  \(findings.isEmpty ? "no finding" : findings.joined(separator: "; "))")
        }
        let models = Set(list.flatMap { $0.models ?? [] }).sorted()
        if !models.isEmpty { print("  models: \(models.joined(separator: ", "))") }
        if list.contains(where: { !settled.contains($0.state) }) { throw ValidationError("not every study reached an expert within \(Int(timeout)) s") }
        print(String(format: "\nall %d studies routed in %.1f s (demo files in %@)", list.count, Date().timeIntervalSince(started), root))
    }
}
