import Foundation
import GridContract
import RadGridCore

/// Errors of the routing module: stable codes, messages that name the problem (field,
/// row, expert id, case id) and never carry patient data.
public struct RoutingError: CodedError, Equatable {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    static func invalid(_ message: String) -> RoutingError { RoutingError("routing.invalid", message) }
    static func notFound(_ what: String) -> RoutingError { RoutingError("routing.notFound", what) }
    static func conflict(_ message: String) -> RoutingError { RoutingError("routing.conflict", message) }
}

/// A reading specialty: `MODALITY/region[/subspecialty]`, e.g. `CT/head/neuro`, `MR/msk`,
/// `CR/chest`. An expert with a specialty also reads everything above it (a neuroradiologist
/// reads general head CT); a case widens to the levels above its own when its deadline nears.
public struct Specialty: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let components: [String]

    public init(_ text: String) throws(RoutingError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard (1...3).contains(parts.count) else {
            throw .invalid("specialty must be MODALITY/region[/sub], 1 to 3 parts")
        }
        var normalised: [String] = []
        for (index, part) in parts.enumerated() {
            guard !part.isEmpty, part.count <= 24,
                  part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw .invalid("specialty part \(index + 1) must be 1-24 letters, digits, - or _")
            }
            normalised.append(index == 0 ? part.uppercased() : part.lowercased())
        }
        components = normalised
    }

    init(components: [String]) { self.components = components }

    public var description: String { components.joined(separator: "/") }
    public var modality: String { components[0] }

    /// The specialty itself and every ancestor down to the modality (most specific first).
    public var lineage: [Specialty] {
        (1...components.count).reversed().map { Specialty(components: Array(components.prefix($0))) }
    }

    /// Highest escalation level: each level drops one component (never below the modality).
    public var maxLevel: Int { components.count - 1 }

    /// The pool a case at `level` is routed to.
    public func widened(to level: Int) -> Specialty {
        Specialty(components: Array(components.prefix(max(1, components.count - max(0, level)))))
    }

    /// True when an expert holding `self` may read a case routed to pool `required`.
    public func covers(_ required: Specialty) -> Bool {
        required.components.count <= components.count && Array(components.prefix(required.components.count)) == required.components
    }

    public static func < (lhs: Specialty, rhs: Specialty) -> Bool { lhs.description < rhs.description }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Specialty(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Where an expert may read: a site id (`H001`) or a region (`region:EU-N`), until `expires`
/// (milliseconds since the epoch; nil = no expiry).
public struct Credential: Sendable, Hashable, Codable {
    public var scope: String
    public var expires: Int64?

    public init(scope: String, expires: Int64? = nil) {
        self.scope = scope
        self.expires = expires
    }

    public func isValid(at now: Int64) -> Bool { expires.map { $0 > now } ?? true }

    static func validateScope(_ scope: String) throws(RoutingError) {
        let body = scope.hasPrefix("region:") ? String(scope.dropFirst(7)) : scope
        guard !body.isEmpty, body.count <= 32,
              body.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw .invalid("credential scope must be a site id or region:NAME (letters, digits, - _ .)")
        }
    }
}

/// Expert presence as set by the expert (or their client).
public enum Presence: String, Sendable, Codable, CaseIterable {
    case online, away, offline
}

/// One roster entry.
public struct Expert: Sendable, Hashable, Codable {
    public var id: String
    public var name: String
    public var specialties: [Specialty]
    public var credentials: [Credential]
    /// Maximum weighted open work (work units), 1...1000.
    public var capacity: Int
    /// IANA time zone of the shift windows, e.g. `Europe/Berlin`.
    public var timeZone: String
    /// Weekly windows such as `Mon-Fri 08:00-16:00`; empty = always on shift.
    public var shifts: [ShiftWindow]
    /// Site the expert works at; with the conflict rule on, they never read its cases.
    public var homeSite: String?
    /// The medical licence; `QualificationRules` decide whether one is required.
    public var licence: Licence?
    /// Professional title as the roster gives it (e.g. 主任医师, attending), shown, not ruled on.
    public var title: String?
    /// When independent practice began (ms, a UTC day); the years-of-practice rule reads it.
    public var practiceSince: Int64?
    /// Suspended from all reading (kept on the roster, offered nothing).
    public var suspended: Bool
    /// Suspended for these specialties and everything below them (QC), reading the rest.
    public var suspendedSpecialties: [Specialty]

    public init(id: String, name: String, specialties: [Specialty], credentials: [Credential], capacity: Int,
                timeZone: String = "UTC", shifts: [ShiftWindow] = [], homeSite: String? = nil,
                licence: Licence?, title: String? = nil, practiceSince: Int64?,
                suspended: Bool = false, suspendedSpecialties: [Specialty] = []) {
        self.licence = licence
        self.title = title
        self.practiceSince = practiceSince
        self.suspended = suspended
        self.suspendedSpecialties = suspendedSpecialties
        self.id = id
        self.name = name
        self.specialties = specialties
        self.credentials = credentials
        self.capacity = capacity
        self.timeZone = timeZone
        self.shifts = shifts
        self.homeSite = homeSite
    }

    /// Checks every field; the error names the field.
    public func validate() throws(RoutingError) {
        try Self.validateID(id, field: "id")
        guard !name.isEmpty, name.count <= 120, !name.contains("\n") else { throw .invalid("name: 1-120 characters, one line") }
        guard !specialties.isEmpty else { throw .invalid("specialties: at least one") }
        guard !credentials.isEmpty else { throw .invalid("credentials: at least one site or region") }
        for credential in credentials { try Credential.validateScope(credential.scope) }
        guard Set(credentials.map(\.scope)).count == credentials.count else { throw .invalid("credentials: a scope is listed twice") }
        guard (1...1000).contains(capacity) else { throw .invalid("capacity: must be an integer 1...1000") }
        guard TimeZone(identifier: timeZone) != nil else { throw .invalid("time_zone: unknown time zone '\(timeZone)'") }
        if let homeSite { try Self.validateID(homeSite, field: "home_site") }
        try licence?.validate()
        if let title { guard !title.isEmpty, title.count <= 60, !title.contains("\n") else { throw .invalid("title: 1-60 characters, one line") } }
    }

    enum CodingKeys: String, CodingKey {
        case id, name, specialties, credentials, capacity, timeZone, shifts, homeSite
        case licence, title, practiceSince, suspended, suspendedSpecialties
    }

    /// Profiles stored before the qualification fields existed read as unlicensed and not
    /// suspended, so the rules keep them out until the roster is imported again.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        specialties = try c.decode([Specialty].self, forKey: .specialties)
        credentials = try c.decode([Credential].self, forKey: .credentials)
        capacity = try c.decode(Int.self, forKey: .capacity)
        timeZone = try c.decodeIfPresent(String.self, forKey: .timeZone) ?? "UTC"
        shifts = try c.decodeIfPresent([ShiftWindow].self, forKey: .shifts) ?? []
        homeSite = try c.decodeIfPresent(String.self, forKey: .homeSite)
        licence = try c.decodeIfPresent(Licence.self, forKey: .licence)
        title = try c.decodeIfPresent(String.self, forKey: .title)
        practiceSince = try c.decodeIfPresent(Int64.self, forKey: .practiceSince)
        suspended = try c.decodeIfPresent(Bool.self, forKey: .suspended) ?? false
        suspendedSpecialties = try c.decodeIfPresent([Specialty].self, forKey: .suspendedSpecialties) ?? []
    }

    static func validateID(_ id: String, field: String) throws(RoutingError) {
        guard !id.isEmpty, id.count <= 64,
              id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }) else {
            throw .invalid("\(field): 1-64 letters, digits, - _ .")
        }
    }

    /// Pools the expert belongs to when available: every ancestor of every specialty at
    /// every credentialed scope.
    public var poolNames: [String] {
        var names = Set<String>()
        for specialty in specialties {
            for level in specialty.lineage where !isSuspended(for: level) {
                for credential in credentials { names.insert(RoutingKeys.poolName(level, credential.scope)) }
            }
        }
        return names.sorted()
    }

    /// True when the expert may read a case needing `pool` at `scope`, ignoring time.
    public func qualifies(for pool: Specialty) -> Bool {
        specialties.contains { $0.covers(pool) } && !isSuspended(for: pool)
    }
}

/// Work units (RVU-like, integers) per study by modality, with a surcharge per extra series.
public struct WeightTable: Sendable, Codable, Hashable {
    public var baseUnits: [String: Int]
    public var defaultUnits: Int
    /// One extra unit per this many series beyond the first.
    public var seriesPerUnit: Int
    public var maxUnits: Int

    public static let standard = WeightTable(
        baseUnits: ["CR": 1, "DX": 1, "MG": 2, "US": 2, "CT": 3, "NM": 3, "MR": 4, "PT": 5, "XA": 3],
        defaultUnits: 2, seriesPerUnit: 4, maxUnits: 12)

    public func weight(modality: String, seriesCount: Int) -> Int {
        let base = baseUnits[modality.uppercased()] ?? defaultUnits
        let extra = seriesPerUnit > 0 ? max(0, seriesCount - 1) / seriesPerUnit : 0
        return min(maxUnits, max(1, base + extra))
    }
}

/// Routing policy; `Ops/routing.json` holds the defaults.
public struct RoutingConfig: Sendable, Codable, Hashable {
    /// SLA (report due) per priority, minutes.
    public var slaMinutes: [String: Int]
    /// An offer not accepted within this many seconds goes to someone else.
    public var acceptTimeoutSeconds: Int
    /// STAT cases may exceed an expert's capacity by this fraction (0.25 = 25 %).
    public var statCapacityMargin: Double
    /// Never route a case to an expert whose home site sent it.
    public var conflictOfInterest: Bool
    /// Fractions of the SLA after which a waiting case widens to level 1 and level 2.
    public var widenAtFractions: [Double]
    /// Waiting routine cases become urgent after this many minutes, urgent become STAT.
    public var ageRoutineAfterMinutes: Int
    public var ageUrgentAfterMinutes: Int
    /// Heartbeats keep an expert online for this long.
    public var heartbeatTTLSeconds: Int
    /// Half-life of the "recent assignments" tie breaker.
    public var recentHalfLifeMinutes: Int
    /// Candidates examined per decision at most (bounds the script's cost).
    public var maxCandidatesScanned: Int
    public var weights: WeightTable
    /// Audit stream is trimmed (approximately) to this many entries.
    public var auditMaxEntries: Int
    /// A completed or cancelled case is kept this long, then expires (the study keeps its own record).
    public var closedCaseRetentionDays: Int = 30
    /// How study headers become a reading specialty (`SpecialtyDeriver`).
    public var specialtyRules: SpecialtyRules
    /// Licence and years of practice an expert needs before any case is offered.
    public var qualificationRules: QualificationRules = .standard
    /// What "least loaded" means when choosing among eligible experts.
    public var balanceBy: Balance = .ratio
    /// Cases an expert may hold at once (offered + accepted), beside the capacity in work
    /// units; 0 = no limit. The rest wait in the router, by priority, for whoever frees first.
    public var maxOpenCases: Int = 0

    public enum Balance: String, Sendable, Codable, Hashable {
        /// Least share of capacity in use: experts fill in proportion to their capacity.
        case ratio
        /// Least work in hand (capacity still a hard limit): a case goes to whoever will get
        /// to it soonest when reading speeds are alike.
        case load
    }

    public static let standard = RoutingConfig(
        slaMinutes: ["stat": 30, "urgent": 120, "routine": 1440, "bulk": 4320],
        acceptTimeoutSeconds: 300, statCapacityMargin: 0.25, conflictOfInterest: true,
        widenAtFractions: [0.5, 0.75], ageRoutineAfterMinutes: 240, ageUrgentAfterMinutes: 60,
        heartbeatTTLSeconds: 120, recentHalfLifeMinutes: 60, maxCandidatesScanned: 64,
        weights: .standard, auditMaxEntries: 1_000_000, specialtyRules: .standard)

    public init(slaMinutes: [String: Int], acceptTimeoutSeconds: Int, statCapacityMargin: Double, conflictOfInterest: Bool,
                widenAtFractions: [Double], ageRoutineAfterMinutes: Int, ageUrgentAfterMinutes: Int,
                heartbeatTTLSeconds: Int, recentHalfLifeMinutes: Int, maxCandidatesScanned: Int,
                weights: WeightTable, auditMaxEntries: Int, specialtyRules: SpecialtyRules = .standard) {
        self.slaMinutes = slaMinutes
        self.acceptTimeoutSeconds = acceptTimeoutSeconds
        self.statCapacityMargin = statCapacityMargin
        self.conflictOfInterest = conflictOfInterest
        self.widenAtFractions = widenAtFractions
        self.ageRoutineAfterMinutes = ageRoutineAfterMinutes
        self.ageUrgentAfterMinutes = ageUrgentAfterMinutes
        self.heartbeatTTLSeconds = heartbeatTTLSeconds
        self.recentHalfLifeMinutes = recentHalfLifeMinutes
        self.maxCandidatesScanned = maxCandidatesScanned
        self.weights = weights
        self.auditMaxEntries = auditMaxEntries
        self.specialtyRules = specialtyRules
    }

    public func slaMilliseconds(_ priority: Priority) -> Int64 {
        let minutes = slaMinutes[priority.description] ?? RoutingConfig.standard.slaMinutes[priority.description] ?? 1440
        return Int64(minutes) * 60_000
    }

    public func validate() throws(RoutingError) {
        for priority in Priority.allCases where priority != .bulk || slaMinutes[priority.description] != nil {
            // bulk may be left out (it falls back to the standard table); the others must be set.
            guard let minutes = slaMinutes[priority.description], minutes > 0 else {
                throw .invalid("slaMinutes.\(priority): must be a positive number of minutes")
            }
        }
        guard acceptTimeoutSeconds > 0 else { throw .invalid("acceptTimeoutSeconds: must be positive") }
        guard (0...2).contains(statCapacityMargin) else { throw .invalid("statCapacityMargin: must be 0...2") }
        guard widenAtFractions.count == 2, widenAtFractions.allSatisfy({ $0 > 0 && $0 <= 1 }), widenAtFractions[0] <= widenAtFractions[1] else {
            throw .invalid("widenAtFractions: two ascending fractions in (0, 1]")
        }
        guard ageRoutineAfterMinutes > 0, ageUrgentAfterMinutes > 0 else { throw .invalid("age*AfterMinutes: must be positive") }
        guard heartbeatTTLSeconds > 0, recentHalfLifeMinutes > 0 else { throw .invalid("heartbeatTTLSeconds, recentHalfLifeMinutes: must be positive") }
        guard (4...10_000).contains(maxCandidatesScanned) else { throw .invalid("maxCandidatesScanned: must be 4...10000") }
        guard closedCaseRetentionDays > 0 else { throw .invalid("closedCaseRetentionDays: must be positive") }
        try qualificationRules.validate()
        guard (0...1000).contains(maxOpenCases) else { throw .invalid("maxOpenCases: must be 0...1000 (0 = no limit)") }
        do {
            _ = try SpecialtyDeriver.shared(for: specialtyRules)
        } catch {
            throw RoutingError(error.code, error.message)
        }
    }

    /// Reads a JSON config; missing keys fall back to `standard`. Problems in
    /// `specialtyRules` throw `SpecialtyRulesError` (code `routing.rules.*`, with the path);
    /// the rest throw `RoutingError`.
    public static func load(path: String) throws -> RoutingConfig {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return try decode(data)
    }

    /// `load` from bytes.
    public static func decode(_ data: Data) throws -> RoutingConfig {
        let config: RoutingConfig
        do {
            config = try JSONDecoder().decode(RoutingConfig.self, from: data)
        } catch let error as DecodingError {
            throw Self.describe(error)
        }
        try config.specialtyRules.validate()
        try config.validate()
        return config
    }

    /// A decoding failure as a typed error naming the JSON path.
    static func describe(_ error: DecodingError) -> any Error {
        let (path, detail) = error.problem
        if path.first?.stringValue == CodingKeys.specialtyRules.stringValue {
            return SpecialtyRulesError(.malformed, path: StrictKeys.path(path), detail)
        }
        let text = StrictKeys.path(path).replacingOccurrences(of: "specialtyRules", with: "")
        return RoutingError.invalid("routing config \(text.isEmpty ? "(top level)" : text): \(detail)")
    }

    enum CodingKeys: String, CodingKey {
        case slaMinutes, acceptTimeoutSeconds, statCapacityMargin, conflictOfInterest, widenAtFractions
        case ageRoutineAfterMinutes, ageUrgentAfterMinutes, heartbeatTTLSeconds, recentHalfLifeMinutes
        case maxCandidatesScanned, weights, auditMaxEntries, closedCaseRetentionDays, specialtyRules, qualificationRules, balanceBy, maxOpenCases
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = RoutingConfig.standard
        slaMinutes = try c.decodeIfPresent([String: Int].self, forKey: .slaMinutes) ?? d.slaMinutes
        acceptTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .acceptTimeoutSeconds) ?? d.acceptTimeoutSeconds
        statCapacityMargin = try c.decodeIfPresent(Double.self, forKey: .statCapacityMargin) ?? d.statCapacityMargin
        conflictOfInterest = try c.decodeIfPresent(Bool.self, forKey: .conflictOfInterest) ?? d.conflictOfInterest
        widenAtFractions = try c.decodeIfPresent([Double].self, forKey: .widenAtFractions) ?? d.widenAtFractions
        ageRoutineAfterMinutes = try c.decodeIfPresent(Int.self, forKey: .ageRoutineAfterMinutes) ?? d.ageRoutineAfterMinutes
        ageUrgentAfterMinutes = try c.decodeIfPresent(Int.self, forKey: .ageUrgentAfterMinutes) ?? d.ageUrgentAfterMinutes
        heartbeatTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .heartbeatTTLSeconds) ?? d.heartbeatTTLSeconds
        recentHalfLifeMinutes = try c.decodeIfPresent(Int.self, forKey: .recentHalfLifeMinutes) ?? d.recentHalfLifeMinutes
        maxCandidatesScanned = try c.decodeIfPresent(Int.self, forKey: .maxCandidatesScanned) ?? d.maxCandidatesScanned
        weights = try c.decodeIfPresent(WeightTable.self, forKey: .weights) ?? d.weights
        auditMaxEntries = try c.decodeIfPresent(Int.self, forKey: .auditMaxEntries) ?? d.auditMaxEntries
        closedCaseRetentionDays = try c.decodeIfPresent(Int.self, forKey: .closedCaseRetentionDays) ?? d.closedCaseRetentionDays
        specialtyRules = try c.decodeIfPresent(SpecialtyRules.self, forKey: .specialtyRules) ?? d.specialtyRules
        qualificationRules = try c.decodeIfPresent(QualificationRules.self, forKey: .qualificationRules) ?? d.qualificationRules
        balanceBy = try c.decodeIfPresent(Balance.self, forKey: .balanceBy) ?? d.balanceBy
        maxOpenCases = try c.decodeIfPresent(Int.self, forKey: .maxOpenCases) ?? d.maxOpenCases
    }
}

/// What a case needs, derived from the study and the pre-screen.
public struct CaseRequest: Sendable, Hashable, Codable {
    public var id: String
    public var specialty: Specialty
    public var site: String
    public var region: String?
    public var priority: Priority
    public var weight: Int
    /// Milliseconds since the epoch; nil = submission time + SLA of the priority.
    public var deadline: Int64?
    /// A first read, or a second read of someone else's report (QC).
    public var kind: CaseKind = .read
    /// Experts who may never be offered the case (a second read excludes the first reader).
    public var excludedExperts: [String] = []
    /// Experts whose home is this site may not take the case (a second read comes from
    /// another hospital than the first reader's).
    public var avoidHomeSite: String?

    public init(id: String, specialty: Specialty, site: String, region: String? = nil, priority: Priority, weight: Int, deadline: Int64? = nil) {
        self.id = id
        self.specialty = specialty
        self.site = site
        self.region = region
        self.priority = priority
        self.weight = weight
        self.deadline = deadline
    }

    /// Builds a request from study attributes: modality, DICOM body part, series count and
    /// pre-screen finding codes (e.g. `hemorrhage`, `fracture`, `nodule`). Kept for callers
    /// that have only these two fields; `derive(id:descriptors:...)` reads every field.
    public static func derive(id: String, modality: String, bodyPart: String, seriesCount: Int, findings: [String] = [],
                              site: String, region: String? = nil, priority: Priority, config: RoutingConfig = .standard) throws(RoutingError) -> CaseRequest {
        try derive(id: id, descriptors: StudyDescriptors(modality: modality, bodyPartExamined: bodyPart, findings: findings),
                   seriesCount: seriesCount, site: site, region: region, priority: priority, config: config).request
    }

    /// Builds a request from a study's header fields with `config.specialtyRules`; the
    /// decision says which field chose the specialty, or that the case went to the
    /// modality's generalist pool because none named a body part.
    public static func derive(id: String, descriptors: StudyDescriptors, seriesCount: Int, site: String, region: String? = nil,
                              priority: Priority, config: RoutingConfig = .standard) throws(RoutingError) -> (request: CaseRequest, decision: SpecialtyDecision) {
        let deriver: SpecialtyDeriver
        do { deriver = try SpecialtyDeriver.shared(for: config.specialtyRules) } catch { throw RoutingError(error.code, error.message) }
        let decision = deriver.decide(descriptors)
        let weight = config.weights.weight(modality: decision.modality, seriesCount: seriesCount)
        let request = CaseRequest(id: id, specialty: decision.specialty, site: site, region: region, priority: priority, weight: weight)
        return (request, decision)
    }

    public func validate() throws(RoutingError) {
        try Expert.validateID(id, field: "case id")
        try Expert.validateID(site, field: "site")
        if let region { try Credential.validateScope("region:" + region) }
        guard (1...1000).contains(weight) else { throw .invalid("weight: must be 1...1000 work units") }
        for expert in excludedExperts { try Expert.validateID(expert, field: "excluded expert") }
        if let avoidHomeSite { try Expert.validateID(avoidHomeSite, field: "avoided home site") }
    }
}

/// What an expert is asked to do with a case.
public enum CaseKind: String, Sendable, Hashable, Codable {
    /// Report the study.
    case read
    /// Read it again, blinded, and score the first report (peer review).
    case review
}

/// Maps DICOM modality + body part + findings onto a reading specialty with the built-in
/// rules; `SpecialtyDeriver` does the work and reads every routing field.
public enum SpecialtyDerivation {
    /// Kept for existing callers; never throws with the built-in rules.
    public static func specialty(modality: String, bodyPart: String, findings: [String]) throws(RoutingError) -> Specialty {
        decide(StudyDescriptors(modality: modality, bodyPartExamined: bodyPart, findings: findings)).specialty
    }

    /// The full decision under `rules`.
    public static func decide(_ study: StudyDescriptors, rules: SpecialtyRules) throws(SpecialtyRulesError) -> SpecialtyDecision {
        try SpecialtyDeriver.shared(for: rules).decide(study)
    }

    /// The full decision under the built-in rules.
    public static func decide(_ study: StudyDescriptors) -> SpecialtyDecision {
        SpecialtyDeriver.standard.decide(study)
    }
}
