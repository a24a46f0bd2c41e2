import GridContract
import Testing

@Suite("Grid contract: identifiers, task payloads, router events")
struct GridContractTests {
    @Test func identifiersAreValidatedWhereTheyEnter() throws {
        #expect(try StudyUID("1.2.840.10008.1").rawValue == "1.2.840.10008.1")
        for bad in ["", "1.2.a", String(repeating: "1", count: 65), "1.2 3"] {
            #expect(throws: ContractError.self) { try StudyUID(bad) }
        }
        #expect(throws: ContractError.self) { try SiteID("H 1") }
        #expect(throws: ContractError.self) { try ExpertID("") }
        #expect(try SiteID("H-001_a").rawValue == "H-001_a")
        // Messages name the field, never the value.
        do { _ = try StudyUID("1.2.PATIENT") } catch { #expect(!error.message.contains("PATIENT")) }
    }

    @Test func taskPayloadsRoundTripAndRefuseUnknownVersions() throws {
        let study = try StudyUID("1.2.3")
        let instance = GridTask.instance(InstanceTask(study: study, generation: 2, sop: try SOPInstanceUID("1.2.3.4")))
        #expect(try GridTask.decode(instance.payload()) == instance)
        #expect(instance.key == "i/1.2.3/2/1.2.3.4")
        let whole = GridTask.study(StudyTask(study: study, generation: 0, sops: [try SOPInstanceUID("1.2.3.4"), try SOPInstanceUID("1.2.3.5")]))
        #expect(try GridTask.decode(whole.payload()) == whole)
        #expect(GridTask.groupID(study: study, generation: 0) == "g/1.2.3/0")
        let future = Array(#"{"v":2,"kind":"study","study":"1.2.3","generation":0,"sops":[]}"#.utf8)
        let error = #expect(throws: ContractError.self) { try GridTask.decode(future) }
        #expect(error?.codeValue == .unsupportedVersion)
        for garbage in ["", "{", "[]", #"{"v":1}"#, #"{"v":1,"kind":"x","study":"1.2","generation":0}"#, #"{"v":1,"kind":"instance","study":"1.x","generation":0,"sop":"1"}"#,
                        #"{"v":1,"kind":"instance","study":"1.2","generation":-1,"sop":"1"}"#] {
            #expect(throws: ContractError.self) { try GridTask.decode(Array(garbage.utf8)) }
        }
    }

    @Test func routerEntriesBecomeTypedEvents() throws {
        let offer = try #require(try CaseEventEntry.parse(id: "1700000000000-3", fields: ["action": "offer", "case": "c1", "details": "expert=E7;pool=CT@H001", "t": "1700000000000"]))
        #expect(offer.event == .offered(try ExpertID("E7")))
        #expect(offer.id == StreamEntryID(milliseconds: 1_700_000_000_000, sequence: 3))
        let named = try CaseEventEntry.parse(id: "5-0", fields: ["action": "decline", "case": "c1", "expert": "E8", "details": "reason=workload"])
        #expect(named?.event == .declined(try ExpertID("E8"), reason: "workload"))
        #expect(try CaseEventEntry.parse(id: "5-0", fields: ["action": "expert_upsert", "case": "", "details": "expert=E1"]) == nil)
        #expect(throws: ContractError.self) { try CaseEventEntry.parse(id: "5-0", fields: ["action": "accept", "case": "c1"]) }
        #expect(throws: ContractError.self) { try CaseEventEntry.parse(id: "x", fields: ["action": "accept", "case": "c1"]) }
    }

    @Test func streamIdsOrderAsRedisOrdersThem() throws {
        let a = try #require(StreamEntryID("1700-9")), b = try #require(StreamEntryID("1700-10")), c = try #require(StreamEntryID("1701-0"))
        #expect(a < b && b < c)
        #expect(StreamEntryID("1700") == StreamEntryID(milliseconds: 1700, sequence: 0))
        #expect(StreamEntryID("a-1") == nil && StreamEntryID("1-2-3") == nil)
    }

    @Test func onePriorityForLanesStudiesAndCases() {
        #expect(Priority.allCases.map(\.index) == [1, 2, 3, 4])
        #expect(Priority(name: "STAT") == .stat && Priority(rank: 3) == .bulk && Priority(index: 0) == nil)
        #expect(Priority.routine.raised(to: .urgent) == .urgent && Priority.stat.raised(to: .urgent) == .stat)
        #expect(Urgency.critical.minimumPriority == .stat && Urgency.routine.minimumPriority == nil)
    }
}
