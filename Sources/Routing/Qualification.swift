import Foundation
import RadGridCore

/// A medical licence (执业证书): its number and the instant it lapses (ms; nil = no expiry).
public struct Licence: Sendable, Hashable, Codable {
    public var number: String
    public var expires: Int64?

    public init(number: String, expires: Int64? = nil) {
        self.number = number
        self.expires = expires
    }

    public func isValid(at now: Int64) -> Bool { expires.map { $0 > now } ?? true }

    func validate() throws(RoutingError) {
        guard !number.isEmpty, number.count <= 40,
              number.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "/") }) else {
            throw .invalid("licence: number of 1-40 letters, digits, - or /")
        }
    }
}

/// The rules an expert must meet before any case is offered (online diagnosis needs a valid
/// licence and years of independent practice). Part of `RoutingConfig`.
public struct QualificationRules: Sendable, Hashable, Codable {
    /// No licence on file, or a lapsed one, keeps the expert out of every pool.
    public var requireLicence: Bool
    /// Whole years of independent practice required (0 = no rule).
    public var minPracticeYears: Int

    public static let standard = QualificationRules(requireLicence: true, minPracticeYears: 3)

    public init(requireLicence: Bool, minPracticeYears: Int) {
        self.requireLicence = requireLicence
        self.minPracticeYears = minPracticeYears
    }

    public func validate() throws(RoutingError) {
        guard (0...50).contains(minPracticeYears) else { throw .invalid("qualificationRules.minPracticeYears: must be 0...50") }
    }
}

/// Why an expert may not read at all right now, whatever the case. Stable codes: they appear in
/// explanations, the API and the audit.
public enum Disqualification: String, Sendable, Hashable, Codable, CaseIterable {
    case licenceMissing = "licence_missing"
    case licenceExpired = "licence_expired"
    case practiceYears = "practice_years"
    case practiceUnknown = "practice_unknown"
    case suspended

    public var explanation: String {
        switch self {
        case .licenceMissing: "no licence on file"
        case .licenceExpired: "licence expired"
        case .practiceYears: "fewer years of independent practice than the rule requires"
        case .practiceUnknown: "start of independent practice not on file"
        case .suspended: "suspended"
        }
    }
}

extension Expert {
    /// The rules this expert fails at `now` (empty = qualified), and when that answer next
    /// changes on its own (a licence lapsing, a practice anniversary), if ever.
    public func qualification(at now: Int64, rules: QualificationRules) -> (failures: [Disqualification], changesAt: Int64?) {
        var failures: [Disqualification] = []
        var change: Int64?
        func consider(_ t: Int64) { if t > now { change = min(change ?? t, t) } }
        if suspended { failures.append(.suspended) }
        if rules.requireLicence {
            if let licence {
                if !licence.isValid(at: now) { failures.append(.licenceExpired) } else if let expires = licence.expires { consider(expires) }
            } else {
                failures.append(.licenceMissing)
            }
        }
        if rules.minPracticeYears > 0 {
            if let since = practiceSince {
                let qualifiesFrom = Self.addingYears(rules.minPracticeYears, to: since)
                if qualifiesFrom > now { failures.append(.practiceYears); consider(qualifiesFrom) }
            } else {
                failures.append(.practiceUnknown)
            }
        }
        return (failures, change)
    }

    /// Whole years of independent practice at `now` (nil when unknown).
    public func practiceYears(at now: Int64) -> Int? {
        guard let since = practiceSince, since <= now else { return practiceSince == nil ? nil : 0 }
        var years = 0
        while Self.addingYears(years + 1, to: since) <= now { years += 1 }
        return years
    }

    static func addingYears(_ years: Int, to ms: Int64) -> Int64 {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let date = Date(timeIntervalSince1970: Double(ms) / 1000)
        guard let later = calendar.date(byAdding: .year, value: years, to: date) else { return ms }
        return Int64((later.timeIntervalSince1970 * 1000).rounded())
    }

    /// True when a suspension (from QC, per subspecialty) covers `specialty`: suspended for
    /// `CT/head/neuro` keeps the expert out of that pool but not out of `CT/head`.
    public func isSuspended(for specialty: Specialty) -> Bool {
        suspendedSpecialties.contains { specialty.covers($0) }
    }
}
