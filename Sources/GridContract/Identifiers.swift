/// A typed identifier that travels between processes: validated once where it enters the
/// grid, then passed around as its own type (never as a bare string parsed again).
/// Encodes as a plain JSON string.
public protocol GridIdentifier: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    var rawValue: String { get }
    /// Wraps text already known to be valid (read back from the grid's own records).
    init(unchecked rawValue: String)
    /// Throws `contract.invalidIdentifier` naming the field when `text` is not valid.
    static func validate(_ text: String) throws(ContractError)
}

extension GridIdentifier {
    /// Validates `text`.
    public init(_ text: String) throws(ContractError) {
        try Self.validate(text)
        self.init(unchecked: text)
    }

    public var description: String { rawValue }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

enum IdentifierRules {
    /// DICOM UIDs: digits and dots, at most 64 characters (PS3.5 9.1).
    static func dicomUID(_ text: String, _ name: String) throws(ContractError) {
        guard !text.isEmpty, text.utf8.count <= 64,
              text.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            throw ContractError(.invalidIdentifier, "\(name) is not a valid DICOM UID (digits and dots, at most 64 characters)")
        }
    }

    /// Codes the grid assigns or configures: 1-64 ASCII letters, digits and `extra`.
    static func code(_ text: String, _ name: String, extra: String) throws(ContractError) {
        guard !text.isEmpty, text.utf8.count <= 64, text.utf8.allSatisfy({ byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || extra.utf8.contains(byte)
        }) else {
            throw ContractError(.invalidIdentifier, "\(name) must be 1-64 letters, digits or \(extra.map { "'\($0)'" }.joined(separator: " "))")
        }
    }
}

/// Study Instance UID (0020,000D).
public struct StudyUID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.dicomUID(text, "StudyInstanceUID") }
}

/// Series Instance UID (0020,000E).
public struct SeriesUID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.dicomUID(text, "SeriesInstanceUID") }
}

/// SOP Instance UID (0008,0018).
public struct SOPInstanceUID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.dicomUID(text, "SOPInstanceUID") }
}

/// A sending site (hospital, imaging centre): `H001`.
public struct SiteID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.code(text, "site code", extra: "-_") }
}

/// An imaging expert of the roster: `E00042`.
public struct ExpertID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.code(text, "expert id", extra: "-_.") }
}

/// The router's case for a study: opaque (a digest of the study UID, so routing data never
/// carries the UID) and stable, so a repeated hand-off is a duplicate submit.
public struct CaseID: GridIdentifier {
    public let rawValue: String
    public init(unchecked rawValue: String) { self.rawValue = rawValue }
    public static func validate(_ text: String) throws(ContractError) { try IdentifierRules.code(text, "case id", extra: "-_.") }
}
