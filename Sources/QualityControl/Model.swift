import Crypto
import Foundation
import RadGridCore

/// Errors of quality control: stable codes, messages that name the problem, never patient data.
public struct QCError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    static func invalid(_ message: String) -> QCError { QCError("qc.invalid", message) }
}

/// The ACR RADPEER scale: 1 concur; 2 discrepancy in interpretation not ordinarily expected
/// to be made; 3 discrepancy that should be made most of the time. `a` = unlikely to be
/// clinically significant, `b` = likely to be.
public enum RadpeerScore: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case concur = "1"
    case minorUnlikelySignificant = "2a"
    case minorLikelySignificant = "2b"
    case majorUnlikelySignificant = "3a"
    case majorLikelySignificant = "3b"

    public static func < (a: RadpeerScore, b: RadpeerScore) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public var meaning: String {
        switch self {
        case .concur: "concur with interpretation"
        case .minorUnlikelySignificant: "discrepancy not ordinarily expected to be made; unlikely to be clinically significant"
        case .minorLikelySignificant: "discrepancy not ordinarily expected to be made; likely to be clinically significant"
        case .majorUnlikelySignificant: "discrepancy that should be made most of the time; unlikely to be clinically significant"
        case .majorLikelySignificant: "discrepancy that should be made most of the time; likely to be clinically significant"
        }
    }
}

/// Why a signed read is read again.
public enum QCReason: String, Sendable, Hashable, Codable, CaseIterable {
    /// Drawn at the policy's rate for the modality.
    case random
    /// One of the expert's first N reads on the grid.
    case firstCases = "first_cases"
    /// The pre-screen found something critical and the report is not flagged critical.
    case aiCriticalNotReported = "ai_critical_not_reported"
    /// The report is flagged critical and the pre-screen found nothing critical.
    case reportedCriticalAIMissed = "reported_critical_ai_missed"
    /// The sending site disputes the report.
    case dispute
}

/// The QC policy (`Ops/qc.json`): what is read again, by whom, and when an expert is flagged.
public struct QCPolicy: Sendable, Hashable, Codable {
    /// Share of each expert's reads drawn at random, per modality; `default` for the rest.
    public var samplingRate: [String: Double]
    /// Every report of an expert's first this-many reads is read again (0 = off).
    public var firstCases: Int
    /// Read again when the report and the pre-screen disagree on a critical finding.
    public var aiDisagreement: Bool
    /// Read again when the site disputes the report.
    public var siteDisputes: Bool
    /// Priority and deadline of a second read.
    public var reviewPriority: String
    public var reviewDeadlineHours: Int
    /// Scores that go to arbitration by a qc-role reader before they count.
    public var arbitrationScores: [RadpeerScore]
    /// An expert is flagged when at least `minReviews` final scores are in and the share of
    /// `scores` among them reaches `discrepancyRate`; with `suspend`, they are also suspended
    /// for the subspecialty of the case that crossed it.
    public var flag: Flag
    /// Days a closed review is kept (its audit entries stay in the chain).
    public var retentionDays: Int
    /// Days the record of an unsampled read is kept (for a late dispute).
    public var unsampledRetentionDays: Int

    public struct Flag: Sendable, Hashable, Codable {
        public var minReviews: Int
        public var discrepancyRate: Double
        public var scores: [RadpeerScore]
        public var suspend: Bool

        public init(minReviews: Int, discrepancyRate: Double, scores: [RadpeerScore], suspend: Bool) {
            self.minReviews = minReviews
            self.discrepancyRate = discrepancyRate
            self.scores = scores
            self.suspend = suspend
        }
    }

    public static let standard = QCPolicy(
        samplingRate: ["default": 0.05], firstCases: 10, aiDisagreement: true, siteDisputes: true,
        reviewPriority: "routine", reviewDeadlineHours: 72,
        arbitrationScores: [.minorLikelySignificant, .majorUnlikelySignificant, .majorLikelySignificant],
        flag: Flag(minReviews: 10, discrepancyRate: 0.10,
                   scores: [.minorLikelySignificant, .majorUnlikelySignificant, .majorLikelySignificant], suspend: false),
        retentionDays: 365, unsampledRetentionDays: 30)

    public init(samplingRate: [String: Double], firstCases: Int, aiDisagreement: Bool, siteDisputes: Bool, reviewPriority: String,
                reviewDeadlineHours: Int, arbitrationScores: [RadpeerScore], flag: Flag, retentionDays: Int, unsampledRetentionDays: Int) {
        self.samplingRate = samplingRate
        self.firstCases = firstCases
        self.aiDisagreement = aiDisagreement
        self.siteDisputes = siteDisputes
        self.reviewPriority = reviewPriority
        self.reviewDeadlineHours = reviewDeadlineHours
        self.arbitrationScores = arbitrationScores
        self.flag = flag
        self.retentionDays = retentionDays
        self.unsampledRetentionDays = unsampledRetentionDays
    }

    /// The random share for a modality.
    public func rate(for modality: String) -> Double {
        samplingRate[modality.uppercased()] ?? samplingRate["default"] ?? 0
    }

    public func validate() throws(QCError) {
        guard samplingRate["default"] != nil else { throw .invalid("samplingRate.default: required (the share for modalities not listed)") }
        for (key, rate) in samplingRate where !(0...1).contains(rate) {
            throw .invalid("samplingRate.\(key): must be a fraction 0...1")
        }
        guard (0...10_000).contains(firstCases) else { throw .invalid("firstCases: must be 0...10000") }
        guard ["stat", "urgent", "routine", "bulk"].contains(reviewPriority) else { throw .invalid("reviewPriority: stat, urgent, routine or bulk") }
        guard (1...24 * 90).contains(reviewDeadlineHours) else { throw .invalid("reviewDeadlineHours: must be 1...2160") }
        guard flag.minReviews >= 1 else { throw .invalid("flag.minReviews: at least 1") }
        guard flag.discrepancyRate > 0, flag.discrepancyRate <= 1 else { throw .invalid("flag.discrepancyRate: a fraction in (0, 1]") }
        guard !flag.scores.isEmpty else { throw .invalid("flag.scores: at least one score") }
        guard retentionDays >= 1, unsampledRetentionDays >= 1 else { throw .invalid("retentionDays, unsampledRetentionDays: at least 1") }
    }

    /// Reads and validates a policy file; missing keys take the standard values.
    public static func load(path: String) throws -> QCPolicy {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw QCError("qc.policyUnreadable", "cannot read the QC policy at \(path)")
        }
        return try decode(data)
    }

    public static func decode(_ data: Data) throws -> QCPolicy {
        let policy: QCPolicy
        do { policy = try JSONDecoder().decode(QCPolicy.self, from: data) } catch let error as DecodingError {
            throw QCError.invalid("QC policy: \(Self.describe(error))")
        }
        try policy.validate()
        return policy
    }

    static func describe(_ error: DecodingError) -> String {
        let (path, detail) = error.problem
        let text = path.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
        return (text.isEmpty ? "(top level)" : String(text.drop { $0 == "." })) + ": " + detail
    }

    enum CodingKeys: String, CodingKey {
        case samplingRate, firstCases, aiDisagreement, siteDisputes, reviewPriority, reviewDeadlineHours, arbitrationScores, flag
        case retentionDays, unsampledRetentionDays
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = QCPolicy.standard
        samplingRate = try c.decodeIfPresent([String: Double].self, forKey: .samplingRate) ?? d.samplingRate
        firstCases = try c.decodeIfPresent(Int.self, forKey: .firstCases) ?? d.firstCases
        aiDisagreement = try c.decodeIfPresent(Bool.self, forKey: .aiDisagreement) ?? d.aiDisagreement
        siteDisputes = try c.decodeIfPresent(Bool.self, forKey: .siteDisputes) ?? d.siteDisputes
        reviewPriority = try c.decodeIfPresent(String.self, forKey: .reviewPriority) ?? d.reviewPriority
        reviewDeadlineHours = try c.decodeIfPresent(Int.self, forKey: .reviewDeadlineHours) ?? d.reviewDeadlineHours
        arbitrationScores = try c.decodeIfPresent([RadpeerScore].self, forKey: .arbitrationScores) ?? d.arbitrationScores
        flag = try c.decodeIfPresent(Flag.self, forKey: .flag) ?? d.flag
        retentionDays = try c.decodeIfPresent(Int.self, forKey: .retentionDays) ?? d.retentionDays
        unsampledRetentionDays = try c.decodeIfPresent(Int.self, forKey: .unsampledRetentionDays) ?? d.unsampledRetentionDays
    }
}

/// Decides whether a signed read is read again (the first-N rule is decided in Redis, where
/// the expert's count lives).
public enum QCSampler {
    /// A uniform draw in [0, 1) fixed by the case id: the same case always draws the same, so
    /// a retried signature cannot change the decision, and over many cases the share is the rate.
    public static func draw(caseID: String) -> Double {
        let digest = SHA256.hash(data: Data(("qc-sample|" + caseID).utf8))
        let value = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Double(value >> 11) / Double(1 << 53)
    }

    public static func randomlySampled(caseID: String, modality: String, policy: QCPolicy) -> Bool {
        draw(caseID: caseID) < policy.rate(for: modality)
    }

    /// Disagreement between the pre-screen and the report on a critical finding.
    public static func disagreement(aiCritical: Bool, reportCritical: Bool, policy: QCPolicy) -> [QCReason] {
        guard policy.aiDisagreement else { return [] }
        if aiCritical && !reportCritical { return [.aiCriticalNotReported] }
        if reportCritical && !aiCritical { return [.reportedCriticalAIMissed] }
        return []
    }
}

/// One signed read as QC keeps it, and its second read once sampled.
public struct QCReview: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Hashable, Codable {
        /// Not drawn; kept a while in case the site disputes it.
        case notSampled = "not_sampled"
        /// Waiting for (or being read by) the second reader.
        case reading
        /// Scored 2b/3a/3b (by default): waits for a qc-role reader.
        case arbitration
        case closed
    }

    public var caseID: String
    /// The router case of the second read (`<case>.qc`).
    public var reviewCaseID: String { caseID + QCReview.reviewSuffix }
    public var study: String
    public var firstReader: String
    public var firstReaderHome: String?
    public var modality: String
    public var specialty: String
    public var site: String
    public var region: String?
    public var weight: Int
    public var state: State
    public var reasons: [String]
    public var signedAt: Int64
    public var openedAt: Int64?
    public var reviewer: String?
    public var score: RadpeerScore?
    public var comment: String?
    public var scoredAt: Int64?
    public var arbiter: String?
    public var arbiterComment: String?
    public var finalScore: RadpeerScore?
    public var closedAt: Int64?

    public static let reviewSuffix = ".qc"

    /// The first read's case id for a review case id, nil for other ids.
    public static func readCase(ofReview id: String) -> String? {
        id.hasSuffix(reviewSuffix) ? String(id.dropLast(reviewSuffix.count)) : nil
    }

    enum CodingKeys: String, CodingKey {
        case caseID = "case", study, firstReader = "first_reader", firstReaderHome = "first_reader_home", modality, specialty, site, region
        case weight, state, reasons, signedAt = "signed_at", openedAt = "opened_at", reviewer, score, comment, scoredAt = "scored_at"
        case arbiter, arbiterComment = "arbiter_comment", finalScore = "final_score", closedAt = "closed_at"
    }
}

/// Per-expert QC figures: final scores counted, and the discrepancy rate the flag rule reads.
public struct QCExpertFigures: Sendable, Hashable, Codable {
    public var expert: String
    public var reads: Int
    public var reviews: Int
    public var byScore: [String: Int]
    public var discrepancyRate: Double
    public var flagged: Bool

    enum CodingKeys: String, CodingKey {
        case expert, reads, reviews, byScore = "by_score", discrepancyRate = "discrepancy_rate", flagged
    }
}
