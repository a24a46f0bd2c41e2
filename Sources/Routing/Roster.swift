import Foundation
import RadGridCore

/// One problem in an imported roster: the row (CSV line number counting the header as 1,
/// or JSON entry number from 1), the field and what is wrong.
public struct RosterIssue: Sendable, Hashable, CustomStringConvertible {
    public var row: Int
    public var field: String
    public var message: String

    public var description: String { "row \(row), field \(field): \(message)" }
}

/// A roster that failed validation; nothing was imported.
public struct RosterImportError: CodedError {
    public let issues: [RosterIssue]
    public var code: String { "routing.rosterInvalid" }
    public var message: String {
        let shown = issues.prefix(20).map(\.description).joined(separator: "; ")
        return "\(issues.count) problem(s) in the roster: \(shown)" + (issues.count > 20 ? "; ..." : "")
    }
}

/// CSV and JSON import/export of the roster.
///
/// CSV columns: `id,name,specialties,credentials,capacity,time_zone,shifts,home_site,licence,
/// licence_expires,title,practice_since,suspended,suspended_for` (the last eight may be left
/// out). Lists are `;`-separated: specialties `CT/head/neuro;MR/head/neuro`, credentials
/// `H001;H002@2027-06-30;region:EU-N` (`@date` = valid through that UTC day, or an ISO 8601
/// instant), shifts `Mon-Fri 08:00-16:00;Sat 09:00-13:00`. `licence_expires` is a date like a
/// credential's, `practice_since` the UTC day independent practice began, `suspended` yes/no,
/// `suspended_for` specialties (QC suspensions). JSON: an array of objects with the same field
/// names, lists as arrays or `;` strings.
public enum RosterCodec {
    public static let columns = ["id", "name", "specialties", "credentials", "capacity", "time_zone", "shifts", "home_site",
                                 "licence", "licence_expires", "title", "practice_since", "suspended", "suspended_for"]
    /// Columns an older roster may leave out.
    static let optionalColumns: Set<String> = ["shifts", "home_site", "licence", "licence_expires", "title", "practice_since",
                                                "suspended", "suspended_for"]

    // MARK: Import

    public static func parse(data: Data, format: String) throws -> [Expert] {
        switch format.lowercased() {
        case "csv": return try parseCSV(String(decoding: data, as: UTF8.self))
        case "json": return try parseJSON(data)
        default: throw RoutingError.invalid("format must be csv or json")
        }
    }

    public static func parseCSV(_ text: String) throws -> [Expert] {
        let rows = csvRows(text)
        guard let header = rows.first else { throw RosterImportError(issues: [RosterIssue(row: 1, field: "header", message: "empty file")]) }
        let names = header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var issues: [RosterIssue] = []
        for required in columns where !optionalColumns.contains(required) && !names.contains(required) {
            issues.append(RosterIssue(row: 1, field: required, message: "missing column"))
        }
        if !issues.isEmpty { throw RosterImportError(issues: issues) }
        var records: [(Int, [String: String])] = []
        for (index, row) in rows.enumerated().dropFirst() {
            if row.count == 1 && row[0].trimmingCharacters(in: .whitespaces).isEmpty { continue }
            if row.count != names.count {
                issues.append(RosterIssue(row: index + 1, field: "row", message: "has \(row.count) fields, header has \(names.count)"))
                continue
            }
            records.append((index + 1, Dictionary(zip(names, row), uniquingKeysWith: { a, _ in a })))
        }
        return try build(records, issues: issues)
    }

    public static func parseJSON(_ data: Data) throws -> [Expert] {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw RosterImportError(issues: [RosterIssue(row: 0, field: "json", message: "not valid JSON")])
        }
        guard let array = object as? [[String: Any]] else {
            throw RosterImportError(issues: [RosterIssue(row: 0, field: "json", message: "expected an array of objects")])
        }
        var records: [(Int, [String: String])] = []
        for (index, item) in array.enumerated() {
            var record: [String: String] = [:]
            for (key, value) in item {
                switch value {
                case let list as [Any]: record[key] = list.map { "\($0)" }.joined(separator: ";")
                case let number as NSNumber: record[key] = number.stringValue
                case let text as String: record[key] = text
                case is NSNull: break
                default: record[key] = "\(value)"
                }
            }
            records.append((index + 1, record))
        }
        return try build(records, issues: [])
    }

    static func build(_ records: [(Int, [String: String])], issues initial: [RosterIssue]) throws -> [Expert] {
        var issues = initial
        var experts: [Expert] = []
        var seen: [String: Int] = [:]
        for (row, record) in records {
            var rowIssues: [RosterIssue] = []
            func issue(_ field: String, _ message: String) { rowIssues.append(RosterIssue(row: row, field: field, message: message)) }
            func value(_ field: String) -> String { (record[field] ?? "").trimmingCharacters(in: .whitespaces) }
            func list(_ field: String) -> [String] {
                value(field).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            let id = value("id")
            do { try Expert.validateID(id, field: "id") } catch { issue("id", "1-64 letters, digits, - _ .") }
            if let first = seen[id], !id.isEmpty { issue("id", "duplicate of row \(first)") } else { seen[id] = row }
            let name = value("name")
            if name.isEmpty || name.count > 120 { issue("name", "1-120 characters") }
            var specialties: [Specialty] = []
            for text in list("specialties") {
                do { specialties.append(try Specialty(text)) } catch { issue("specialties", "'\(text)': \(error.message)") }
            }
            if list("specialties").isEmpty { issue("specialties", "at least one, e.g. CT/head/neuro") }
            var credentials: [Credential] = []
            for text in list("credentials") {
                let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
                var expires: Int64?
                if parts.count == 2 {
                    guard let parsed = parseExpiry(parts[1]) else { issue("credentials", "'\(text)': expiry must be YYYY-MM-DD or ISO 8601"); continue }
                    expires = parsed
                }
                do {
                    try Credential.validateScope(parts[0])
                    credentials.append(Credential(scope: parts[0], expires: expires))
                } catch { issue("credentials", "'\(parts[0])': \(error.message)") }
            }
            if list("credentials").isEmpty { issue("credentials", "at least one site or region:NAME") }
            if Set(credentials.map(\.scope)).count != credentials.count { issue("credentials", "a scope is listed twice") }
            let capacity = Int(value("capacity"))
            if capacity == nil || !(1...1000).contains(capacity!) { issue("capacity", "must be an integer 1...1000, got '\(value("capacity"))'") }
            let zone = value("time_zone").isEmpty ? "UTC" : value("time_zone")
            if TimeZone(identifier: zone) == nil { issue("time_zone", "unknown time zone '\(zone)'") }
            var shifts: [ShiftWindow] = []
            for text in list("shifts") {
                do { shifts.append(try ShiftWindow(text)) } catch { issue("shifts", "'\(text)': \(error.message)") }
            }
            let home = value("home_site")
            if !home.isEmpty {
                do { try Expert.validateID(home, field: "home_site") } catch { issue("home_site", "1-64 letters, digits, - _ .") }
            }
            var licence: Licence?
            let licenceNumber = value("licence")
            if !licenceNumber.isEmpty {
                licence = Licence(number: licenceNumber)
                let expiresText = value("licence_expires")
                if !expiresText.isEmpty {
                    if let expires = parseExpiry(expiresText) { licence?.expires = expires } else { issue("licence_expires", "must be YYYY-MM-DD or ISO 8601") }
                }
                do { try licence?.validate() } catch { issue("licence", error.message) }
            } else if !value("licence_expires").isEmpty {
                issue("licence", "licence_expires given without a licence number")
            }
            let title = value("title")
            if title.count > 60 { issue("title", "at most 60 characters") }
            var practiceSince: Int64?
            let sinceText = value("practice_since")
            if !sinceText.isEmpty {
                // The expiry parser gives the end of the day; practice starts at its beginning.
                if sinceText.count == 10, let end = parseExpiry(sinceText) { practiceSince = end - 86_400_000 } else {
                    issue("practice_since", "must be YYYY-MM-DD")
                }
            }
            var suspended = false
            switch value("suspended").lowercased() {
            case "", "no", "false", "0": break
            case "yes", "true", "1": suspended = true
            default: issue("suspended", "yes or no")
            }
            var suspendedFor: [Specialty] = []
            for text in list("suspended_for") {
                do { suspendedFor.append(try Specialty(text)) } catch { issue("suspended_for", "'\(text)': \(error.message)") }
            }
            if rowIssues.isEmpty, let capacity {
                experts.append(Expert(id: id, name: name, specialties: specialties, credentials: credentials, capacity: capacity,
                                      timeZone: zone, shifts: shifts, homeSite: home.isEmpty ? nil : home,
                                      licence: licence, title: title.isEmpty ? nil : title, practiceSince: practiceSince,
                                      suspended: suspended, suspendedSpecialties: suspendedFor))
            }
            issues += rowIssues
        }
        if !issues.isEmpty { throw RosterImportError(issues: issues) }
        return experts
    }

    static func parseExpiry(_ text: String) -> Int64? {
        if text.count == 10 {
            let parts = text.split(separator: "-").compactMap { Int($0) }
            guard parts.count == 3 else { return nil }
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            guard (1...12).contains(parts[1]), (1...31).contains(parts[2]),
                  let day = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
                  calendar.component(.day, from: day) == parts[2],
                  let next = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            return Int64(next.timeIntervalSince1970 * 1000)
        }
        let formatter = ISO8601DateFormatter()
        guard let date = formatter.date(from: text) else { return nil }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    /// A UTC day, `YYYY-MM-DD`.
    static func formatDay(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func formatExpiry(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    /// RFC 4180 rows: quoted fields may hold commas, quotes ("") and newlines.
    static func csvRows(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var quoted = false
        var iterator = text.makeIterator()
        var pending: Character? = nil
        while let char = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if char == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { field.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else { field.append(char) }
            } else {
                switch char {
                case "\"" where field.isEmpty: quoted = true
                case ",": row.append(field); field = ""
                case "\n", "\r\n":
                    row.append(field); field = ""
                    rows.append(row); row = []
                case "\r": break
                default: field.append(char)
                }
            }
        }
        if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
        return rows
    }

    // MARK: Export

    static func csvField(_ text: String) -> String {
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    static func credentialText(_ credential: Credential) -> String {
        credential.expires.map { credential.scope + "@" + formatExpiry($0) } ?? credential.scope
    }

    public static func csv(_ experts: [Expert]) -> String {
        var lines = [columns.joined(separator: ",")]
        for expert in experts {
            let fields = [
                expert.id, expert.name, expert.specialties.map(\.description).joined(separator: ";"),
                expert.credentials.map(credentialText).joined(separator: ";"), String(expert.capacity), expert.timeZone,
                expert.shifts.map(\.description).joined(separator: ";"), expert.homeSite ?? "",
                expert.licence?.number ?? "", expert.licence?.expires.map(formatExpiry) ?? "", expert.title ?? "",
                expert.practiceSince.map(formatDay) ?? "", expert.suspended ? "yes" : "no",
                expert.suspendedSpecialties.map(\.description).joined(separator: ";"),
            ]
            lines.append(fields.map(csvField).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func json(_ experts: [Expert]) -> String {
        let objects: [[String: Any]] = experts.map { expert in
            var object: [String: Any] = [
                "id": expert.id, "name": expert.name, "specialties": expert.specialties.map(\.description),
                "credentials": expert.credentials.map(credentialText), "capacity": expert.capacity,
                "time_zone": expert.timeZone, "shifts": expert.shifts.map(\.description),
            ]
            if let home = expert.homeSite { object["home_site"] = home }
            if let licence = expert.licence {
                object["licence"] = licence.number
                if let expires = licence.expires { object["licence_expires"] = formatExpiry(expires) }
            }
            if let title = expert.title { object["title"] = title }
            if let since = expert.practiceSince { object["practice_since"] = formatDay(since) }
            if expert.suspended { object["suspended"] = "yes" }
            if !expert.suspendedSpecialties.isEmpty { object["suspended_for"] = expert.suspendedSpecialties.map(\.description) }
            return object
        }
        let data = (try? JSONSerialization.data(withJSONObject: objects, options: [.prettyPrinted, .sortedKeys])) ?? Data("[]".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

/// SplitMix64: small, fast, deterministic for a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A realistic demo roster, deterministic for a seed.
public enum RosterGenerator {
    public static let regions = ["EU-N", "EU-S", "US-E", "US-W", "APAC"]
    static let zones: [String: [String]] = [
        "EU-N": ["Europe/Stockholm", "Europe/Berlin", "Europe/London"],
        "EU-S": ["Europe/Madrid", "Europe/Rome", "Europe/Athens"],
        "US-E": ["America/New_York", "America/Chicago"],
        "US-W": ["America/Los_Angeles", "America/Denver"],
        "APAC": ["Asia/Singapore", "Asia/Kolkata", "Australia/Sydney"],
    ]
    /// Reading groups and the specialties their members hold, with the share of experts.
    /// Together they hold every specialty `SpecialtyRules.standard` derives — each
    /// modality's generalist pool (`CT/general`, `OT/general`, `RT/oncology`, ...), every
    /// region pool and the finding subspecialties (`CR/chest/thoracic`, `CT/msk/trauma`) —
    /// so no study waits for widening to find a reader (`SpecialtyCoverageTests`).
    public static let groups: [(name: String, share: Int, specialties: [String])] = [
        ("neuro", 13, ["CT/head/neuro", "MR/head/neuro", "CT/spine/neuro", "MR/spine/neuro"]),
        ("thoracic", 10, ["CT/chest/thoracic", "CR/chest/thoracic"]),
        ("body", 12, ["CT/abdomen/body", "MR/abdomen/body", "US/abdomen"]),
        ("msk", 10, ["MR/msk/trauma", "CR/msk/trauma", "CT/msk/trauma", "CR/spine"]),
        ("breast", 6, ["MG/breast", "US/breast", "MR/breast"]),
        ("cardiac", 5, ["CT/cardiac/cardiac", "MR/cardiac/cardiac"]),
        ("nuclear", 5, ["NM/general", "PT/general"]),
        ("interventional", 4, ["XA/general", "RF/general"]),
        ("radonc", 3, ["RT/oncology"]),
        ("cross-sectional", 10, ["CT/general", "MR/general", "US/general", "CT/head", "CT/chest", "CT/abdomen", "MR/msk"]),
        ("general", 22, ["CR/general", "CR/chest", "CR/msk", "CR/spine", "OT/general", "US/general", "US/abdomen", "CT/general",
                         "RF/general"]),
    ]
    static let firstNames = ["Anna", "Ben", "Chen", "Dara", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kavya", "Lars",
                             "Maya", "Nils", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Yara", "Zoe"]
    static let lastNames = ["Adler", "Berg", "Costa", "Diaz", "Eriksen", "Fischer", "Garcia", "Haddad", "Ivanova", "Jensen", "Kim",
                            "Larsen", "Moreau", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt", "Tanaka", "Unger", "Varga", "Weber"]
    static let titles = ["主任医师", "副主任医师", "主治医师", "Consultant", "Attending"]
    static let shiftPatterns: [(share: Int, shifts: [String])] = [
        (40, ["Mon-Fri 08:00-16:00"]), (12, ["Mon-Fri 12:00-20:00"]), (12, ["Mon-Fri 16:00-24:00"]),
        (10, ["Daily 22:00-06:00"]), (10, ["Sat,Sun 08:00-20:00", "Wed 08:00-16:00"]), (8, []), (8, ["Mon-Thu 07:00-17:00"]),
    ]
    /// 2026-01-01T00:00:00Z; generated expiries are relative to it so output is stable.
    public static let baseTime: Int64 = 1_767_225_600_000

    public static func site(_ index: Int) -> String { "H" + String(format: "%03d", index) }
    /// Sites are spread evenly over the regions.
    public static func region(ofSite site: String) -> String {
        let number = Int(site.dropFirst()) ?? 0
        return regions[number % regions.count]
    }

    /// Experts `1...staffingFloor` are one per group per region, credentialed for the whole
    /// region with no expiry and no home site (so no conflict rule excludes them): every
    /// pool is staffed at every site however the dice fall for the rest.
    public static var staffingFloor: Int { groups.count * regions.count }

    public static func generate(count: Int, seed: UInt64, sites: Int = 60) -> [Expert] {
        var rng = SeededGenerator(seed: seed)
        func pick<T>(_ items: [(share: Int, T)]) -> T {
            let total = items.reduce(0) { $0 + $1.share }
            var roll = Int.random(in: 0..<total, using: &rng)
            for item in items { if roll < item.share { return item.1 }; roll -= item.share }
            return items.last!.1
        }
        let groupItems = groups.map { (share: $0.share, $0.specialties) }
        var experts: [Expert] = []
        experts.reserveCapacity(count)
        let width = max(4, String(count).count)
        for index in 1...max(1, count) {
            let isFloor = index <= staffingFloor
            let region = isFloor ? regions[(index - 1) / groups.count] : regions[Int.random(in: 0..<regions.count, using: &rng)]
            let zone = zones[region]!.randomElement(using: &rng)!
            var specialties = Set(isFloor ? groups[(index - 1) % groups.count].specialties : pick(groupItems))
            if Int.random(in: 0..<100, using: &rng) < 30 { specialties.formUnion(pick(groupItems).prefix(2)) }
            let regionSites = (1...sites).map(Self.site).filter { Self.region(ofSite: $0) == region }
            var credentials: [Credential] = []
            func expiry() -> Int64? {
                let roll = Int.random(in: 0..<100, using: &rng)
                if roll < 3 { return baseTime + Int64(Int.random(in: 60...280, using: &rng)) * 86_400_000 }
                if roll < 15 { return baseTime + Int64(Int.random(in: 400...1400, using: &rng)) * 86_400_000 }
                return nil
            }
            if isFloor {
                credentials.append(Credential(scope: "region:" + region))
            } else if Int.random(in: 0..<100, using: &rng) < 55 {
                credentials.append(Credential(scope: "region:" + region, expires: expiry()))
            }
            let extra = Int.random(in: credentials.isEmpty ? 3...8 : 0...3, using: &rng)
            var chosen = Set<String>()
            for _ in 0..<extra {
                // Mostly sites of the own region, some elsewhere.
                let candidates = Int.random(in: 0..<100, using: &rng) < 75 ? regionSites : (1...sites).map(Self.site)
                chosen.insert(candidates.randomElement(using: &rng)!)
            }
            for site in chosen.sorted() { credentials.append(Credential(scope: site, expires: expiry())) }
            if credentials.isEmpty { credentials.append(Credential(scope: regionSites.first ?? "H001")) }
            let shifts = pick(shiftPatterns.map { (share: $0.share, $0.shifts) }).map { try! ShiftWindow($0) }
            let homeRoll = Int.random(in: 0..<100, using: &rng)
            let home: String? = !isFloor && homeRoll < 70 ? regionSites.randomElement(using: &rng) : nil
            let name = "Dr. \(firstNames.randomElement(using: &rng)!) \(lastNames.randomElement(using: &rng)!)"
            let id = "E" + String(repeating: "0", count: max(0, width - String(index).count)) + String(index)
            // Licences run 3-10 years from the base time (3 % lapse within its first year);
            // independent practice began 3-30 years before it (2 % are still short of 3 years).
            // The staffing floor always qualifies. Drawn from a generator of their own so the
            // rest of a seeded roster is what it was before these fields existed.
            var q = SeededGenerator(seed: seed ^ (UInt64(index) &* 0x2545_F491_4F6C_DD1D))
            let licenceRoll = Int.random(in: 0..<100, using: &q)
            let licenceDays = !isFloor && licenceRoll < 3 ? Int.random(in: 60...330, using: &q) : Int.random(in: 1095...3650, using: &q)
            let licence = Licence(number: String(format: "11%013d", index * 7919 % 10_000_000_000_000),
                                  expires: baseTime + Int64(licenceDays) * 86_400_000)
            let practiceRoll = Int.random(in: 0..<100, using: &q)
            let practiceDays = !isFloor && practiceRoll < 2 ? Int.random(in: 200...1000, using: &q) : Int.random(in: 1200...11000, using: &q)
            let title = titles[Int.random(in: 0..<titles.count, using: &q)]
            experts.append(Expert(id: id, name: name, specialties: specialties.sorted().map { try! Specialty($0) },
                                  credentials: credentials, capacity: Int.random(in: 12...40, using: &rng),
                                  timeZone: zone, shifts: shifts, homeSite: home, licence: licence, title: title,
                                  practiceSince: baseTime - Int64(practiceDays) * 86_400_000))
        }
        return experts
    }
}
