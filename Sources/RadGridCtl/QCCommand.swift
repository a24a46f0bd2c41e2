import ArgumentParser
import Audit
import Foundation
import Logging
import QualityControl
import RadGridCLI
import RadGridCore
import RedisClient
import Routing
import StudyStore

/// `radgridctl qc ...`: the peer-review queues, one review, per-expert figures, arbitration.
struct QCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qc",
        abstract: "Quality control: second reads, arbitration, per-expert figures.",
        subcommands: [Queue.self, Show.self, Stats.self, Arbitrate.self, Unflag.self]
    )

    struct Options: ParsableArguments {
        @OptionGroup var router: RouterConnectionOptions
        @Option(help: "QC policy JSON (see Ops/qc.json); defaults built in.") var qcPolicy: String?

        func secondReads() throws -> SecondReads {
            let router = try router.router(actor: AdminAudit.operatorName)
            let policy = try qcPolicy.map { try QCPolicy.load(path: $0) } ?? .standard
            let prefix = self.router.redis.keyPrefix
            return SecondReads(store: StudyStore(client: router.redis, prefix: prefix), router: router,
                               qc: QCStore(client: router.redis, prefix: prefix), policy: policy, logger: Logger(label: "radgridctl.qc"))
        }
    }

    static func line(_ review: QCReview) -> String {
        let score = review.finalScore.map { "final \($0.rawValue)" } ?? review.score.map { "scored \($0.rawValue)" } ?? "-"
        return "\(review.caseID)  \(review.state.rawValue)  \(review.modality)  first \(review.firstReader)  second \(review.reviewer ?? "-")  \(score)  reasons \(review.reasons.joined(separator: ","))"
    }

    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Open second reads and the arbitration queue.")
        @OptionGroup var options: Options
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let reads = try options.secondReads()
            defer { reads.router.redis.shutdown() }
            let open = try await reads.qc.openReviews()
            if json {
                print(try RoutingOutput.json(["reading": open.filter { $0.state == .reading }, "arbitration": open.filter { $0.state == .arbitration }]))
                return
            }
            let infos = try await reads.router.caseInfos(open.map(\.reviewCaseID))
            print("\(open.filter { $0.state == .reading }.count) being read again, \(open.filter { $0.state == .arbitration }.count) awaiting arbitration")
            for (review, info) in zip(open, infos) {
                let routing = info.map { " (second read \($0.state)\($0.expert.map { " by " + $0 } ?? ""))" } ?? ""
                print(QCCommand.line(review) + routing)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One review: reasons, readers, scores, comments.")
        @OptionGroup var options: Options
        @Argument(help: "The first read's case id.") var caseID: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let reads = try options.secondReads()
            defer { reads.router.redis.shutdown() }
            guard let review = try await reads.qc.review(caseID) else { throw QCError("qc.unknown", "QC has no record of case \(caseID)") }
            if json { print(try RoutingOutput.json(review)); return }
            print("""
            case:          \(review.caseID) (second read \(review.reviewCaseID))
            study:         \(review.study)
            state:         \(review.state.rawValue)
            reasons:       \(review.reasons.isEmpty ? "-" : review.reasons.joined(separator: ", "))
            first reader:  \(review.firstReader)\(review.firstReaderHome.map { " (home \($0))" } ?? "")
            signed:        \(RoutingOutput.time(review.signedAt))
            second reader: \(review.reviewer ?? "-")\(review.scoredAt.map { " at \(RoutingOutput.time($0))" } ?? "")
            score:         \(review.score.map { "\($0.rawValue): \($0.meaning)" } ?? "-")
            comment:       \(review.comment ?? "-")
            arbiter:       \(review.arbiter ?? "-")
            final:         \(review.finalScore.map { "\($0.rawValue): \($0.meaning)" } ?? "-")
            """)
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Per-expert figures: reads, reviews, scores, discrepancy rate, flags.")
        @OptionGroup var options: Options
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let reads = try options.secondReads()
            defer { reads.router.redis.shutdown() }
            let figures = try await reads.qc.figures(policy: reads.policy)
            if json { print(try RoutingOutput.json(figures)); return }
            let scores = RadpeerScore.allCases.map(\.rawValue)
            print("EXPERT        READS  REVIEWS  " + scores.map { $0.padding(toLength: 5, withPad: " ", startingAt: 0) }.joined() + "RATE    FLAG")
            for f in figures {
                let counts = scores.map { String(f.byScore[$0] ?? 0).padding(toLength: 5, withPad: " ", startingAt: 0) }.joined()
                print(f.expert.padding(toLength: 14, withPad: " ", startingAt: 0) + String(f.reads).padding(toLength: 7, withPad: " ", startingAt: 0)
                      + String(f.reviews).padding(toLength: 9, withPad: " ", startingAt: 0) + counts
                      + String(format: "%.3f", f.discrepancyRate).padding(toLength: 8, withPad: " ", startingAt: 0) + (f.flagged ? "flagged" : ""))
            }
            let reviews = figures.reduce(0) { $0 + $1.reviews }
            print("\(figures.count) experts, \(figures.reduce(0) { $0 + $1.reads }) reads, \(reviews) reviews closed; flag at \(reads.policy.flag.discrepancyRate) over \(reads.policy.flag.minReviews)+ reviews (scores \(reads.policy.flag.scores.map(\.rawValue).joined(separator: ",")))")
        }
    }

    struct Arbitrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Settle a review awaiting arbitration with the final score (qc role).")
        @OptionGroup var options: Options
        @Argument(help: "The first read's case id.") var caseID: String
        @Option(help: "Final RADPEER score: 1, 2a, 2b, 3a or 3b.") var score: String
        @Option(help: "The arbiter's id (a qc-role reader).") var arbiter: String
        @Option(help: "Comment.") var comment = ""

        func run() async throws {
            guard let parsed = RadpeerScore(rawValue: score) else { throw ValidationError("--score must be 1, 2a, 2b, 3a or 3b") }
            let reads = try options.secondReads()
            defer { reads.router.redis.shutdown() }
            let review = try await reads.arbitrate(caseID: caseID, arbiter: arbiter, score: parsed, comment: comment)
            print(QCCommand.line(review))
        }
    }

    struct Unflag: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear an expert's QC flag (a suspension is lifted with experts import).")
        @OptionGroup var options: Options
        @Argument var expert: String

        func run() async throws {
            let reads = try options.secondReads()
            defer { reads.router.redis.shutdown() }
            print(try await reads.qc.unflag(expert, actor: AuditActor(.admin, AdminAudit.operatorName)) ? "unflagged \(expert)" : "\(expert) was not flagged")
        }
    }
}
