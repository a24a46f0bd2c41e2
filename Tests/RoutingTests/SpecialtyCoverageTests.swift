import GridContract
import Foundation
import Testing
@testable import Routing

/// Every study finds a reader: the specialty derived from real headers is held by someone
/// in the demo roster who may read for the sending site, so no case waits for widening.
@Suite struct SpecialtyCoverageTests {
    /// One file of `Tests/Fixtures/routing/pydicom-headers.json` (written by
    /// `scripts/make-routing-headers.py` from pydicom's reading of its own test files).
    struct HeaderRecord: Decodable {
        var file: String
        var readError: String?
        var modality: String?
        var modalitiesInStudy: [String]?
        var sopClassUID: String?
        var bodyPartExamined: String?
        var studyDescription: String?
        var protocolName: String?
        var seriesDescription: String?
        var anatomicRegionCodes: [AnatomicCode]?

        /// Each file sent as a study of its own.
        var descriptors: StudyDescriptors {
            StudyDescriptors(modality: modality ?? "", modalitiesInStudy: modalitiesInStudy ?? [],
                             sopClassUIDs: sopClassUID.map { [$0] } ?? [], bodyPartExamined: bodyPartExamined ?? "",
                             studyDescription: studyDescription ?? "", protocolName: protocolName ?? "",
                             seriesDescriptions: (seriesDescription ?? "").isEmpty ? [] : [seriesDescription!],
                             anatomicRegionCodes: anatomicRegionCodes ?? [])
        }
    }

    struct HeaderFile: Decodable {
        var pydicom: String
        var files: [HeaderRecord]
    }

    static func headers() throws -> HeaderFile {
        let url = RoutingPaths.packageRoot.appendingPathComponent("Tests/Fixtures/routing/pydicom-headers.json")
        return try JSONDecoder().decode(HeaderFile.self, from: Data(contentsOf: url))
    }

    /// The roster `radgrid up` loads: 600 experts, seed 42, everyone on duty.
    static let roster: [Expert] = {
        var experts = RosterGenerator.generate(count: 600, seed: 42)
        for index in experts.indices { experts[index].shifts = [] }
        return experts
    }()

    /// Experts who would be offered a case of `specialty` from `site`: they hold the
    /// specialty, a credential for the site or its region that is valid at the roster's
    /// base time and stays valid for a year, and the site is not their home site.
    static func readers(of specialty: Specialty, site: String, in experts: [Expert] = roster) -> [Expert] {
        let region = "region:" + RosterGenerator.region(ofSite: site)
        let until = RosterGenerator.baseTime + 365 * 86_400_000
        return experts.filter { expert in
            expert.qualifies(for: specialty) && expert.homeSite != site
                && expert.credentials.contains { ($0.scope == site || $0.scope == region) && $0.isValid(at: until) }
        }
    }

    @Test func everyPydicomTestFileFindsAReaderAtH001() throws {
        let headers = try Self.headers()
        #expect(headers.pydicom == "3.0.2")
        #expect(headers.files.count >= 150)
        var uncovered: [String] = []
        var bySpecialty: [String: Int] = [:]
        for record in headers.files {
            #expect(record.readError == nil, "\(record.file): \(record.readError ?? "")")
            let decision = SpecialtyDerivation.decide(record.descriptors)
            bySpecialty[decision.specialty.description, default: 0] += 1
            if Self.readers(of: decision.specialty, site: "H001").isEmpty {
                uncovered.append("\(record.file) -> \(decision.specialty) (\(decision.note))")
            }
        }
        #expect(uncovered.isEmpty, "\(uncovered.joined(separator: "\n"))")
        // The fixture exercises more than one pool: regions, generalists and RT.
        #expect(bySpecialty.keys.count >= 10, "\(bySpecialty)")
    }

    /// What pydicom's reading of some files must route to (expected values are ours; the
    /// header values come from the fixture).
    static let spotChecks: [(file: String, specialty: String, generalist: Bool)] = [
        ("test_files/CT_small.dcm", "CT/general", true),
        ("test_files/MR_small.dcm", "MR/general", true),
        ("test_files/J2K_pixelrep_mismatch.dcm", "CT/head/neuro", false),
        ("test_files/JPEG2000.dcm", "NM/general", false),
        ("test_files/examples_overlay.dcm", "MR/abdomen/body", false),
        ("test_files/examples_rgb_color.dcm", "US/general", true),
        ("test_files/dicomdirtests/77654033/CR1/6154", "CR/spine", false),
        ("test_files/dicomdirtests/77654033/CT2/17106", "CT/head/neuro", false),
        ("test_files/dicomdirtests/98892001/CT5N/2062", "CT/cardiac/cardiac", false),
        ("test_files/dicomdirtests/98892003/MR1/15820", "MR/head/neuro", false),
        ("test_files/dicomdirtests/98892003/MR700/4467", "MR/head/neuro", false),
        ("test_files/rtdose.dcm", "RT/oncology", false),
        ("test_files/rtplan.dcm", "RT/oncology", false),
        ("test_files/rtstruct.dcm", "RT/oncology", false),
        ("test_files/test-SR.dcm", "OT/general", true),
        ("test_files/waveform_ecg.dcm", "OT/general", true),
        ("test_files/SC_rgb_jpeg_dcmtk.dcm", "OT/general", true),
        ("test_files/JPEGLSNearLossless_16.dcm", "OT/general", true),
        ("test_files/liver_1frame.dcm", "OT/general", false),
        ("test_files/dicomdirtests/DICOMDIR", "OT/general", true),
        ("charset_files/chrJapMulti.dcm", "CR/chest", false),
    ]

    @Test func spotChecksOfRealHeaders() throws {
        let records = Dictionary(try Self.headers().files.map { ($0.file, $0) }, uniquingKeysWith: { a, _ in a })
        for check in Self.spotChecks {
            guard let record = records[check.file] else {
                Issue.record("\(check.file) is missing from the fixture")
                continue
            }
            let decision = SpecialtyDerivation.decide(record.descriptors)
            #expect(decision.specialty.description == check.specialty, "\(check.file): \(decision.note)")
            #expect(decision.isGeneralistFallback == check.generalist, "\(check.file): \(decision.note)")
        }
    }

    /// Every specialty the built-in rules can produce — each pool modality (and ones no rule
    /// knows) × each region × each finding — has a reader at every one of the 60 sites.
    @Test func everyDerivableSpecialtyIsStaffedAtEverySite() throws {
        let rules = SpecialtyRules.standard
        var modalities = rules.modalities.flatMap(\.modalities) + ["ECG", ""]
        modalities.sort()
        var specialties: Set<Specialty> = []
        for modality in modalities {
            for region in [nil] + rules.regions {
                for finding in [nil] + rules.findings.map(\.finding) {
                    let study = StudyDescriptors(modality: modality, bodyPartExamined: region?.terms.first ?? "",
                                                 findings: finding.map { [$0] } ?? [])
                    specialties.insert(SpecialtyDerivation.decide(study).specialty)
                }
            }
        }
        #expect(specialties.count >= 30, "\(specialties.map(\.description).sorted())")
        var missing: [String] = []
        for specialty in specialties.sorted() {
            for number in 1...60 {
                let site = RosterGenerator.site(number)
                if Self.readers(of: specialty, site: site).isEmpty { missing.append("\(specialty)@\(site)") }
            }
        }
        #expect(missing.isEmpty, "\(missing.prefix(40).joined(separator: ", "))")
    }

    @Test func everyModalityHasGeneralistsOnDuty() throws {
        let pools = ["CT/general", "MR/general", "CR/general", "US/general", "NM/general", "PT/general", "XA/general",
                     "RF/general", "OT/general", "MG/breast", "RT/oncology"]
        for pool in pools {
            let specialty = try Specialty(pool)
            let holders = Self.roster.filter { $0.qualifies(for: specialty) }
            #expect(holders.count >= 10, "\(pool): \(holders.count) experts")
            #expect(Self.readers(of: specialty, site: "H001").count >= 2, "\(pool) at H001")
        }
        let dx = SpecialtyDerivation.decide(StudyDescriptors(modality: "DX"))
        #expect(dx.specialty.description == "CR/general")
    }

    @Test func staffingFloorCoversEachGroupInEachRegion() {
        let experts = RosterGenerator.generate(count: 600, seed: 7)
        for (offset, expert) in experts.prefix(RosterGenerator.staffingFloor).enumerated() {
            let group = RosterGenerator.groups[offset % RosterGenerator.groups.count]
            let region = RosterGenerator.regions[offset / RosterGenerator.groups.count]
            #expect(Set(group.specialties).isSubset(of: Set(expert.specialties.map(\.description))))
            #expect(expert.credentials.contains { $0.scope == "region:" + region && $0.expires == nil })
            #expect(expert.homeSite == nil)
        }
        #expect(experts.count == 600)
    }

    @Test func intakeCarriesDescriptors() throws {
        func parse(_ fields: [String: String]) throws(RoutingError) -> CaseRequest {
            try ExpertRouter.request(fromIntake: fields, config: .standard)
        }
        let descriptors = StudyDescriptors(modality: "CT", studyDescription: "头颅CT平扫", findings: ["hemorrhage"])
        let json = String(decoding: try JSONEncoder().encode(descriptors), as: UTF8.self)
        let request = try parse(["case": "C1", "site": "H001", "priority": "stat", "descriptors": json, "series": "5"])
        #expect(request.specialty.description == "CT/head/neuro")
        #expect(request.weight == WeightTable.standard.weight(modality: "CT", seriesCount: 5))
        let bare = try parse(["case": "C2", "site": "H001", "modality": "MR"])
        #expect(bare.specialty.description == "MR/general")
        #expect(throws: RoutingError.self) { try parse(["case": "C3", "site": "H001", "descriptors": "{not json"]) }
        #expect(throws: RoutingError.self) { try parse(["case": "C4", "site": "H001"]) }
    }
}
