import Foundation

/// A weekly shift window in the expert's local time: `Mon-Fri 08:00-16:00`,
/// `Sat,Sun 09:00-13:00`, `Daily 22:00-06:00` (an end before the start runs past midnight).
public struct ShiftWindow: Sendable, Hashable, Codable, CustomStringConvertible {
    /// ISO weekdays, 1 = Monday ... 7 = Sunday: the day the window starts.
    public var days: Set<Int>
    public var startMinute: Int
    public var endMinute: Int

    static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

    public init(days: Set<Int>, startMinute: Int, endMinute: Int) {
        self.days = days
        self.startMinute = startMinute
        self.endMinute = endMinute
    }

    public init(_ text: String) throws(RoutingError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2 else { throw .invalid("shift must look like 'Mon-Fri 08:00-16:00'") }
        var days = Set<Int>()
        let dayText = parts[0].lowercased()
        if dayText == "daily" {
            days = Set(1...7)
        } else {
            for item in dayText.split(separator: ",") {
                let range = item.split(separator: "-").map(String.init)
                guard (1...2).contains(range.count),
                      let first = Self.dayNames.firstIndex(of: range[0]),
                      let last = Self.dayNames.firstIndex(of: range.last!) else {
                    throw .invalid("shift days must be Mon..Sun, ranges like Mon-Fri, lists like Sat,Sun, or Daily")
                }
                var day = first
                while true {
                    days.insert(day + 1)
                    if day == last { break }
                    day = (day + 1) % 7
                }
            }
        }
        let times = parts[1].split(separator: "-").map(String.init)
        guard times.count == 2, let start = Self.minutes(times[0]), let end = Self.minutes(times[1]) else {
            throw .invalid("shift times must be HH:MM-HH:MM")
        }
        guard start != end else { throw .invalid("shift start and end must differ") }
        self.days = days
        self.startMinute = start
        self.endMinute = end
    }

    static func minutes(_ text: String) -> Int? {
        let hm = text.split(separator: ":")
        guard hm.count == 2, hm[0].count == 2, hm[1].count == 2, let h = Int(hm[0]), let m = Int(hm[1]),
              (0...24).contains(h), (0...59).contains(m), h * 60 + m <= 1440 else { return nil }
        return h * 60 + m
    }

    public var description: String {
        let sorted = days.sorted()
        let dayText: String
        if sorted == Array(1...7) {
            dayText = "Daily"
        } else {
            // Compress consecutive runs: Mon-Fri,Sun.
            var runs: [String] = []
            var index = 0
            while index < sorted.count {
                var end = index
                while end + 1 < sorted.count && sorted[end + 1] == sorted[end] + 1 { end += 1 }
                let name = { (day: Int) in Self.dayNames[day - 1].capitalized }
                runs.append(end > index ? "\(name(sorted[index]))-\(name(sorted[end]))" : name(sorted[index]))
                index = end + 1
            }
            dayText = runs.joined(separator: ",")
        }
        func hm(_ minutes: Int) -> String {
            let h = minutes / 60, m = minutes % 60
            return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
        }
        return "\(dayText) \(hm(startMinute))-\(hm(endMinute))"
    }

    public init(from decoder: any Decoder) throws {
        self = try ShiftWindow(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Shift arithmetic in the expert's time zone (DST-aware through Foundation's calendar).
public enum ShiftSchedule {
    /// Shift intervals `[start, end)` in epoch milliseconds that touch the days around `now`.
    static func intervals(_ shifts: [ShiftWindow], timeZone: String, around now: Int64, daysAhead: Int = 8) -> [(Int64, Int64)] {
        guard let zone = TimeZone(identifier: timeZone) else { return [] }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let nowDate = Date(timeIntervalSince1970: Double(now) / 1000)
        let today = calendar.startOfDay(for: nowDate)
        var result: [(Int64, Int64)] = []
        for offset in -1...daysAhead {
            guard let day = calendar.date(byAdding: .day, value: offset, to: today) else { continue }
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            // Foundation: 1 = Sunday; ISO: 1 = Monday.
            let iso = ((parts.weekday ?? 1) + 5) % 7 + 1
            for shift in shifts where shift.days.contains(iso) {
                guard let start = localTime(calendar, parts, minute: shift.startMinute) else { continue }
                var endParts = parts
                if shift.endMinute <= shift.startMinute, let next = calendar.date(byAdding: .day, value: 1, to: day) {
                    endParts = calendar.dateComponents([.year, .month, .day], from: next)
                }
                guard let end = localTime(calendar, endParts, minute: shift.endMinute) else { continue }
                result.append((Int64((start.timeIntervalSince1970 * 1000).rounded()), Int64((end.timeIntervalSince1970 * 1000).rounded())))
            }
        }
        return result.sorted { $0.0 < $1.0 }
    }

    private static func localTime(_ calendar: Calendar, _ day: DateComponents, minute: Int) -> Date? {
        var components = DateComponents()
        components.year = day.year
        components.month = day.month
        components.day = day.day
        components.hour = 0
        components.minute = 0
        guard let midnight = calendar.date(from: components) else { return nil }
        // Adding hours/minutes through the calendar keeps wall-clock meaning across DST.
        return calendar.date(byAdding: .minute, value: minute, to: midnight)
    }

    /// Whether the expert is on shift at `now`, until when (end of the current merged
    /// window), and when the next change happens.
    public static func status(_ shifts: [ShiftWindow], timeZone: String, at now: Int64) -> (onShift: Bool, until: Int64?, nextChange: Int64?) {
        if shifts.isEmpty { return (true, nil, nil) }
        let spans = intervals(shifts, timeZone: timeZone, around: now)
        // Merge overlapping or touching intervals.
        var merged: [(Int64, Int64)] = []
        for span in spans {
            if let last = merged.last, span.0 <= last.1 {
                merged[merged.count - 1].1 = max(last.1, span.1)
            } else {
                merged.append(span)
            }
        }
        if let current = merged.first(where: { $0.0 <= now && now < $0.1 }) {
            return (true, current.1, current.1)
        }
        let next = merged.first(where: { $0.0 > now })?.0
        return (false, nil, next)
    }
}

/// What the sweeper computes for one expert: available until when (0 = not available),
/// and when to look again.
public struct Availability: Sendable, Hashable {
    public var until: Int64
    public var nextCheck: Int64

    /// `until` = min(heartbeat expiry, end of the current shift, licence expiry) when online,
    /// on shift and qualified (`QualificationRules`); the next check is the earliest of shift
    /// change, heartbeat expiry, credential expiry and the qualification changing.
    public static func compute(expert: Expert, presence: Presence, heartbeatUntil: Int64, now: Int64,
                               rules: QualificationRules) -> Availability {
        let shift = ShiftSchedule.status(expert.shifts, timeZone: expert.timeZone, at: now)
        let qualification = expert.qualification(at: now, rules: rules)
        var until: Int64 = 0
        var next: Int64 = now + 6 * 3_600_000
        if presence == .online, heartbeatUntil > now, shift.onShift, qualification.failures.isEmpty {
            until = min(heartbeatUntil, shift.until ?? Int64.max)
            // The licence lapsing ends availability at that instant: the assign script prunes
            // on `until`, so no offer slips through between two sweeps.
            if rules.requireLicence, let expires = expert.licence?.expires { until = min(until, expires) }
            next = min(next, heartbeatUntil)
        }
        if let change = shift.nextChange { next = min(next, change) }
        if let change = qualification.changesAt { next = min(next, change) }
        for credential in expert.credentials {
            if let expires = credential.expires, expires > now { next = min(next, expires) }
        }
        if until == Int64.max { until = heartbeatUntil }
        return Availability(until: until, nextCheck: max(next, now + 1))
    }
}
