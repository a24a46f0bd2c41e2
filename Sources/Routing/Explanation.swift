import Foundation
import GridContract
import RadGridCore
import RedisClient

/// Why a case went (or did not go) to whom: the decisions the assign script recorded, and
/// every expert holding the case's specialty with what keeps them from it now.
/// `radgridctl case explain ID` prints it; the portal shows it to QC and admins.
public struct RoutingExplanation: Sendable, Codable, Hashable {
    public struct Candidate: Sendable, Codable, Hashable {
        public var expert: String
        /// offered, ranked, full, declined, conflict, same_hospital, credential, unavailable.
        public var reason: String
    }

    /// One run of the assign script on the case.
    public struct Decision: Sendable, Codable, Hashable {
        public var at: Int64
        /// offered | waiting
        public var outcome: String
        public var expert: String?
        public var level: Int
        public var pools: [String]
        public var scanned: Int
        /// In the order the scan met them (lowest load first); an expert met in two pools once.
        public var candidates: [Candidate]
    }

    /// An expert who holds the case's specialty (at its current level) and what keeps them
    /// from it now; `eligible` when nothing does.
    public struct RosterEntry: Sendable, Codable, Hashable {
        public var expert: String
        public var reasons: [String]
    }

    public var caseID: String
    public var kind: CaseKind
    public var specialty: String
    public var site: String
    public var region: String?
    public var level: Int
    public var state: String
    public var expert: String?
    /// Decisions recorded, oldest first (the 20th slot holds the latest past 20).
    public var decisions: [Decision]
    public var decisionsMade: Int
    public var roster: [RosterEntry]
    /// The qualification rules in force when explained.
    public var rules: QualificationRules

    enum CodingKeys: String, CodingKey {
        case caseID = "case", kind, specialty, site, region, level, state, expert, decisions
        case decisionsMade = "decisions_made", roster, rules
    }

    /// Parses one `why<n>` field: `now|outcome|expert|level|scanned|id=reason …`.
    static func decision(_ text: String, specialty: Specialty, site: String, region: String?) -> Decision? {
        let parts = text.split(separator: "|", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, let at = Int64(parts[0]), let level = Int(parts[3]), let scanned = Int(parts[4]) else { return nil }
        var seen = Set<String>()
        var candidates: [Candidate] = []
        for item in parts[5].split(separator: " ") {
            guard let eq = item.firstIndex(of: "=") else { continue }
            let id = String(item[..<eq])
            guard seen.insert(id).inserted else { continue }
            var reason = String(item[item.index(after: eq)...])
            if reason == "ranked" && id == parts[2] { reason = "offered" }
            candidates.append(Candidate(expert: id, reason: reason))
        }
        return Decision(at: at, outcome: parts[1], expert: parts[2].isEmpty ? nil : parts[2], level: level,
                        pools: ExpertRouter.poolNames(specialty: specialty, site: site, region: region, level: level),
                        scanned: scanned, candidates: candidates)
    }
}

extension ExpertRouter {
    /// The explanation of a case's routing (nil when the case does not exist).
    public func explain(caseID: String) async throws -> RoutingExplanation? {
        let reply = try await redis.send("HGETALL", RedisArgument(keys.caseKey(caseID)))
        guard let map = reply.fieldMap, !map.isEmpty, let info = Self.caseInfo(caseID, reply) else { return nil }
        let specialty = try Specialty(info.specialty)
        let made = Int(map["decisions"]?.int ?? 0)
        var decisions: [RoutingExplanation.Decision] = []
        for n in 1...max(1, min(20, made)) {
            if let text = map["why\(n)"]?.string,
               let decision = RoutingExplanation.decision(text, specialty: specialty, site: info.site, region: info.region) {
                decisions.append(decision)
            }
        }
        let avoid = map["avoid"]?.string ?? ""
        let roster = try await rosterFit(for: info, specialty: specialty.widened(to: info.level), avoidHomeSite: avoid)
        return RoutingExplanation(caseID: caseID, kind: info.kind, specialty: info.specialty, site: info.site, region: info.region,
                                  level: info.level, state: info.state, expert: info.expert, decisions: decisions, decisionsMade: made,
                                  roster: roster, rules: config.qualificationRules)
    }

    /// Every expert holding `specialty` and what keeps each from the case now.
    func rosterFit(for info: CaseInfo, specialty: Specialty, avoidHomeSite: String) async throws -> [RoutingExplanation.RosterEntry] {
        // One read of every profile with its live state; then those holding the specialty.
        let states = try await expertStates(try await expertIDs()).filter { state in state.expert.specialties.contains { $0.covers(specialty) } }
        let now = self.now
        let scopes = [info.site] + (info.region.map { ["region:" + $0] } ?? [])
        let weight = info.weight
        let factor = info.effectivePriority == Priority.stat.description ? 1 + config.statCapacityMargin : 1
        return states.map { state in
            let expert = state.expert
            var reasons = expert.qualification(at: now, rules: config.qualificationRules).failures.map(\.rawValue)
            if expert.isSuspended(for: specialty) { reasons.append("suspended_specialty") }
            let credentials = expert.credentials.filter { scopes.contains($0.scope) }
            if credentials.isEmpty { reasons.append("no_credential") } else if !credentials.contains(where: { $0.isValid(at: now) }) {
                reasons.append("credential_expired")
            }
            if config.conflictOfInterest, expert.homeSite == info.site { reasons.append("conflict") }
            if !avoidHomeSite.isEmpty, expert.homeSite == avoidHomeSite { reasons.append("same_hospital") }
            if info.excluded.contains(expert.id) { reasons.append("declined") }
            if !(state.presence == .online && state.heartbeatUntil > now) { reasons.append("offline") }
            if !ShiftSchedule.status(expert.shifts, timeZone: expert.timeZone, at: now).onShift { reasons.append("off_shift") }
            if info.expert != expert.id, Double(state.load + weight) > Double(expert.capacity) * factor + 1e-9 { reasons.append("full") }
            if info.expert == expert.id { reasons = ["holds_case"] }
            return RoutingExplanation.RosterEntry(expert: expert.id, reasons: reasons.isEmpty ? ["eligible"] : reasons)
        }
    }
}
