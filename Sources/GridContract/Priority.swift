/// How soon a study must be read. One type for the task-queue lanes, studies and router
/// cases, so nothing maps priorities by hand. Ordered most urgent first (`.stat < .urgent`).
public enum Priority: String, Sendable, Codable, CaseIterable, Comparable, CustomStringConvertible {
    case stat, urgent, routine, bulk

    /// 0 (stat) … 3 (bulk): the rank the router's scripts order by.
    public var rank: Int {
        switch self {
        case .stat: 0
        case .urgent: 1
        case .routine: 2
        case .bulk: 3
        }
    }

    /// 1 (stat) … 4 (bulk): the lane position the queue's scripts use.
    public var index: Int { rank + 1 }

    public init?(rank: Int) {
        guard (0..<Self.allCases.count).contains(rank) else { return nil }
        self = Self.allCases[rank]
    }

    public init?(index: Int) { self.init(rank: index - 1) }

    /// Case-insensitive name (`STAT`, `routine`).
    public init?(name: String) { self.init(rawValue: name.lowercased()) }

    public static func < (lhs: Priority, rhs: Priority) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }

    /// The more urgent of the two.
    public func raised(to other: Priority) -> Priority { Swift.min(self, other) }
}

extension Priority {
    /// The priority of a C-STORE request (PS3.7 9.1.1.1): HIGH → urgent, LOW → bulk,
    /// MEDIUM (or anything else) → routine. DIMSE has no STAT.
    public init(cStorePriority value: UInt16) {
        switch value {
        case 0x0001: self = .urgent
        case 0x0002: self = .bulk
        default: self = .routine
        }
    }
}
