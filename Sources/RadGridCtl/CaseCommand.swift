import ArgumentParser
import Foundation
import GridContract
import RadGridCore
import RedisClient
import Routing

/// `radgridctl case ...`: expert actions on routed cases (the HTTP API comes later).
struct CaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "case",
        abstract: "Submit, accept, decline, complete and inspect routed cases.",
        subcommands: [Submit.self, Accept.self, Decline.self, Complete.self, Release.self, Cancel.self, Show.self, Explain.self]
    )

    struct Result: Codable {
        var caseID: String
        var action: String
        var outcome: String
        var expert: String?
    }

    static func report(_ result: Result, json: Bool) throws {
        if json { print(try RoutingOutput.json(result)) } else {
            print("\(result.caseID): \(result.action) -> \(result.outcome)" + (result.expert.map { " (\($0))" } ?? ""))
        }
    }

    static func describe(_ outcome: RouteOutcome) -> (String, String?) {
        switch outcome {
        case .assigned(let expert): return ("assigned", expert)
        case .waiting: return ("waiting", nil)
        case .duplicate(let state): return ("duplicate:\(state)", nil)
        case .skipped(let state): return ("unchanged:\(state)", nil)
        }
    }

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a case and route it (or put it on the intake stream).")
        @OptionGroup var options: RouterConnectionOptions
        @Option(help: "Case id (opaque; never an accession number or patient id).") var id: String
        @Option(help: "Specialty such as CT/head/neuro (else derived from --modality and --body-part).") var specialty: String?
        @Option(help: "DICOM modality.") var modality: String?
        @Option(help: "DICOM body part examined.") var bodyPart: String?
        @Option(help: "Number of series.") var series: Int = 1
        @Option(help: "Pre-screen finding code (repeatable).") var finding: [String] = []
        @Option(help: "Sending site.") var site: String
        @Option(help: "Region of the site.") var region: String?
        @Option(help: "stat, urgent or routine.") var priority: String = "routine"
        @Option(help: "Work units (else from the modality and series count).") var weight: Int?
        @Flag(help: "Publish on the intake stream for a router daemon instead of routing here.") var viaIntake = false
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router(actor: AdminAudit.operatorName)
            defer { router.redis.shutdown() }
            guard let priority = Priority(name: priority) else { throw ValidationError("--priority must be stat, urgent or routine") }
            var request: CaseRequest
            if let specialty {
                let spec = try Specialty(specialty)
                request = CaseRequest(id: id, specialty: spec, site: site, region: region, priority: priority,
                                      weight: weight ?? router.config.weights.weight(modality: spec.modality, seriesCount: series))
            } else {
                guard let modality, let bodyPart else { throw ValidationError("give --specialty, or --modality and --body-part") }
                request = try CaseRequest.derive(id: id, modality: modality, bodyPart: bodyPart, seriesCount: series, findings: finding,
                                                 site: site, region: region, priority: priority, config: router.config)
                if let weight { request.weight = weight }
            }
            if viaIntake {
                let entry = try await router.enqueueCase(request)
                try CaseCommand.report(Result(caseID: id, action: "enqueue", outcome: "intake:\(entry)", expert: nil), json: json)
                return
            }
            let (outcome, expert) = CaseCommand.describe(try await router.submitCase(request))
            try CaseCommand.report(Result(caseID: id, action: "submit", outcome: outcome, expert: expert), json: json)
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept an offered case.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Option(help: "The expert acting.") var expert: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            try await router.accept(caseID: caseID, expert: expert)
            try CaseCommand.report(Result(caseID: caseID, action: "accept", outcome: "accepted", expert: expert), json: json)
        }
    }

    struct Decline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline a case with a reason; it is routed to someone else.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Option(help: "The expert acting.") var expert: String
        @Option(help: "Reason: \(DeclineReason.allCases.map(\.rawValue).joined(separator: ", ")).") var reason: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            guard let code = DeclineReason(rawValue: reason) else {
                throw ValidationError("--reason must be one of \(DeclineReason.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let router = try options.router()
            defer { router.redis.shutdown() }
            let (outcome, next) = CaseCommand.describe(try await router.decline(caseID: caseID, expert: expert, reason: code))
            try CaseCommand.report(Result(caseID: caseID, action: "decline", outcome: "declined, now \(outcome)", expert: next), json: json)
        }
    }

    struct Complete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Complete an accepted case with a report reference.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Option(help: "The expert acting.") var expert: String
        @Option(help: "Report reference (opaque id).") var report: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            try await router.complete(caseID: caseID, expert: expert, reportReference: report)
            try CaseCommand.report(Result(caseID: caseID, action: "complete", outcome: "completed", expert: expert), json: json)
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Hand back a case (e.g. end of shift); it is routed again.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Option(help: "The expert acting.") var expert: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            let (outcome, next) = CaseCommand.describe(try await router.release(caseID: caseID, expert: expert))
            try CaseCommand.report(Result(caseID: caseID, action: "release", outcome: "released, now \(outcome)", expert: next), json: json)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a case (coordinator).")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            try await router.cancel(caseID: caseID)
            try CaseCommand.report(Result(caseID: caseID, action: "cancel", outcome: "cancelled", expert: nil), json: json)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a case and its routing history.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            guard let info = try await router.caseInfo(caseID) else { throw RoutingError("routing.notFound", "case \(caseID) does not exist") }
            if json { print(try RoutingOutput.json(info)); return }
            print("""
            case:        \(info.id)
            state:       \(info.state)\(info.escalated ? " (escalated)" : "")
            expert:      \(info.expert ?? "-")
            specialty:   \(info.specialty) (level \(info.level))
            site:        \(info.site)\(info.region.map { " / " + $0 } ?? "")
            priority:    \(info.priority)\(info.effectivePriority != info.priority ? " (aged to \(info.effectivePriority))" : "")
            weight:      \(info.weight) units
            submitted:   \(RoutingOutput.time(info.submitted))
            deadline:    \(RoutingOutput.time(info.deadline))
            offers:      \(info.offers), declines \(info.declines)\(info.excluded.isEmpty ? "" : ", excluded " + info.excluded.joined(separator: ","))
            """)
        }
    }
}

extension CaseCommand {
    struct Explain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Why a case went to whom: each routing decision's candidates, and what keeps every expert of its specialty from it.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var caseID: String
        @Flag(help: "Also list the experts for whom nothing stands in the way.") var all = false
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            guard let explanation = try await router.explain(caseID: caseID) else {
                throw RoutingError("routing.notFound", "case \(caseID) does not exist")
            }
            if json { print(try RoutingOutput.json(explanation)); return }
            print("case \(explanation.caseID) (\(explanation.kind.rawValue)): \(explanation.specialty) level \(explanation.level), site \(explanation.site)"
                  + (explanation.region.map { " / " + $0 } ?? "") + ", \(explanation.state)" + (explanation.expert.map { ", held by " + $0 } ?? ""))
            print("rules: licence \(explanation.rules.requireLicence ? "required" : "not required"), at least \(explanation.rules.minPracticeYears) years of independent practice")
            for (index, decision) in explanation.decisions.enumerated() {
                print("decision \(index + 1) at \(RoutingOutput.time(decision.at)): \(decision.outcome)\(decision.expert.map { " to " + $0 } ?? ""), pools \(decision.pools.joined(separator: ", ")), \(decision.scanned) scanned")
                for candidate in decision.candidates { print("  \(candidate.expert)  \(candidate.reason)") }
            }
            if explanation.decisionsMade > explanation.decisions.count {
                print("(\(explanation.decisionsMade) decisions made; the last slot holds the latest)")
            }
            let shown = explanation.roster.filter { all || $0.reasons != ["eligible"] }
            let eligible = explanation.roster.count - explanation.roster.filter { $0.reasons != ["eligible"] }.count
            print("roster: \(explanation.roster.count) experts hold the specialty, \(eligible) could take it now")
            for entry in shown { print("  \(entry.expert)  \(entry.reasons.joined(separator: ", "))") }
        }
    }
}

extension RadGridCtlCommand {
    /// Runs the CLI through ArgumentParser's async entry point. From `main.swift` in another
    /// module, `await RadGridCtlCommand.main()` resolves to the synchronous `main()`, which
    /// refuses async subcommands.
    public static func runAsync() async {
        await (self as any AsyncParsableCommand.Type).main()
    }
}
