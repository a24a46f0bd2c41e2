import Foundation
import GridContract
import RadGridCore
import Synchronization

/// The header field (or rule) that decided a study's region.
public struct SpecialtySource: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Field: String, Sendable, Hashable, Codable, CaseIterable {
        case bodyPartExamined = "BodyPartExamined"
        case anatomicRegionSequence = "AnatomicRegionSequence"
        case studyDescription = "StudyDescription"
        case protocolName = "ProtocolName"
        case seriesDescription = "SeriesDescription"
        /// The modality's pool has a fixed region (MG reads breast).
        case modality = "Modality"
    }

    public var field: Field
    /// The configured term or code that matched (`HEAD`, `头颅`, `SCT 69536005`), never the
    /// study's own text, so it carries no patient data.
    public var term: String
    /// The region the term names.
    public var region: String

    public init(field: Field, term: String, region: String) {
        self.field = field
        self.term = term
        self.region = region
    }

    public var description: String { "\(field.rawValue) '\(term)' (\(region))" }
}

/// The specialty a study is routed to, and why.
public struct SpecialtyDecision: Sendable, Hashable, Codable {
    public var specialty: Specialty
    /// The primary DICOM modality chosen from the study (`""` when it has none); the
    /// work-unit weight is looked up by it.
    public var modality: String
    /// What decided the region; nil when no field named one.
    public var source: SpecialtySource?
    /// True when no body region was found: the case goes to the modality's generalist pool.
    public var isGeneralistFallback: Bool
    /// One line for the case view, e.g. `no body part found; generalist pool`. Names
    /// configured terms and modality codes only, never header text.
    public var note: String

    public init(specialty: Specialty, modality: String, source: SpecialtySource?, isGeneralistFallback: Bool, note: String) {
        self.specialty = specialty
        self.modality = modality
        self.source = source
        self.isGeneralistFallback = isGeneralistFallback
        self.note = note
    }
}

/// Splits text into the units terms are matched on: runs of letters and digits (upper-cased,
/// accents and full-width forms folded: `ｃｔ　Tête` → `CT`, `TETE`) and single CJK, kana or
/// hangul characters, which have no spaces between words. Everything else separates, so
/// `L-SPINE` → `L SPINE`, `ABD/PEL` → `ABD PEL`, `CT HEAD W/O` → `CT HEAD W O`, and a term
/// only ever matches whole words: `HEAD` never matches `HEADER`, `ABD` never `ABDOMEN`.
enum TextUnits {
    /// Longer text is cut here (DICOM LO/SH values are at most 64 characters).
    static let maxScalars = 512

    static func units(_ text: String) -> [String] {
        // Most header text is ASCII: split and upper-case its bytes directly (the Unicode
        // property lookups of the general path cost about half of a whole decision).
        var text = text
        if let ascii = text.withUTF8({ asciiUnits($0) }) { return ascii }
        return unicodeUnits(text)
    }

    /// The units of ASCII text; nil when a byte is not ASCII.
    static func asciiUnits(_ bytes: UnsafeBufferPointer<UInt8>) -> [String]? {
        var result: [String] = []
        var start = -1
        let end = min(bytes.count, maxScalars)
        func flush(_ position: Int) {
            guard start >= 0 else { return }
            let word = UnsafeBufferPointer(rebasing: bytes[start..<position])
            result.append(String(unsafeUninitializedCapacity: word.count) { buffer in
                for (index, byte) in word.enumerated() { buffer[index] = byte >= 0x61 && byte <= 0x7A ? byte - 0x20 : byte }
                return word.count
            })
            start = -1
        }
        for position in 0..<end {
            let byte = bytes[position]
            if byte >= 0x80 { return nil }
            let isWord = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
            if isWord {
                if start < 0 { start = position }
            } else {
                flush(position)
            }
        }
        flush(end)
        return result
    }

    static func unicodeUnits(_ text: String) -> [String] {
        var result: [String] = []
        var word = String.UnicodeScalarView()
        func flush() {
            if !word.isEmpty { result.append(String(word)); word = String.UnicodeScalarView() }
        }
        var seen = 0
        for original in text.uppercased().unicodeScalars {
            seen += 1
            if seen > maxScalars { break }
            var scalar = original
            // Full-width ASCII forms (common from CJK input methods).
            if (0xFF01...0xFF5E).contains(scalar.value), let narrow = Unicode.Scalar(scalar.value - 0xFEE0) { scalar = narrow }
            if (0x0300...0x036F).contains(scalar.value) { continue } // combining accents: part of the word, dropped
            if (0xC0...0x24F).contains(scalar.value), let base = baseLetter(scalar) { scalar = base }
            if isIdeographic(scalar) {
                flush()
                result.append(String(Character(scalar)))
            } else if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                word.append(scalar)
            } else {
                flush()
            }
        }
        flush()
        return result
    }

    /// `É` → `E`: the first scalar of the canonical decomposition.
    static func baseLetter(_ scalar: Unicode.Scalar) -> Unicode.Scalar? {
        String(Character(scalar)).decomposedStringWithCanonicalMapping.unicodeScalars.first
    }

    /// Scripts written without spaces between words: each character is a unit of its own.
    static func isIdeographic(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x1100...0x11FF, 0x2E80...0x2FDF, 0x3040...0x30FF, 0x3100...0x318F, 0x31A0...0x31FF, 0x3400...0x4DBF,
             0x4E00...0x9FFF, 0xAC00...0xD7AF, 0xF900...0xFAFF, 0x20000...0x2FA1F:
            return true
        default:
            return false
        }
    }
}

/// Derives a `SpecialtyDecision` from `StudyDescriptors` under `SpecialtyRules`; pure and
/// `Sendable`. Build one per rules (construction validates and indexes them) and reuse it.
///
/// 1. Primary modality: of the study's modalities, the one earliest in `modalityPreference`
///    (images before SR/KO/PR/RTPLAN/RTSTRUCT; PT before CT in a PET/CT). No Modality at all:
///    inferred from the SOP classes. Its pool rule gives the pool; none → `otherModalityPool`.
/// 2. Region: a pool rule with `fixedRegion` uses it. Otherwise the fields are read in order
///    BodyPartExamined, AnatomicRegionSequence (code, then meaning text), StudyDescription,
///    ProtocolName, SeriesDescription; the first field naming a region the pool has its own
///    pool for decides (several in one field: the earliest in `regions`). Terms match whole
///    words, longest first (`THORACIC SPINE` before `THORACIC`, `股骨头` before any `头`).
/// 3. Nothing found, or only regions without a pool of their own: the modality's generalist
///    pool (`CT/general`) at once, said so in the note.
/// 4. Subspecialty: from the pool rule's `region/sub`, replaced by the first finding rule
///    that names the region.
public struct SpecialtyDeriver: Sendable {
    public let rules: SpecialtyRules

    struct Term: Sendable {
        let units: [String]
        /// Index into `regions`; -1 for an ignored term.
        let region: Int
        let text: String
    }

    struct Pool: Sendable {
        let name: String
        /// Region index → subspecialty ("" = none) for regions with their own pool.
        let subspecialty: [Int: String]
        let fixedRegion: String?
    }

    struct Finding: Sendable {
        let name: String
        let subspecialty: String
        let regions: Set<Int>
    }

    let regionNames: [String]
    let termsByFirstUnit: [String: [Term]]
    let codes: [String: (region: Int, text: String)]
    let pools: [Pool]
    let poolByModality: [String: Int]
    let preference: [String: Int]
    let findings: [Finding]

    /// The built-in rules (validated by `SpecialtyRulesTests.standardRulesAreValid`).
    public static let standard: SpecialtyDeriver = {
        do { return try SpecialtyDeriver(rules: .standard) } catch { fatalError("built-in specialty rules are invalid: \(error)") }
    }()

    private static let cache = Mutex<SpecialtyDeriver?>(nil)

    /// A deriver for `rules`, reusing the last one built (configs rarely change).
    public static func shared(for rules: SpecialtyRules) throws(SpecialtyRulesError) -> SpecialtyDeriver {
        if rules == SpecialtyRules.standard { return standard }
        if let hit = cache.withLock({ $0 }), hit.rules == rules { return hit }
        let built = try SpecialtyDeriver(rules: rules)
        cache.withLock { $0 = built }
        return built
    }

    public init(rules: SpecialtyRules) throws(SpecialtyRulesError) {
        self.rules = rules
        typealias E = SpecialtyRulesError
        let root = "specialtyRules"

        guard RuleNames.isRegion(rules.generalistRegion) else {
            throw E(.invalidName, path: "\(root).generalistRegion", "'\(rules.generalistRegion)' must be 1-24 lower-case letters, digits, - or _")
        }
        guard RuleNames.isPool(rules.otherModalityPool) else {
            throw E(.invalidName, path: "\(root).otherModalityPool", "'\(rules.otherModalityPool)' must be 1-24 upper-case letters, digits, - or _")
        }

        // Regions, their terms and codes.
        guard !rules.regions.isEmpty else { throw E(.missing, path: "\(root).regions", "at least one region") }
        var regionIndex: [String: Int] = [:]
        var termOwner: [[String]: (region: Int, path: String)] = [:]
        var terms: [String: [Term]] = [:]
        var codes: [String: (region: Int, text: String)] = [:]
        var codePaths: [String: String] = [:]
        for (index, region) in rules.regions.enumerated() {
            let path = "\(root).regions[\(index)]"
            guard RuleNames.isRegion(region.region) else {
                throw E(.invalidName, path: "\(path).region", "'\(region.region)' must be 1-24 lower-case letters, digits, - or _")
            }
            guard region.region != rules.generalistRegion else {
                throw E(.conflict, path: "\(path).region", "'\(region.region)' is the generalistRegion; a region must differ from it")
            }
            if let earlier = regionIndex[region.region] {
                throw E(.duplicate, path: "\(path).region", "region '\(region.region)' is already defined at regions[\(earlier)]")
            }
            regionIndex[region.region] = index
            guard !region.terms.isEmpty || !region.codes.isEmpty else {
                throw E(.missing, path: path, "region '\(region.region)' has neither terms nor codes, so it can never match")
            }
            for (termIndex, term) in region.terms.enumerated() {
                let termPath = "\(path).terms[\(termIndex)]"
                let units = TextUnits.units(term)
                guard !units.isEmpty, term.unicodeScalars.count <= TextUnits.maxScalars else {
                    throw E(.emptyTerm, path: termPath, "term '\(term)' has no letters, digits or CJK characters to match")
                }
                if let owner = termOwner[units] {
                    let code: E.Code = owner.region == index ? .duplicate : .ambiguous
                    throw E(code, path: termPath, "term '\(term)' matches the same words as \(owner.path) (region \(rules.regions[owner.region].region))")
                }
                termOwner[units] = (index, termPath)
                terms[units[0], default: []].append(Term(units: units, region: index, text: term))
            }
            for (codeIndex, code) in region.codes.enumerated() {
                let codePath = "\(path).codes[\(codeIndex)]"
                let scheme = Self.trimmed(code.scheme).uppercased()
                let value = String(Self.trimmed(code.value))
                guard !scheme.isEmpty, !value.isEmpty, !Self.trimmed(code.meaning).isEmpty else {
                    throw E(.missing, path: codePath, "a code needs scheme, value and meaning")
                }
                let key = scheme + "|" + value
                if let owner = codes[key] {
                    let kind: E.Code = owner.region == index ? .duplicate : .ambiguous
                    throw E(kind, path: codePath, "code \(scheme) \(value) is already listed at \(codePaths[key] ?? "") (region \(rules.regions[owner.region].region))")
                }
                codes[key] = (index, "\(scheme) \(value)")
                codePaths[key] = codePath
            }
        }
        for (index, term) in rules.ignoredTerms.enumerated() {
            let termPath = "\(root).ignoredTerms[\(index)]"
            let units = TextUnits.units(term)
            guard !units.isEmpty, term.unicodeScalars.count <= TextUnits.maxScalars else {
                throw E(.emptyTerm, path: termPath, "term '\(term)' has no letters, digits or CJK characters to match")
            }
            if let owner = termOwner[units] {
                let code: E.Code = owner.region < 0 ? .duplicate : .ambiguous
                throw E(code, path: termPath, "term '\(term)' matches the same words as \(owner.path)")
            }
            termOwner[units] = (-1, termPath)
            terms[units[0], default: []].append(Term(units: units, region: -1, text: term))
        }
        // Longest terms first, so the scan takes the longest match at each position.
        self.termsByFirstUnit = terms.mapValues { list in list.sorted { $0.units.count > $1.units.count } }
        self.codes = codes
        self.regionNames = rules.regions.map(\.region)

        // Pool rules.
        guard !rules.modalities.isEmpty else { throw E(.missing, path: "\(root).modalities", "at least one pool rule") }
        var pools: [Pool] = []
        var poolByModality: [String: Int] = [:]
        var poolNames: [String: Int] = [:]
        for (index, rule) in rules.modalities.enumerated() {
            let path = "\(root).modalities[\(index)]"
            guard RuleNames.isPool(rule.pool) else {
                throw E(.invalidName, path: "\(path).pool", "'\(rule.pool)' must be 1-24 upper-case letters, digits, - or _")
            }
            if let earlier = poolNames[rule.pool] {
                throw E(.duplicate, path: "\(path).pool", "pool '\(rule.pool)' already has a rule at modalities[\(earlier)]; list all its modalities there")
            }
            poolNames[rule.pool] = index
            guard !rule.modalities.isEmpty else { throw E(.missing, path: "\(path).modalities", "at least one DICOM modality") }
            for (modalityIndex, modality) in rule.modalities.enumerated() {
                guard RuleNames.isModality(modality) else {
                    throw E(.invalidName, path: "\(path).modalities[\(modalityIndex)]", "'\(modality)' must be a DICOM modality code (upper case, at most 16)")
                }
                if let earlier = poolByModality[modality] {
                    throw E(.duplicate, path: "\(path).modalities[\(modalityIndex)]", "modality \(modality) is already read by pool \(rules.modalities[earlier].pool)")
                }
                poolByModality[modality] = index
            }
            if let fixed = rule.fixedRegion {
                guard RuleNames.isRegion(fixed) else {
                    throw E(.invalidName, path: "\(path).fixedRegion", "'\(fixed)' must be 1-24 lower-case letters, digits, - or _")
                }
                guard rule.regions.isEmpty else {
                    throw E(.conflict, path: path, "set either regions or fixedRegion, not both")
                }
            }
            var subspecialty: [Int: String] = [:]
            for (entryIndex, entry) in rule.regions.enumerated() {
                let entryPath = "\(path).regions[\(entryIndex)]"
                let parts = entry.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
                guard (1...2).contains(parts.count), parts.allSatisfy(RuleNames.isRegion) else {
                    throw E(.invalidName, path: entryPath, "'\(entry)' must be region or region/subspecialty in lower case")
                }
                guard let region = regionIndex[parts[0]] else {
                    throw E(.unknownRegion, path: entryPath, "region '\(parts[0])' is not defined in specialtyRules.regions")
                }
                guard subspecialty[region] == nil else {
                    throw E(.duplicate, path: entryPath, "region '\(parts[0])' is listed twice for pool \(rule.pool)")
                }
                subspecialty[region] = parts.count == 2 ? parts[1] : ""
            }
            pools.append(Pool(name: rule.pool, subspecialty: subspecialty, fixedRegion: rule.fixedRegion))
        }
        self.pools = pools
        self.poolByModality = poolByModality

        var preference: [String: Int] = [:]
        for (index, modality) in rules.modalityPreference.enumerated() {
            let path = "\(root).modalityPreference[\(index)]"
            guard RuleNames.isModality(modality) else {
                throw E(.invalidName, path: path, "'\(modality)' must be a DICOM modality code (upper case, at most 16)")
            }
            guard preference[modality] == nil else { throw E(.duplicate, path: path, "modality \(modality) is listed twice") }
            guard poolByModality[modality] != nil else {
                throw E(.unknownModality, path: path, "modality \(modality) is preferred but no pool rule in specialtyRules.modalities reads it")
            }
            preference[modality] = index
        }
        self.preference = preference

        var findings: [Finding] = []
        var findingNames: Set<String> = []
        for (index, rule) in rules.findings.enumerated() {
            let path = "\(root).findings[\(index)]"
            guard RuleNames.isFinding(rule.finding) else {
                throw E(.invalidName, path: "\(path).finding", "'\(rule.finding)' must be 1-64 lower-case letters, digits, - _ .")
            }
            guard findingNames.insert(rule.finding).inserted else { throw E(.duplicate, path: "\(path).finding", "finding '\(rule.finding)' is listed twice") }
            guard RuleNames.isRegion(rule.subspecialty) else {
                throw E(.invalidName, path: "\(path).subspecialty", "'\(rule.subspecialty)' must be 1-24 lower-case letters, digits, - or _")
            }
            guard !rule.regions.isEmpty else { throw E(.missing, path: "\(path).regions", "at least one region the finding applies to") }
            var regions: Set<Int> = []
            for (regionPosition, name) in rule.regions.enumerated() {
                guard let region = regionIndex[name] else {
                    throw E(.unknownRegion, path: "\(path).regions[\(regionPosition)]", "region '\(name)' is not defined in specialtyRules.regions")
                }
                regions.insert(region)
            }
            findings.append(Finding(name: rule.finding, subspecialty: rule.subspecialty, regions: regions))
        }
        self.findings = findings
    }

    // MARK: - Deciding

    /// The modality of a SOP Class UID (PS3.4), used only when a study has no Modality.
    static let modalityBySOPClass: [String: String] = {
        let base = "1.2.840.10008.5.1.4.1.1."
        let table: [String: String] = [
            "1": "CR", "1.1": "DX", "1.1.1": "DX", "1.2": "MG", "1.2.1": "MG", "13.1.3": "MG",
            "2": "CT", "2.1": "CT", "2.2": "CT", "3.1": "US", "6.1": "US", "6.2": "US",
            "4": "MR", "4.1": "MR", "4.4": "MR", "7": "SC", "7.1": "SC", "7.2": "SC", "7.3": "SC", "7.4": "SC",
            "12.1": "XA", "12.1.1": "XA", "12.2": "RF", "12.2.1": "RF", "20": "NM", "128": "PT", "128.1": "PT", "130": "PT",
            "481.1": "RTIMAGE", "481.2": "RTDOSE", "481.3": "RTSTRUCT", "481.4": "RTRECORD", "481.5": "RTPLAN",
            "481.8": "RTPLAN", "481.9": "RTRECORD", "66.4": "SEG", "11.1": "PR", "11.2": "PR", "88.59": "KO",
        ]
        return Dictionary(uniqueKeysWithValues: table.map { (base + $0.key, $0.value) })
    }()

    static func modality(ofSOPClass uid: String) -> String? {
        let uid = String(trimmed(uid))
        if let known = modalityBySOPClass[uid] { return known }
        if uid.hasPrefix("1.2.840.10008.5.1.4.1.1.88.") { return "SR" }
        return nil
    }

    /// A study's modality codes, normalised; garbage (not a CS code) is dropped, so notes
    /// never echo arbitrary header text.
    static func modalityCodes(_ values: [String]) -> [String] {
        var codes: [String] = []
        for value in values.prefix(64) {
            let code = trimmed(value).uppercased()
            guard RuleNames.isModality(code), !codes.contains(code) else { continue }
            codes.append(code)
        }
        return codes
    }

    /// Without the space and NUL padding DICOM values carry.
    static func trimmed(_ value: String) -> Substring {
        let padding: (Character) -> Bool = { $0 == " " || $0 == "\0" }
        guard let first = value.firstIndex(where: { !padding($0) }), let last = value.lastIndex(where: { !padding($0) }) else { return "" }
        return value[first...last]
    }

    /// Regions named in `text` (term matches, leftmost-longest), in text order.
    func regions(in text: String) -> [(region: Int, term: String)] {
        let units = TextUnits.units(text)
        var found: [(region: Int, term: String)] = []
        var position = 0
        while position < units.count {
            if let candidates = termsByFirstUnit[units[position]],
               let hit = candidates.first(where: { term in
                   position + term.units.count <= units.count && units[position..<(position + term.units.count)].elementsEqual(term.units)
               }) {
                if hit.region >= 0 { found.append((hit.region, hit.text)) }
                position += hit.units.count
            } else {
                position += 1
            }
        }
        return found
    }

    func regions(in codes: [AnatomicCode]) -> [(region: Int, term: String)] {
        var found: [(region: Int, term: String)] = []
        for code in codes.prefix(64) {
            let key = Self.trimmed(code.scheme).uppercased() + "|" + Self.trimmed(code.value)
            if let hit = self.codes[key] {
                found.append((hit.region, hit.text))
            } else {
                found += regions(in: code.meaning)
            }
        }
        return found
    }

    public func decide(_ study: StudyDescriptors) -> SpecialtyDecision {
        var notes: [String] = []

        // 1. Primary modality.
        var candidates = Self.modalityCodes([study.modality] + study.modalitiesInStudy)
        if candidates.isEmpty {
            candidates = Self.modalityCodes(study.sopClassUIDs.prefix(64).compactMap(Self.modality(ofSOPClass:)))
            if let first = candidates.first { notes.append("Modality missing; \(first) from SOP class") }
        }
        let primary = candidates.enumerated().min { a, b in
            let rankA = preference[a.element] ?? Int.max, rankB = preference[b.element] ?? Int.max
            return rankA != rankB ? rankA < rankB : a.offset < b.offset
        }?.element
        if candidates.count > 1, let primary { notes.append("primary modality \(primary) of \(candidates.joined(separator: ", "))") }
        let poolRule = primary.flatMap { poolByModality[$0] }.map { pools[$0] }
        let poolName = poolRule?.name ?? rules.otherModalityPool
        if poolRule == nil {
            notes.append(primary.map { "no pool for modality \($0); \(poolName) pool" } ?? "no modality; \(poolName) pool")
        }

        // 2. Region.
        var region = rules.generalistRegion
        var subspecialty = ""
        var source: SpecialtySource?
        var regionIndex: Int?
        var fallback = false
        if let fixed = poolRule?.fixedRegion {
            region = fixed
            regionIndex = regionNames.firstIndex(of: fixed)
            source = SpecialtySource(field: .modality, term: primary ?? poolName, region: fixed)
            notes.append("\(primary ?? poolName) is read by the \(poolName)/\(fixed) pool")
        } else {
            let own = poolRule?.subspecialty ?? [:]
            let fields: [(SpecialtySource.Field, [(region: Int, term: String)])] = [
                (.bodyPartExamined, regions(in: study.bodyPartExamined)),
                (.anatomicRegionSequence, regions(in: study.anatomicRegionCodes)),
                (.studyDescription, regions(in: study.studyDescription)),
                (.protocolName, regions(in: study.protocolName)),
                (.seriesDescription, study.seriesDescriptions.prefix(256).flatMap { regions(in: $0) }),
            ]
            // Per field: the region it names (one with its own pool first), by precedence.
            var named: [(field: SpecialtySource.Field, region: Int, term: String, hasPool: Bool)] = []
            for (field, hits) in fields where !hits.isEmpty {
                let pooled = hits.filter { own[$0.region] != nil }.min { $0.region < $1.region }
                let best = pooled ?? hits.min { $0.region < $1.region }!
                named.append((field, best.region, best.term, pooled != nil))
            }
            if let chosen = named.first(where: { $0.hasPool }) {
                regionIndex = chosen.region
                region = regionNames[chosen.region]
                subspecialty = own[chosen.region] ?? ""
                source = SpecialtySource(field: chosen.field, term: chosen.term, region: region)
                notes.append("\(region) from \(chosen.field.rawValue) '\(chosen.term)'")
            } else if let found = named.first {
                source = SpecialtySource(field: found.field, term: found.term, region: regionNames[found.region])
                notes.append("\(poolName) has no \(regionNames[found.region]) pool (\(found.field.rawValue) '\(found.term)'); generalist pool")
            } else {
                fallback = true
                notes.append("no body part found; generalist pool")
            }
            var disagreeing: [String] = []
            for other in named where other.region != (regionIndex ?? named.first?.region) {
                let text = "\(other.field.rawValue) suggests \(regionNames[other.region])"
                if !disagreeing.contains(text) { disagreeing.append(text) }
            }
            notes += disagreeing
        }

        // 3. Findings may call for a subspecialist of the region.
        if let index = regionIndex, !study.findings.isEmpty {
            let studyFindings = Set(study.findings.prefix(64).map { Self.trimmed($0).lowercased() })
            if let finding = findings.first(where: { studyFindings.contains($0.name) && $0.regions.contains(index) }) {
                subspecialty = finding.subspecialty
                notes.append("finding \(finding.name): \(finding.subspecialty)")
            }
        }

        // Every component was checked when the rules were built.
        let specialty = Specialty(components: [poolName, region] + (subspecialty.isEmpty ? [] : [subspecialty]))
        return SpecialtyDecision(specialty: specialty, modality: primary ?? "", source: source, isGeneralistFallback: fallback,
                                 note: notes.joined(separator: "; "))
    }
}
