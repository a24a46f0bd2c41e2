import GridContract
import Foundation
import Testing
@testable import Routing

/// One header combination and the specialty it must route to.
struct DerivationCase: Sendable, CustomTestStringConvertible {
    let name: String
    let study: StudyDescriptors
    let specialty: String
    /// The field that decided the region (nil: none did).
    let field: SpecialtySource.Field?
    let generalist: Bool
    let noteContains: String?

    init(_ name: String, _ study: StudyDescriptors, _ specialty: String, _ field: SpecialtySource.Field?,
         generalist: Bool = false, note: String? = nil) {
        self.name = name
        self.study = study
        self.specialty = specialty
        self.field = field
        self.generalist = generalist
        self.noteContains = note
    }

    var testDescription: String { name }
}

private func study(_ modality: String = "", in modalities: [String] = [], sop: [String] = [], part: String = "",
                   description: String = "", protocolName: String = "", series: [String] = [],
                   codes: [AnatomicCode] = [], findings: [String] = []) -> StudyDescriptors {
    StudyDescriptors(modality: modality, modalitiesInStudy: modalities, sopClassUIDs: sop, bodyPartExamined: part,
                     studyDescription: description, protocolName: protocolName, seriesDescriptions: series,
                     anatomicRegionCodes: codes, findings: findings)
}

@Suite struct SpecialtyDerivationTests {
    static let english: [DerivationCase] = [
        DerivationCase("CT HEAD in BodyPartExamined", study("CT", part: "HEAD"), "CT/head/neuro", .bodyPartExamined, note: "head from BodyPartExamined 'HEAD'"),
        DerivationCase("no BodyPartExamined, 'CT HEAD W/O'", study("CT", description: "CT HEAD W/O"), "CT/head/neuro", .studyDescription),
        DerivationCase("odd case 'Thorax'", study("CT", description: "Thorax"), "CT/chest/thoracic", .studyDescription),
        DerivationCase("lower case everywhere", study("ct", part: "brain"), "CT/head/neuro", .bodyPartExamined),
        DerivationCase("'ABD/PEL' abbreviations", study("CT", description: "CT ABD/PEL W CONTRAST"), "CT/abdomen/body", .studyDescription),
        DerivationCase("'L-SPINE'", study("MR", description: "MRI L-SPINE W/O"), "MR/spine/neuro", .studyDescription),
        DerivationCase("CS defined term CSPINE on CR", study("CR", part: "CSPINE"), "CR/spine", .bodyPartExamined),
        DerivationCase("'ABDOMEN' as a word on US", study("US", description: "US ABDOMEN COMPLETE"), "US/abdomen", .studyDescription),
        DerivationCase("'HEADER' is not HEAD", study("CT", description: "HEADER TEST"), "CT/general", nil, generalist: true,
                       note: "no body part found; generalist pool"),
        DerivationCase("'HEADACHE' is not HEAD", study("CT", description: "HEADACHE PROTOCOL"), "CT/general", nil, generalist: true),
        DerivationCase("'ABDUCTION' is not ABD", study("DX", description: "ABDUCTION VIEW"), "CR/general", nil, generalist: true),
        DerivationCase("a 'Bone' kernel is no body part", study("CT", series: ["Bone 1.25mm", "Scout"]), "CT/general", nil, generalist: true),
        DerivationCase("protocol with underscores", study("MR", protocolName: "t2_tse_sag_knee"), "MR/msk", .protocolName),
        DerivationCase("series descriptions", study("CT", series: ["Scout", "Routine Brain 5mm"]), "CT/head/neuro", .seriesDescription),
        DerivationCase("'Brain-MRA'", study("MR", description: "Brain-MRA"), "MR/head/neuro", .studyDescription),
        DerivationCase("calcium scoring series", study("CT", series: ["SmartScore - Gated 0.5 sec"]), "CT/cardiac/cardiac", .seriesDescription),
        DerivationCase("phrase beats its parts", study("CT", description: "CT CHEST ABDOMEN PELVIS"), "CT/abdomen/body", .studyDescription),
        DerivationCase("'THORACIC SPINE' is spine", study("MR", description: "MR THORACIC SPINE"), "MR/spine/neuro", .studyDescription),
        DerivationCase("several regions: earliest in precedence", study("CT", description: "CT CHEST AND HEAD"), "CT/head/neuro", .studyDescription),
        DerivationCase("US breast and axilla", study("US", description: "US BREAST AND AXILLA"), "US/breast", .studyDescription),
        DerivationCase("C-ARM is not an arm", study("CT", description: "C-ARM CT"), "CT/general", nil, generalist: true),
        DerivationCase("accents folded: Schädel", study("CT", description: "Schädel nativ"), "CT/head/neuro", .studyDescription),
        DerivationCase("accents folded: IRM GENOU", study("MR", description: "IRM GENOU DROIT"), "MR/msk", .studyDescription),
    ]

    static let chinese: [DerivationCase] = [
        DerivationCase("头颅CT平扫", study("CT", description: "头颅CT平扫"), "CT/head/neuro", .studyDescription),
        DerivationCase("颅脑MR增强", study("MR", description: "颅脑MR增强"), "MR/head/neuro", .studyDescription),
        DerivationCase("头部 in BodyPartExamined", study("CT", part: "头部"), "CT/head/neuro", .bodyPartExamined),
        DerivationCase("脑 alone", study("MR", description: "脑 MRI"), "MR/head/neuro", .studyDescription),
        DerivationCase("胸部CT", study("CT", description: "胸部CT平扫"), "CT/chest/thoracic", .studyDescription),
        DerivationCase("肺部", study("CT", description: "肺部低剂量筛查"), "CT/chest/thoracic", .studyDescription),
        DerivationCase("腹部+盆腔", study("CT", description: "腹部+盆腔增强"), "CT/abdomen/body", .studyDescription),
        DerivationCase("盆腔 alone", study("MR", description: "盆腔MR"), "MR/abdomen/body", .studyDescription),
        DerivationCase("腰椎MRI", study("MR", description: "腰椎MRI"), "MR/spine/neuro", .studyDescription),
        DerivationCase("颈椎 on DX", study("DX", description: "颈椎正侧位"), "CR/spine", .studyDescription),
        DerivationCase("胸椎 is spine, not chest", study("CT", description: "胸椎CT"), "CT/spine/neuro", .studyDescription),
        DerivationCase("双侧乳腺MR", study("MR", description: "双侧乳腺MR"), "MR/breast", .studyDescription),
        DerivationCase("左膝关节MR", study("MR", description: "左膝关节MR平扫"), "MR/msk", .studyDescription),
        DerivationCase("右肩 on CR", study("CR", description: "右肩正位"), "CR/msk", .studyDescription),
        DerivationCase("髋关节 on DX", study("DX", part: "髋关节"), "CR/msk", .bodyPartExamined),
        DerivationCase("股骨头 is msk, not head", study("CT", description: "股骨头坏死复查"), "CT/msk", .studyDescription),
        DerivationCase("冠脉CTA", study("CT", description: "冠脉CTA"), "CT/cardiac/cardiac", .studyDescription),
        DerivationCase("心脏MR", study("MR", description: "心脏MR"), "MR/cardiac/cardiac", .studyDescription),
        DerivationCase("traditional 頭顱", study("CT", description: "頭顱電腦斷層"), "CT/head/neuro", .studyDescription),
        DerivationCase("full-width ＣＴ　ＨＥＡＤ", study("CT", description: "ＣＴ　ＨＥＡＤ"), "CT/head/neuro", .studyDescription),
        DerivationCase("電腦 (computer) is not 腦 (brain)", study("CT", description: "胸部電腦斷層"), "CT/chest/thoracic", .studyDescription),
        DerivationCase("电脑断层 alone names no region", study("CT", description: "电脑断层扫描"), "CT/general", nil, generalist: true),
        DerivationCase("Korean 흉부", study("CT", description: "흉부 CT"), "CT/chest/thoracic", .studyDescription),
    ]

    static let codesAndConflicts: [DerivationCase] = [
        DerivationCase("SNOMED CT code", study("CT", codes: [AnatomicCode(scheme: "SCT", value: "69536005", meaning: "Head")]),
                       "CT/head/neuro", .anatomicRegionSequence, note: "'SCT 69536005'"),
        DerivationCase("legacy SRT code for thorax", study("CT", codes: [AnatomicCode(scheme: "SRT", value: "T-D3000", meaning: "Chest")]),
                       "CT/chest/thoracic", .anatomicRegionSequence),
        DerivationCase("SRT lumbar spine, lower-case scheme", study("MR", codes: [AnatomicCode(scheme: "srt", value: "T-11503", meaning: "x")]),
                       "MR/spine/neuro", .anatomicRegionSequence),
        DerivationCase("unknown code, meaning matched as text", study("MR", codes: [AnatomicCode(scheme: "99LOCAL", value: "K1", meaning: "Left knee")]),
                       "MR/msk", .anatomicRegionSequence),
        DerivationCase("BodyPartExamined beats StudyDescription", study("CT", part: "CHEST", description: "CT HEAD"), "CT/chest/thoracic",
                       .bodyPartExamined, note: "StudyDescription suggests head"),
        DerivationCase("codes beat StudyDescription", study("CT", description: "CT CHEST",
                                                              codes: [AnatomicCode(scheme: "SCT", value: "80891009", meaning: "Heart")]),
                       "CT/cardiac/cardiac", .anatomicRegionSequence, note: "StudyDescription suggests chest"),
        DerivationCase("a region without a pool yields to the next field", study("CT", part: "WHOLEBODY", description: "CT ABDOMEN"),
                       "CT/abdomen/body", .studyDescription, note: "BodyPartExamined suggests wholebody"),
        DerivationCase("region found but MR has no chest pool", study("MR", description: "MR CHEST"), "MR/general", .studyDescription,
                       note: "MR has no chest pool"),
        DerivationCase("XA coronary angiogram: XA generalists", study("XA", description: "CORONARY ANGIOGRAM"), "XA/general", .studyDescription),
        DerivationCase("empty everything", study(), "OT/general", nil, generalist: true, note: "no modality"),
        DerivationCase("CT with nothing else", study("CT"), "CT/general", nil, generalist: true, note: "no body part found; generalist pool"),
        DerivationCase("garbage modality is not echoed", study("X-RAY!!<name>"), "OT/general", nil, generalist: true, note: "no modality"),
    ]

    static let modalities: [DerivationCase] = [
        DerivationCase("MG is always breast", study("MG"), "MG/breast", .modality),
        DerivationCase("RTDOSE: radiation oncology", study("RTDOSE"), "RT/oncology", .modality, note: "RTDOSE is read by the RT/oncology pool"),
        DerivationCase("RTIMAGE: radiation oncology", study("RTIMAGE", description: "PORTAL HEAD"), "RT/oncology", .modality),
        DerivationCase("RTPLAN and RTSTRUCT only", study("RTPLAN", in: ["RTSTRUCT", "RTPLAN"]), "RT/oncology", .modality),
        DerivationCase("CT with RT objects reads as CT", study("RTSTRUCT", in: ["CT", "RTSTRUCT", "RTPLAN"], description: "CT HEAD"),
                       "CT/head/neuro", .studyDescription, note: "primary modality CT of RTSTRUCT, CT, RTPLAN"),
        DerivationCase("SR alone: other-objects generalists", study("SR"), "OT/general", nil, generalist: true),
        DerivationCase("CT with an SR reads as CT", study("SR", in: ["SR", "CT"], part: "CHEST"), "CT/chest/thoracic", .bodyPartExamined),
        DerivationCase("PET/CT reads as PT", study("CT", in: ["CT", "PT"], part: "WHOLEBODY"), "PT/general", .bodyPartExamined,
                       note: "PT has no wholebody pool"),
        DerivationCase("NM whole-body bone scan", study("NM", part: "WHOLE BODY", description: "Whole Body Bone"), "NM/general", .bodyPartExamined),
        DerivationCase("RF without region", study("RF"), "RF/general", nil, generalist: true),
        DerivationCase("secondary capture", study("SC"), "OT/general", nil, generalist: true),
        DerivationCase("ECG has no pool", study("ECG"), "OT/general", nil, generalist: true, note: "no pool for modality ECG; OT pool"),
        DerivationCase("no Modality: CT from SOP class", study(sop: ["1.2.840.10008.5.1.4.1.1.2"], description: "CT CHEST"), "CT/chest/thoracic",
                       .studyDescription, note: "Modality missing; CT from SOP class"),
        DerivationCase("no Modality: SR from SOP class", study(sop: ["1.2.840.10008.5.1.4.1.1.88.33"]), "OT/general", nil, generalist: true),
        DerivationCase("no Modality: RT dose from SOP class", study(sop: ["1.2.840.10008.5.1.4.1.1.481.2"]), "RT/oncology", .modality),
    ]

    static let findings: [DerivationCase] = [
        DerivationCase("DX wrist fracture", study("DX", part: "WRIST", findings: ["fracture"]), "CR/msk/trauma", .bodyPartExamined,
                       note: "finding fracture: trauma"),
        DerivationCase("CR chest nodule", study("CR", part: "CHEST", findings: ["nodule"]), "CR/chest/thoracic", .bodyPartExamined),
        DerivationCase("CT knee fracture", study("CT", description: "CT KNEE", findings: ["Fracture"]), "CT/msk/trauma", .studyDescription),
        DerivationCase("a finding of another region is ignored", study("CT", part: "CHEST", findings: ["fracture"]), "CT/chest/thoracic", .bodyPartExamined),
        DerivationCase("findings do not apply to the generalist pool", study("CR", findings: ["nodule"]), "CR/general", nil, generalist: true),
    ]

    @Test(arguments: english + chinese + codesAndConflicts + modalities + findings)
    func derives(_ example: DerivationCase) throws {
        let decision = SpecialtyDerivation.decide(example.study)
        #expect(decision.specialty.description == example.specialty, "\(decision.note)")
        #expect(decision.source?.field == example.field, "\(decision.note)")
        #expect(decision.isGeneralistFallback == example.generalist, "\(decision.note)")
        if let text = example.noteContains { #expect(decision.note.contains(text), "\(decision.note)") }
        if decision.source == nil { #expect(decision.specialty.components.count == 2 && decision.specialty.components[1] == "general") }
    }

    @Test func notesNeverEchoHeaderText() {
        let secret = "DOE^JANE 1970-01-01"
        let decision = SpecialtyDerivation.decide(study("CT", part: secret, description: "CT HEAD \(secret)", protocolName: secret,
                                                        series: [secret], codes: [AnatomicCode(scheme: "X", value: secret, meaning: secret)]))
        #expect(decision.specialty.description == "CT/head/neuro")
        for fragment in ["DOE", "JANE", "1970"] {
            #expect(!decision.note.contains(fragment))
            #expect(!(decision.source?.term.contains(fragment) ?? false))
        }
    }

    @Test func unitsSplitWordsAndIdeographs() {
        #expect(TextUnits.units("CT HEAD W/O") == ["CT", "HEAD", "W", "O"])
        #expect(TextUnits.units("l-spine") == ["L", "SPINE"])
        #expect(TextUnits.units("头颅CT平扫") == ["头", "颅", "CT", "平", "扫"])
        #expect(TextUnits.units("ＣＴ　Ｈｅａｄ") == ["CT", "HEAD"])
        #expect(TextUnits.units("Tête-Schädel") == ["TETE", "SCHADEL"])
        #expect(TextUnits.units("abdomen^liver") == ["ABDOMEN", "LIVER"])
        #expect(TextUnits.units("  /-/ ").isEmpty)
        #expect(TextUnits.units(String(repeating: "HEAD ", count: 10_000)).count == TextUnits.maxScalars / 5 + 1)
    }

    @Test func legacyDerivationDelegates() throws {
        #expect(try SpecialtyDerivation.specialty(modality: "CT", bodyPart: "", findings: []).description == "CT/general")
        #expect(try SpecialtyDerivation.specialty(modality: "RTDOSE", bodyPart: "", findings: []).description == "RT/oncology")
        let (request, decision) = try CaseRequest.derive(id: "C9", descriptors: study("DX", in: ["DX", "PR"], description: "XR HAND"),
                                                         seriesCount: 1, site: "H001", priority: .routine)
        #expect(request.specialty.description == "CR/msk")
        #expect(decision.modality == "DX")
        #expect(request.weight == WeightTable.standard.weight(modality: "DX", seriesCount: 1))
    }

    @Test func decisionsAreFast() {
        let deriver = SpecialtyDeriver.standard
        let studies = (SpecialtyDerivationTests.english + SpecialtyDerivationTests.chinese).map(\.study)
        let clock = ContinuousClock()
        let rounds = 200
        var generalists = 0
        let elapsed = clock.measure {
            for _ in 0..<rounds { for item in studies where deriver.decide(item).isGeneralistFallback { generalists += 1 } }
        }
        let perDecision = elapsed / (rounds * studies.count)
        #expect(generalists == rounds * 6)
        // Debug build; release is several times faster. A bound that only an accidental
        // quadratic scan or per-call rule compilation would break.
        #expect(perDecision < .milliseconds(2), "\(perDecision) per decision")
    }
}

@Suite struct SpecialtyRulesTests {
    @Test func standardRulesAreValid() throws {
        try SpecialtyRules.standard.validate()
        try RoutingConfig.standard.validate()
    }

    @Test func shippedFileEqualsBuiltInRules() throws {
        let url = RoutingPaths.packageRoot.appendingPathComponent("Ops/routing.json")
        let config = try RoutingConfig.load(path: url.path)
        #expect(config.specialtyRules == SpecialtyRules.standard)
        #expect(config == RoutingConfig.standard)
        #expect(config.specialtyRules.regions.count >= 8)
    }

    @Test func encodesAndDecodesLosslessly() throws {
        let data = try JSONEncoder().encode(SpecialtyRules.standard)
        #expect(try JSONDecoder().decode(SpecialtyRules.self, from: data) == SpecialtyRules.standard)
    }

    @Test func partialSectionKeepsTheRest() throws {
        let config = try RoutingConfig.decode(Data(#"{"specialtyRules": {"generalistRegion": "any"}}"#.utf8))
        #expect(config.specialtyRules.regions == SpecialtyRules.standard.regions)
        let (request, decision) = try CaseRequest.derive(id: "C1", descriptors: StudyDescriptors(modality: "CT"), seriesCount: 1,
                                                         site: "H001", priority: .routine, config: config)
        #expect(request.specialty.description == "CT/any")
        #expect(decision.isGeneralistFallback)
    }

    @Test func customRulesRouteThroughCaseRequest() throws {
        var config = RoutingConfig.standard
        config.specialtyRules.regions[0].terms.append("CALCSCORE")
        let (request, _) = try CaseRequest.derive(id: "C2", descriptors: StudyDescriptors(modality: "CT", studyDescription: "calcscore"),
                                                  seriesCount: 1, site: "H001", priority: .routine, config: config)
        #expect(request.specialty.description == "CT/cardiac/cardiac")
    }

    struct Broken: Sendable, CustomTestStringConvertible {
        let name: String
        let code: SpecialtyRulesError.Code
        let path: String
        let edit: @Sendable (inout SpecialtyRules) -> Void
        var testDescription: String { name }
    }

    static func regionIndex(_ region: String) -> Int { SpecialtyRules.standard.regions.firstIndex { $0.region == region }! }

    static let broken: [Broken] = [
        Broken(name: "term under two regions", code: .ambiguous, path: "specialtyRules.regions[\(regionIndex("chest"))].terms[") {
            $0.regions[regionIndex("chest")].terms.append("head")
        },
        Broken(name: "same words as another term", code: .ambiguous, path: "specialtyRules.regions[\(regionIndex("abdomen"))].terms[") {
            $0.regions[regionIndex("abdomen")].terms.append("c-spine")
        },
        Broken(name: "term twice in one region", code: .duplicate, path: "specialtyRules.regions[\(regionIndex("head"))].terms[") {
            $0.regions[regionIndex("head")].terms.append("Brain")
        },
        Broken(name: "term without words", code: .emptyTerm, path: "specialtyRules.regions[0].terms[") { $0.regions[0].terms.append(" /-/ ") },
        Broken(name: "code under two regions", code: .ambiguous, path: "specialtyRules.regions[\(regionIndex("msk"))].codes[") {
            $0.regions[regionIndex("msk")].codes.append(AnatomicCode(scheme: "sct", value: "69536005", meaning: "Head"))
        },
        Broken(name: "code without meaning", code: .missing, path: "specialtyRules.regions[0].codes[0]") { $0.regions[0].codes[0].meaning = " " },
        Broken(name: "region defined twice", code: .duplicate, path: "specialtyRules.regions[") {
            $0.regions.append(RegionRule(region: "head", terms: ["CRANIUM2"]))
        },
        Broken(name: "region named like the generalist pool", code: .conflict, path: "specialtyRules.regions[0].region") {
            $0.generalistRegion = $0.regions[0].region
        },
        Broken(name: "region that can never match", code: .missing, path: "specialtyRules.regions[") {
            $0.regions.append(RegionRule(region: "elbow", terms: []))
        },
        Broken(name: "no regions", code: .missing, path: "specialtyRules.regions") { $0.regions = [] },
        Broken(name: "upper-case region name", code: .invalidName, path: "specialtyRules.regions[0].region") { $0.regions[0].region = "Cardiac" },
        Broken(name: "pool rule names an unknown region", code: .unknownRegion, path: "specialtyRules.modalities[") {
            $0.modalities[$0.modalities.firstIndex { $0.pool == "CT" }!].regions.append("elbow/msk")
        },
        Broken(name: "lower-case pool", code: .invalidName, path: "specialtyRules.modalities[0].pool") { $0.modalities[0].pool = "pt" },
        Broken(name: "modality read by two pools", code: .duplicate, path: "specialtyRules.modalities[") {
            $0.modalities.append(ModalityPoolRule(pool: "DXR", modalities: ["DX"]))
        },
        Broken(name: "two rules for one pool", code: .duplicate, path: "specialtyRules.modalities[") {
            $0.modalities.append(ModalityPoolRule(pool: "CT", modalities: ["CTX"]))
        },
        Broken(name: "regions and fixedRegion together", code: .conflict, path: "specialtyRules.modalities[") {
            $0.modalities[$0.modalities.firstIndex { $0.pool == "MG" }!].regions = ["breast"]
        },
        Broken(name: "preferred modality without a pool", code: .unknownModality, path: "specialtyRules.modalityPreference[") {
            $0.modalityPreference.append("ECG")
        },
        Broken(name: "preferred twice", code: .duplicate, path: "specialtyRules.modalityPreference[") { $0.modalityPreference.append("CT") },
        Broken(name: "finding for an unknown region", code: .unknownRegion, path: "specialtyRules.findings[0].regions[0]") {
            $0.findings[0].regions = ["lungs"]
        },
        Broken(name: "finding listed twice", code: .duplicate, path: "specialtyRules.findings[") { $0.findings.append($0.findings[0]) },
        Broken(name: "ignored term that is a region term", code: .ambiguous, path: "specialtyRules.ignoredTerms[") {
            $0.ignoredTerms.append("HEAD")
        },
        Broken(name: "ignored term twice", code: .duplicate, path: "specialtyRules.ignoredTerms[") { $0.ignoredTerms.append("c-arm") },
        Broken(name: "bad generalist region", code: .invalidName, path: "specialtyRules.generalistRegion") { $0.generalistRegion = "gen eral" },
        Broken(name: "bad other pool", code: .invalidName, path: "specialtyRules.otherModalityPool") { $0.otherModalityPool = "" },
    ]

    @Test(arguments: broken)
    func rejects(_ example: Broken) {
        var rules = SpecialtyRules.standard
        example.edit(&rules)
        do {
            try rules.validate()
            Issue.record("accepted: \(example.name)")
        } catch {
            #expect(error.codeValue == example.code, "\(error.message)")
            #expect(error.path.hasPrefix(example.path), "\(error.path)")
            #expect(error.message.hasPrefix(error.path + ": "))
        }
        // The whole config reports the same code through RoutingError.
        var config = RoutingConfig.standard
        config.specialtyRules = rules
        do {
            try config.validate()
            Issue.record("config accepted: \(example.name)")
        } catch {
            #expect(error.code == example.code.rawValue)
            #expect(error.message.contains(example.path))
        }
    }

    @Test func unknownKeyIsNamed() throws {
        let json = #"{"specialtyRules": {"regions": [{"region": "head", "term": ["HEAD"]}]}}"#
        do {
            _ = try RoutingConfig.decode(Data(json.utf8))
            Issue.record("a misspelt key was accepted")
        } catch let error as SpecialtyRulesError {
            #expect(error.codeValue == .unknownKey)
            #expect(error.path == "specialtyRules.regions[0]")
            #expect(error.message.contains("'term'"))
        }
    }

    @Test func wrongTypeIsNamed() throws {
        let json = #"{"specialtyRules": {"regions": [{"region": "head", "terms": "HEAD"}]}}"#
        do {
            _ = try RoutingConfig.decode(Data(json.utf8))
            Issue.record("a string for a list was accepted")
        } catch let error as SpecialtyRulesError {
            #expect(error.codeValue == .malformed)
            #expect(error.path == "specialtyRules.regions[0].terms")
        }
        #expect(throws: RoutingError.self) { try RoutingConfig.decode(Data(#"{"acceptTimeoutSeconds": "soon"}"#.utf8)) }
    }

    @Test func invalidRulesFailAtLoad() throws {
        let json = #"{"specialtyRules": {"findings": [{"finding": "nodule", "subspecialty": "thoracic", "regions": ["lungs"]}]}}"#
        #expect(throws: SpecialtyRulesError(.unknownRegion, path: "specialtyRules.findings[0].regions[0]",
                                            "region 'lungs' is not defined in specialtyRules.regions")) {
            try RoutingConfig.decode(Data(json.utf8))
        }
    }
}
