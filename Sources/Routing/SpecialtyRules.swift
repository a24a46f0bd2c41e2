import Foundation
import GridContract
import RadGridCore

/// A problem in the `specialtyRules` section of the routing config. `path` names the entry
/// (`specialtyRules.regions[2].terms[4]`); the message repeats it and says what is wrong.
public struct SpecialtyRulesError: CodedError, Equatable {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public var description: String { rawValue }
        /// A pool, region, subspecialty, modality or finding name is not in its required form.
        public static let invalidName = Code(rawValue: "routing.rules.invalidName")
        /// An entry repeats an earlier one of the same list or kind.
        public static let duplicate = Code(rawValue: "routing.rules.duplicate")
        /// A term or code is listed under two regions, so a match could not choose.
        public static let ambiguous = Code(rawValue: "routing.rules.ambiguous")
        /// A modality or finding rule names a region that has no region entry.
        public static let unknownRegion = Code(rawValue: "routing.rules.unknownRegion")
        /// `modalityPreference` lists a modality that no pool rule reads.
        public static let unknownModality = Code(rawValue: "routing.rules.unknownModality")
        /// A term has no letters, digits or CJK characters, so it can never match.
        public static let emptyTerm = Code(rawValue: "routing.rules.emptyTerm")
        /// A required list or field is empty.
        public static let missing = Code(rawValue: "routing.rules.missing")
        /// Two settings contradict each other (e.g. `regions` and `fixedRegion` on one pool).
        public static let conflict = Code(rawValue: "routing.rules.conflict")
        /// A key the section does not know (usually a typo that would silently drop rules).
        public static let unknownKey = Code(rawValue: "routing.rules.unknownKey")
        /// A value has the wrong JSON type.
        public static let malformed = Code(rawValue: "routing.rules.malformed")
    }

    public let codeValue: Code
    /// Where in the config, e.g. `specialtyRules.modalities[3].regions[1]`.
    public let path: String
    public let message: String
    public var code: String { codeValue.rawValue }

    public init(_ code: Code, path: String, _ detail: String) {
        self.codeValue = code
        self.path = path
        self.message = "\(path): \(detail)"
    }
}

/// How studies of some DICOM modalities are read: the pool (first specialty component),
/// and which regions have pools of their own (`head/neuro` = region head, subspecialty
/// neuro; `msk` = region without subspecialty). Regions not listed go to the generalist
/// pool. `fixedRegion` (e.g. `breast` for MG) skips region matching altogether.
public struct ModalityPoolRule: Sendable, Hashable, Codable {
    public var pool: String
    public var modalities: [String]
    public var regions: [String]
    public var fixedRegion: String?

    public init(pool: String, modalities: [String], regions: [String] = [], fixedRegion: String? = nil) {
        self.pool = pool
        self.modalities = modalities
        self.regions = regions
        self.fixedRegion = fixedRegion
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case pool, modalities, regions, fixedRegion }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pool = try c.decode(String.self, forKey: .pool)
        modalities = try c.decode([String].self, forKey: .modalities)
        regions = try c.decodeIfPresent([String].self, forKey: .regions) ?? []
        fixedRegion = try c.decodeIfPresent(String.self, forKey: .fixedRegion)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pool, forKey: .pool)
        try c.encode(modalities, forKey: .modalities)
        if !regions.isEmpty { try c.encode(regions, forKey: .regions) }
        try c.encodeIfPresent(fixedRegion, forKey: .fixedRegion)
    }
}

/// One body region: free-text terms (whole words or phrases in any language; CJK terms match
/// as character runs) and anatomic codes (matched by scheme and value).
public struct RegionRule: Sendable, Hashable, Codable {
    public var region: String
    public var terms: [String]
    public var codes: [AnatomicCode]

    public init(region: String, terms: [String], codes: [AnatomicCode] = []) {
        self.region = region
        self.terms = terms
        self.codes = codes
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case region, terms, codes }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        region = try c.decode(String.self, forKey: .region)
        terms = try c.decodeIfPresent([String].self, forKey: .terms) ?? []
        codes = try c.decodeIfPresent([AnatomicCode].self, forKey: .codes) ?? []
    }
}

/// A pre-screen finding that calls for a subspecialist when the study is of one of `regions`.
public struct FindingRule: Sendable, Hashable, Codable {
    public var finding: String
    public var subspecialty: String
    public var regions: [String]

    public init(finding: String, subspecialty: String, regions: [String]) {
        self.finding = finding
        self.subspecialty = subspecialty
        self.regions = regions
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case finding, subspecialty, regions }

    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        finding = try c.decode(String.self, forKey: .finding)
        subspecialty = try c.decode(String.self, forKey: .subspecialty)
        regions = try c.decode([String].self, forKey: .regions)
    }
}

/// How a study's headers become a reading specialty (`specialtyRules` in `Ops/routing.json`;
/// `standard` equals that file). See `SpecialtyDeriver` for the matching order.
public struct SpecialtyRules: Sendable, Hashable, Codable {
    /// DICOM modalities, most preferred first, for choosing a study's primary modality:
    /// image modalities before supporting objects (SR, KO, PR, RTPLAN, RTSTRUCT, ...).
    public var modalityPreference: [String]
    /// Reading pools by DICOM modality.
    public var modalities: [ModalityPoolRule]
    /// Pool for a modality no rule lists (e.g. ECG) or a study without any modality.
    public var otherModalityPool: String
    /// Region component of a modality's generalist pool (`CT/general`).
    public var generalistRegion: String
    /// Words that contain a region term but name no region, consumed without a match:
    /// `電腦` (computer, as in 電腦斷層 = CT) holds `腦` (brain); `C-ARM` holds `ARM`.
    public var ignoredTerms: [String]
    /// Body regions in order of precedence: when one field names several, the first wins.
    public var regions: [RegionRule]
    /// Findings in order of precedence; the first that applies sets the subspecialty.
    public var findings: [FindingRule]

    public init(modalityPreference: [String], modalities: [ModalityPoolRule], otherModalityPool: String,
                generalistRegion: String, ignoredTerms: [String] = [], regions: [RegionRule], findings: [FindingRule]) {
        self.modalityPreference = modalityPreference
        self.modalities = modalities
        self.otherModalityPool = otherModalityPool
        self.generalistRegion = generalistRegion
        self.ignoredTerms = ignoredTerms
        self.regions = regions
        self.findings = findings
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case modalityPreference, modalities, otherModalityPool, generalistRegion, ignoredTerms, regions, findings
    }

    /// Keys left out fall back to `standard`; unknown keys are rejected.
    public init(from decoder: any Decoder) throws {
        try StrictKeys.check(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SpecialtyRules.standard
        modalityPreference = try c.decodeIfPresent([String].self, forKey: .modalityPreference) ?? d.modalityPreference
        modalities = try c.decodeIfPresent([ModalityPoolRule].self, forKey: .modalities) ?? d.modalities
        otherModalityPool = try c.decodeIfPresent(String.self, forKey: .otherModalityPool) ?? d.otherModalityPool
        generalistRegion = try c.decodeIfPresent(String.self, forKey: .generalistRegion) ?? d.generalistRegion
        ignoredTerms = try c.decodeIfPresent([String].self, forKey: .ignoredTerms) ?? d.ignoredTerms
        regions = try c.decodeIfPresent([RegionRule].self, forKey: .regions) ?? d.regions
        findings = try c.decodeIfPresent([FindingRule].self, forKey: .findings) ?? d.findings
    }

    /// Checks names, references between rules and that no term or code names two regions.
    public func validate() throws(SpecialtyRulesError) {
        _ = try SpecialtyDeriver(rules: self)
    }
}

/// Name forms the rules accept; they match what `Specialty` normalises to, so a name in
/// the config is exactly the text of the pool it produces.
enum RuleNames {
    static func isPool(_ text: String) -> Bool {
        (1...24).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    static func isRegion(_ text: String) -> Bool {
        (1...24).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_") }
    }

    /// DICOM CS values: upper case letters, digits, space and underscore, at most 16.
    static func isModality(_ text: String) -> Bool {
        (1...16).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_" || $0 == " ") }
    }

    static func isFinding(_ text: String) -> Bool {
        (1...64).contains(text.count) && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }
}

/// Rejects keys a rules object does not define, naming the path, so a typo such as `term`
/// for `terms` fails at load instead of silently dropping every term of a region.
enum StrictKeys {
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    static func check<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _ keys: Keys.Type) throws {
        let known = Set(Keys.allCases.map(\.stringValue))
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) where !known.contains(key.stringValue) {
            throw SpecialtyRulesError(.unknownKey, path: path(decoder.codingPath),
                                      "unknown key '\(key.stringValue)'; expected one of \(Keys.allCases.map(\.stringValue).joined(separator: ", "))")
        }
    }

    /// `specialtyRules.regions[2].terms`, from a decoder's coding path.
    static func path(_ codingPath: [any CodingKey]) -> String {
        // Decoded on its own the section has no key of its own; name it as in the file.
        var text = codingPath.first?.stringValue == "specialtyRules" ? "" : "specialtyRules"
        for key in codingPath {
            if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
        }
        return text
    }
}
