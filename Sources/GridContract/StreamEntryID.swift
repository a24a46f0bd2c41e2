/// A Redis stream entry id (`<ms>-<seq>`), ordered as Redis orders them. The coordinator
/// remembers the id of the last router event it applied to a study, so a replayed or
/// reordered older event changes nothing.
public struct StreamEntryID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let milliseconds: UInt64
    public let sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    /// Parses `<ms>-<seq>` (or a bare `<ms>`); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let ms = UInt64(parts[0]) else { return nil }
        if parts.count == 2 {
            guard let seq = UInt64(parts[1]) else { return nil }
            self.init(milliseconds: ms, sequence: seq)
        } else {
            self.init(milliseconds: ms, sequence: 0)
        }
    }

    public static let zero = StreamEntryID(milliseconds: 0, sequence: 0)

    public var description: String { "\(milliseconds)-\(sequence)" }

    public static func < (a: StreamEntryID, b: StreamEntryID) -> Bool {
        (a.milliseconds, a.sequence) < (b.milliseconds, b.sequence)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = StreamEntryID(text) else { throw ContractError(.invalidEvent, "malformed stream entry id") }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
