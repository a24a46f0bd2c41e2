import Foundation
import GridContract
import Testing
@testable import Routing

@Suite struct SpecialtyTests {
    @Test func parsesNormalisesAndWidens() throws {
        let spec = try Specialty("ct/Head/Neuro")
        #expect(spec.description == "CT/head/neuro")
        #expect(spec.maxLevel == 2)
        #expect(spec.widened(to: 1).description == "CT/head")
        #expect(spec.widened(to: 2).description == "CT")
        #expect(spec.widened(to: 9).description == "CT")
        #expect(spec.lineage.map(\.description) == ["CT/head/neuro", "CT/head", "CT"])
        #expect(spec.covers(try Specialty("CT/head")))
        #expect(!(try Specialty("CT/head")).covers(spec))
        #expect(!(try Specialty("MR/head/neuro")).covers(spec))
        #expect(throws: RoutingError.self) { try Specialty("CT//neuro") }
        #expect(throws: RoutingError.self) { try Specialty("CT/head/neuro/extra") }
    }

    @Test func derivesFromStudyAndFindings() throws {
        #expect(try SpecialtyDerivation.specialty(modality: "CT", bodyPart: "HEAD", findings: []).description == "CT/head/neuro")
        #expect(try SpecialtyDerivation.specialty(modality: "CR", bodyPart: "CHEST", findings: []).description == "CR/chest")
        #expect(try SpecialtyDerivation.specialty(modality: "CR", bodyPart: "CHEST", findings: ["nodule"]).description == "CR/chest/thoracic")
        #expect(try SpecialtyDerivation.specialty(modality: "MR", bodyPart: "KNEE", findings: []).description == "MR/msk")
        #expect(try SpecialtyDerivation.specialty(modality: "DX", bodyPart: "WRIST", findings: ["fracture"]).description == "CR/msk/trauma")
        #expect(try SpecialtyDerivation.specialty(modality: "MG", bodyPart: "", findings: []).description == "MG/breast")
        let request = try CaseRequest.derive(id: "C1", modality: "MR", bodyPart: "BRAIN", seriesCount: 9, site: "H001", priority: .urgent)
        #expect(request.specialty.description == "MR/head/neuro")
        #expect(request.weight == 4 + 2)
        #expect(WeightTable.standard.weight(modality: "CR", seriesCount: 1) == 1)
        #expect(WeightTable.standard.weight(modality: "PT", seriesCount: 400) == 12)
    }

    @Test func configDefaultsAndValidation() throws {
        let decoded = try JSONDecoder().decode(RoutingConfig.self, from: Data(#"{"acceptTimeoutSeconds": 60}"#.utf8))
        #expect(decoded.acceptTimeoutSeconds == 60)
        #expect(decoded.slaMilliseconds(.stat) == 30 * 60_000)
        var bad = RoutingConfig.standard
        bad.widenAtFractions = [0.9, 0.2]
        #expect(throws: RoutingError.self) { try bad.validate() }
        let shipped = RoutingPaths.packageRoot.appendingPathComponent("Ops/routing.json")
        if FileManager.default.fileExists(atPath: shipped.path) {
            #expect(try RoutingConfig.load(path: shipped.path) == RoutingConfig.standard)
        }
        // The pull policy (least work in hand, one case in hand at a time) differs in exactly those two.
        let pull = RoutingPaths.packageRoot.appendingPathComponent("Ops/routing-pull.json")
        var expected = RoutingConfig.standard
        expected.balanceBy = .load
        expected.maxOpenCases = 1
        #expect(try RoutingConfig.load(path: pull.path) == expected)
    }
}

enum RoutingPaths {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }
}

@Suite struct ShiftTests {
    static func ms(_ text: String) -> Int64 {
        Int64(ISO8601DateFormatter().date(from: text)!.timeIntervalSince1970 * 1000)
    }

    @Test func parsesAndPrints() throws {
        #expect(try ShiftWindow("Mon-Fri 08:00-16:00").days == Set(1...5))
        #expect(try ShiftWindow("Fri-Mon 08:00-16:00").days == [5, 6, 7, 1])
        #expect(try ShiftWindow("sat,sun 09:00-13:00").description == "Sat-Sun 09:00-13:00")
        #expect(try ShiftWindow("Daily 22:00-06:00").description == "Daily 22:00-06:00")
        #expect(throws: RoutingError.self) { try ShiftWindow("Mon-Fri 8-16") }
        #expect(throws: RoutingError.self) { try ShiftWindow("Funday 08:00-16:00") }
        #expect(throws: RoutingError.self) { try ShiftWindow("Mon 25:00-26:00") }
    }

    @Test func timeZoneAwareBoundaries() throws {
        let shifts = [try ShiftWindow("Mon-Fri 09:00-17:00")]
        // 2026-11-23 is a Monday; New York is UTC-5 in November.
        let before = ShiftSchedule.status(shifts, timeZone: "America/New_York", at: Self.ms("2026-11-23T13:59:00Z"))
        #expect(!before.onShift)
        #expect(before.nextChange == Self.ms("2026-11-23T14:00:00Z"))
        let during = ShiftSchedule.status(shifts, timeZone: "America/New_York", at: Self.ms("2026-11-23T14:00:00Z"))
        #expect(during.onShift)
        #expect(during.until == Self.ms("2026-11-23T22:00:00Z"))
        // Same wall-clock shift in Berlin (UTC+1) is six hours earlier in UTC.
        let berlin = ShiftSchedule.status(shifts, timeZone: "Europe/Berlin", at: Self.ms("2026-11-23T08:30:00Z"))
        #expect(berlin.onShift && berlin.until == Self.ms("2026-11-23T16:00:00Z"))
        // Saturday: off until Monday 09:00 local.
        let weekend = ShiftSchedule.status(shifts, timeZone: "America/New_York", at: Self.ms("2026-11-28T15:00:00Z"))
        #expect(!weekend.onShift && weekend.nextChange == Self.ms("2026-11-30T14:00:00Z"))
    }

    @Test func overnightAndDaylightSaving() throws {
        let night = [try ShiftWindow("Daily 22:00-06:00")]
        let status = ShiftSchedule.status(night, timeZone: "Asia/Kolkata", at: Self.ms("2026-11-23T20:00:00Z")) // 01:30 IST
        #expect(status.onShift && status.until == Self.ms("2026-11-24T00:30:00Z"))
        // Europe/Berlin leaves DST on 2026-10-25: a 08:00 shift starts at 07:00Z instead of 06:00Z.
        let day = [try ShiftWindow("Daily 08:00-09:00")]
        #expect(ShiftSchedule.status(day, timeZone: "Europe/Berlin", at: Self.ms("2026-10-24T06:30:00Z")).onShift)
        #expect(!ShiftSchedule.status(day, timeZone: "Europe/Berlin", at: Self.ms("2026-10-26T06:30:00Z")).onShift)
        #expect(ShiftSchedule.status(day, timeZone: "Europe/Berlin", at: Self.ms("2026-10-26T07:30:00Z")).onShift)
        #expect(ShiftSchedule.status([], timeZone: "UTC", at: 0).onShift)
    }

    @Test func availabilityCombinesPresenceHeartbeatAndShift() throws {
        let expert = Expert(id: "E1", name: "Dr. A", specialties: [try Specialty("CR/chest")],
                            credentials: [Credential(scope: "H001", expires: Self.ms("2026-11-23T15:00:00Z"))], capacity: 10,
                            timeZone: "America/New_York", shifts: [try ShiftWindow("Mon-Fri 09:00-17:00")], licence: Licence(number: "L-1"), practiceSince: 0)
        let now = Self.ms("2026-11-23T14:30:00Z")
        let online = Availability.compute(expert: expert, presence: .online, heartbeatUntil: now + 120_000, now: now, rules: .standard)
        #expect(online.until == now + 120_000)
        #expect(online.nextCheck == now + 120_000)
        let away = Availability.compute(expert: expert, presence: .away, heartbeatUntil: now + 120_000, now: now, rules: .standard)
        #expect(away.until == 0)
        let long = Availability.compute(expert: expert, presence: .online, heartbeatUntil: now + 86_400_000, now: now, rules: .standard)
        #expect(long.until == Self.ms("2026-11-23T22:00:00Z"))
        #expect(long.nextCheck == Self.ms("2026-11-23T15:00:00Z")) // credential expiry comes first
    }

    @Test func qualificationNeedsAValidLicenceAndYearsOfPractice() throws {
        let now = Self.ms("2026-11-23T14:30:00Z")
        var expert = Expert(id: "E1", name: "Dr. A", specialties: [try Specialty("CT/head/neuro")], credentials: [Credential(scope: "H001")],
                            capacity: 10, licence: Licence(number: "110-2", expires: Self.ms("2026-11-23T16:00:00Z")),
                            practiceSince: Self.ms("2023-11-24T00:00:00Z"))
        // Two days short of three years: not yet; the answer changes on the anniversary.
        var result = expert.qualification(at: now, rules: .standard)
        #expect(result.failures == [.practiceYears])
        #expect(result.changesAt == Self.ms("2026-11-24T00:00:00Z") || result.changesAt == Self.ms("2026-11-23T16:00:00Z"))
        #expect(expert.practiceYears(at: now) == 2)
        #expect(expert.qualification(at: now, rules: QualificationRules(requireLicence: true, minPracticeYears: 2)).failures.isEmpty)
        expert.practiceSince = Self.ms("2020-01-01T00:00:00Z")
        result = expert.qualification(at: now, rules: .standard)
        #expect(result.failures.isEmpty)
        #expect(result.changesAt == Self.ms("2026-11-23T16:00:00Z"))
        // Availability ends when the licence lapses, even inside a shift and heartbeat.
        let online = Availability.compute(expert: expert, presence: .online, heartbeatUntil: now + 86_400_000, now: now, rules: .standard)
        #expect(online.until == Self.ms("2026-11-23T16:00:00Z"))
        #expect(expert.qualification(at: Self.ms("2026-11-23T16:00:00Z"), rules: .standard).failures == [.licenceExpired])
        expert.licence = nil
        #expect(expert.qualification(at: now, rules: .standard).failures == [.licenceMissing])
        #expect(Availability.compute(expert: expert, presence: .online, heartbeatUntil: now + 60_000, now: now, rules: .standard).until == 0)
        #expect(expert.qualification(at: now, rules: QualificationRules(requireLicence: false, minPracticeYears: 3)).failures.isEmpty)
        expert.practiceSince = nil
        #expect(expert.qualification(at: now, rules: QualificationRules(requireLicence: false, minPracticeYears: 3)).failures == [.practiceUnknown])
        expert.suspended = true
        #expect(expert.qualification(at: now, rules: QualificationRules(requireLicence: false, minPracticeYears: 0)).failures == [.suspended])
    }

    @Test func aSubspecialtySuspensionRemovesOnlyThatPoolAndBelow() throws {
        var expert = Expert(id: "E1", name: "Dr. A", specialties: [try Specialty("CT/head/neuro")], credentials: [Credential(scope: "H001")],
                            capacity: 10, licence: Licence(number: "110-2"), practiceSince: 0)
        #expect(expert.poolNames.count == 3)
        expert.suspendedSpecialties = [try Specialty("CT/head/neuro")]
        #expect(expert.poolNames == ["CT/head@H001", "CT@H001"])
        #expect(!expert.qualifies(for: try Specialty("CT/head/neuro")))
        #expect(expert.qualifies(for: try Specialty("CT/head")))
    }

    @Test func rosterCarriesQualificationColumnsBothWays() throws {
        let csv = """
        id,name,specialties,credentials,capacity,time_zone,shifts,home_site,licence,licence_expires,title,practice_since,suspended,suspended_for
        E1,Dr. A,CT/head/neuro,H001,10,UTC,,,110-22,2030-06-30,主任医师,2015-03-01,no,CT/head/neuro
        E2,Dr. B,CR/chest,H001,10,UTC,,,,,,,yes,
        """
        let experts = try RosterCodec.parseCSV(csv)
        #expect(experts[0].licence == Licence(number: "110-22", expires: Self.ms("2030-07-01T00:00:00Z")))
        #expect(experts[0].practiceSince == Self.ms("2015-03-01T00:00:00Z"))
        #expect(experts[0].title == "主任医师")
        #expect(experts[0].suspendedSpecialties == [try Specialty("CT/head/neuro")])
        #expect(experts[1].licence == nil && experts[1].suspended)
        #expect(try RosterCodec.parseCSV(RosterCodec.csv(experts)) == experts)
        #expect(try RosterCodec.parseJSON(Data(RosterCodec.json(experts).utf8)) == experts)
        let bad = "id,name,specialties,credentials,capacity,time_zone,licence,licence_expires,practice_since,suspended\nE1,Dr. A,CR/chest,H001,10,UTC,110-1,2030-13-01,yesterday,maybe\n"
        #expect(throws: RosterImportError.self) { try RosterCodec.parseCSV(bad) }
        do { _ = try RosterCodec.parseCSV(bad) } catch let error as RosterImportError {
            #expect(Set(error.issues.map(\.field)) == ["licence_expires", "practice_since", "suspended"])
        }
        // Profiles stored before these fields existed still decode, as unlicensed.
        let old = #"{"id":"E9","name":"Dr. Old","specialties":["CR"],"credentials":[{"scope":"H001"}],"capacity":5,"timeZone":"UTC","shifts":[]}"#
        let decoded = try JSONDecoder().decode(Expert.self, from: Data(old.utf8))
        #expect(decoded.licence == nil && !decoded.suspended)
    }
}

@Suite struct RosterCodecTests {
    static let header = "id,name,specialties,credentials,capacity,time_zone,shifts,home_site\n"

    @Test func csvRoundTrip() throws {
        let experts = RosterGenerator.generate(count: 50, seed: 7)
        let parsed = try RosterCodec.parseCSV(RosterCodec.csv(experts))
        #expect(parsed == experts)
        let fromJSON = try RosterCodec.parseJSON(Data(RosterCodec.json(experts).utf8))
        #expect(fromJSON == experts)
    }

    @Test func csvValidationNamesRowAndField() throws {
        let text = Self.header + """
        E1,Dr. A,CT/head/neuro,H001,20,Europe/Berlin,Mon-Fri 08:00-16:00,H002
        E2,Dr. B,CT//x,H001,abc,Mars/Olympus,Mon-Fri 8-16,
        E1,"Dr. C, PhD",MR/msk,H001@2027-13-01,10,UTC,,
        E4,Dr. D,CR/chest,,10,UTC,,
        E5,Dr. E,CR/chest,H001
        """
        do {
            _ = try RosterCodec.parseCSV(text)
            Issue.record("invalid roster was accepted")
        } catch let error as RosterImportError {
            let found = Set(error.issues.map { "\($0.row):\($0.field)" })
            #expect(found.isSuperset(of: ["3:specialties", "3:capacity", "3:time_zone", "3:shifts", "4:id", "4:credentials", "5:credentials", "6:row"]))
            #expect(!found.contains { $0.hasPrefix("2:") })
            #expect(error.code == "routing.rosterInvalid")
            #expect(error.message.contains("row 3, field capacity"))
        }
    }

    @Test func quotedFieldsAndMissingColumns() throws {
        let ok = try RosterCodec.parseCSV(Self.header + "E1,\"Dr. \"\"Q\"\", MD\",CR/chest;MR/msk,region:EU-N@2027-06-30,15,UTC,Daily 22:00-06:00,\n")
        #expect(ok[0].name == "Dr. \"Q\", MD")
        #expect(ok[0].specialties.count == 2)
        #expect(ok[0].credentials[0].expires == ShiftTests.ms("2027-07-01T00:00:00Z"))
        #expect(throws: RosterImportError.self) { try RosterCodec.parseCSV("id,name\nE1,x\n") }
        #expect(throws: RosterImportError.self) { try RosterCodec.parseJSON(Data(#"[{"id": "E1", "capacity": 0}]"#.utf8)) }
    }

    @Test func generatorIsDeterministicAndRealistic() throws {
        let a = RosterGenerator.generate(count: 600, seed: 42)
        let b = RosterGenerator.generate(count: 600, seed: 42)
        let c = RosterGenerator.generate(count: 600, seed: 43)
        #expect(a == b)
        #expect(a != c)
        #expect(Set(a.map(\.id)).count == 600)
        for expert in a { try expert.validate() }
        let groups = Set(a.flatMap { $0.specialties.map { $0.description } })
        #expect(groups.contains("CT/head/neuro") && groups.contains("MG/breast") && groups.contains("CR/chest"))
        #expect(Set(a.map(\.timeZone)).count >= 8)
        #expect(a.contains { $0.shifts.isEmpty } && a.contains { !$0.shifts.isEmpty })
    }
}
