import DICOM
import Foundation
import RadGridCore
import Testing

/// Reports written as Basic Text SR, read back by this module, by dcmtk's dsrdump and by
/// pydicom. The outside readers are required: a missing tool fails the test.
@Suite("Basic Text SR report")
struct BasicTextSRTests {
    // 2024-03-05T06:07:08.250Z; verified 3 min later; addendum the next day.
    static let created = BasicTextSR.Timestamp(millisecondsSinceEpoch: 1_709_618_828_250)
    static let verifiedAt = BasicTextSR.Timestamp(millisecondsSinceEpoch: 1_709_619_008_000)
    static let addendumAt = BasicTextSR.Timestamp(millisecondsSinceEpoch: 1_709_705_228_000)

    static let findings = "右肺上叶见一约 12 mm 结节，边缘毛刺。\nNo pleural effusion."
    static let impressions = "Spiculated nodule in the right upper lobe, suspicious for malignancy."
    static let critical = "Suspected malignancy; referring physician called."
    static let addendumText = "Compared with the prior CT of 2023-09-01: the nodule has grown."
    static let addendumReason = "Prior study became available"

    static func report() -> BasicTextSR {
        var r = BasicTextSR(patientName: "Wang^XiaoMing=王^小明", patientID: "P-0042",
                            studyInstanceUID: "1.2.826.0.1.3680043.9.7.1",
                            seriesInstanceUID: "2.25.100200300400500600700800900",
                            sopInstanceUID: "2.25.100200300400500600700800901",
                            contentDateTime: created,
                            author: .init(name: "Li^Wei", organization: "RadGrid Reading Center"),
                            sections: [.findings(findings), .impressions(impressions)])
        r.patientBirthDate = "19580214"
        r.patientSex = "M"
        r.studyDate = "20240304"
        r.studyTime = "231500"
        r.studyID = "S1"
        r.accessionNumber = "ACC-77"
        r.referringPhysicianName = "张^医生"
        r.seriesNumber = 900
        r.instanceNumber = 2
        r.language = .chineseChina
        r.verification = .init(observerName: "Li^Wei", organization: "RadGrid Reading Center", dateTime: verifiedAt)
        r.criticalResult = .init(text: critical, flaggedAt: verifiedAt)
        r.addenda = [.init(text: addendumText, reason: addendumReason, author: .init(name: "Chen^Jie"), dateTime: addendumAt)]
        r.predecessors = [.init(studyInstanceUID: r.studyInstanceUID, seriesInstanceUID: r.seriesInstanceUID,
                                sopClassUID: BasicTextSR.sopClassUID, sopInstanceUID: "2.25.100200300400500600700800902")]
        r.evidence = [
            .init(studyInstanceUID: r.studyInstanceUID, seriesInstanceUID: "1.2.826.0.1.3680043.9.7.1.1",
                  sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: "1.2.826.0.1.3680043.9.7.1.1.1"),
            .init(studyInstanceUID: r.studyInstanceUID, seriesInstanceUID: "1.2.826.0.1.3680043.9.7.1.1",
                  sopClassUID: "1.2.840.10008.5.1.4.1.1.2", sopInstanceUID: "1.2.826.0.1.3680043.9.7.1.1.2"),
        ]
        return r
    }

    static func writeTemporary(_ bytes: [UInt8]) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-sr-\(UUID().uuidString).dcm")
        try Data(bytes).write(to: url)
        return url
    }

    /// Runs a tool to completion; (exit code, stdout and stderr together).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (Int32?, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-sr-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(executable: executable, arguments: arguments, environment: environment, outputPath: output)
        let code = process.wait(timeout: .seconds(60))
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    // MARK: own reader

    @Test("the module's reader gets every module, the tree and the Chinese text back")
    func roundTrip() throws {
        let bytes = try Self.report().encode()
        #expect(Array(bytes[128..<132]) == Array("DICM".utf8))
        let file = try DICOMFile.read(bytes)
        #expect(file.transferSyntaxUID == "1.2.840.10008.1.2.1")
        #expect(file.meta.string(.mediaStorageSOPClassUID) == "1.2.840.10008.5.1.4.1.1.88.11")
        #expect(file.meta.string(.mediaStorageSOPInstanceUID) == "2.25.100200300400500600700800901")
        let ds = file.dataSet
        #expect(ds.isUTF8)
        #expect(ds.string(.specificCharacterSet) == "ISO_IR 192")
        #expect(ds.string(.sopClassUID) == BasicTextSR.sopClassUID)
        #expect(ds.string(.patientName) == "Wang^XiaoMing=王^小明")
        #expect(ds.personName(.patientName)?.ideographic == "王^小明")
        #expect(ds.string("ReferringPhysicianName") == "张^医生")
        #expect(ds.string(.patientBirthDate) == "19580214")
        #expect(ds.string(.modality) == "SR")
        #expect(ds.int(.seriesNumber) == 900 && ds.int(.instanceNumber) == 2)
        #expect(ds.string(.manufacturer) == "RadGrid")
        #expect(ds.string("ContentDate") == "20240305" && ds.string("ContentTime") == "060708")
        #expect(ds.string("TimezoneOffsetFromUTC") == "+0000")
        #expect(ds.string("CompletionFlag") == "COMPLETE")
        #expect(ds.string("VerificationFlag") == "VERIFIED")
        let verifier = try #require(ds.sequence(Tag(keyword: "VerifyingObserverSequence")!)?.first)
        #expect(verifier.string("VerifyingObserverName") == "Li^Wei")
        #expect(verifier.string("VerifyingOrganization") == "RadGrid Reading Center")
        #expect(verifier.string("VerificationDateTime") == "20240305061008")
        #expect(verifier.sequence(Tag(keyword: "VerifyingObserverIdentificationCodeSequence")!)?.isEmpty == true)
        #expect(ds.sequence(Tag(keyword: "PerformedProcedureCodeSequence")!)?.isEmpty == true)
        #expect(ds.sequence(Tag(keyword: "ReferencedRequestSequence")!)?.first?.string(.accessionNumber) == "ACC-77")
        let predecessor = try #require(ds.sequence(Tag(keyword: "PredecessorDocumentsSequence")!)?.first)
        #expect(predecessor.string(.studyInstanceUID) == "1.2.826.0.1.3680043.9.7.1")
        let predecessorSOP = predecessor.sequence(Tag(keyword: "ReferencedSeriesSequence")!)?.first?.sequence(Tag(keyword: "ReferencedSOPSequence")!)
        #expect(predecessorSOP?.first?.string("ReferencedSOPInstanceUID") == "2.25.100200300400500600700800902")
        // Two images of one series: one study item, one series item, two SOP items.
        let evidence = try #require(ds.sequence(Tag(keyword: "CurrentRequestedProcedureEvidenceSequence")!))
        #expect(evidence.count == 1)
        #expect(evidence[0].sequence(Tag(keyword: "ReferencedSeriesSequence")!)?.count == 1)
        #expect(evidence[0].sequence(Tag(keyword: "ReferencedSeriesSequence")!)?[0].sequence(Tag(keyword: "ReferencedSOPSequence")!)?.count == 2)

        // Root content item.
        #expect(ds.string("ValueType") == "CONTAINER")
        #expect(ds.string("ContinuityOfContent") == "SEPARATE")
        #expect(Self.code(ds, "ConceptNameCodeSequence") == ["18748-4", "LN", "Diagnostic Imaging Report"])
        let template = try #require(ds.sequence(Tag(keyword: "ContentTemplateSequence")!)?.first)
        #expect(template.string("MappingResource") == "DCMR" && template.string("TemplateIdentifier") == "2000")

        let items = try #require(ds.sequence(Tag(keyword: "ContentSequence")!))
        let summary = items.map { [$0.string("RelationshipType") ?? "", $0.string("ValueType") ?? "", Self.code($0, "ConceptNameCodeSequence")[0]] }
        #expect(summary == [
            ["HAS CONCEPT MOD", "CODE", "121049"],
            ["HAS OBS CONTEXT", "CODE", "121005"],
            ["HAS OBS CONTEXT", "PNAME", "121008"],
            ["HAS OBS CONTEXT", "TEXT", "121009"],
            ["CONTAINS", "CONTAINER", "59776-5"],
            ["CONTAINS", "CONTAINER", "19005-8"],
            ["CONTAINS", "CONTAINER", "73568-8"],
            ["CONTAINS", "CONTAINER", "55107-7"],
        ])
        #expect(Self.code(items[0], "ConceptCodeSequence") == ["zh-CN", "RFC5646", "Chinese (China)"])
        #expect(Self.code(items[1], "ConceptCodeSequence") == ["121006", "DCM", "Person"])
        #expect(items[2].string("PersonName") == "Li^Wei")
        #expect(items[3].string("TextValue") == "RadGrid Reading Center")
        func children(_ i: Int) -> [DataSet] { items[i].sequence(Tag(keyword: "ContentSequence")!) ?? [] }
        #expect(children(4).map { $0.string("TextValue") } == [Self.findings])
        #expect(Self.code(children(4)[0], "ConceptNameCodeSequence") == ["121071", "DCM", "Finding"])
        #expect(children(5).map { $0.string("TextValue") } == [Self.impressions])
        #expect(children(6).map { $0.string("TextValue") } == [Self.critical])
        #expect(items[6].string("ObservationDateTime") == "20240305061008")
        #expect(items[7].string("ObservationDateTime") == "20240306060708")
        #expect(children(7).map { $0.string("RelationshipType") ?? "" } == ["HAS OBS CONTEXT", "HAS OBS CONTEXT", "CONTAINS", "CONTAINS"])
        #expect(children(7)[1].string("PersonName") == "Chen^Jie")
        #expect(children(7).compactMap { $0.string("TextValue") } == [Self.addendumReason, Self.addendumText])
        #expect(Self.code(children(7)[2], "ConceptNameCodeSequence") == ["ADDENDUM-REASON", "99RADGRID", "Reason for Addendum"])
    }

    @Test("an unverified partial draft has no Verifying Observer Sequence; an offset shifts created times and is written")
    func draftAndOffset() throws {
        var r = Self.report()
        r.verification = nil
        r.completed = false
        r.criticalResult = nil
        r.addenda = []
        r.predecessors = []
        r.evidence = []
        r.timeZoneOffsetMinutes = 8 * 60
        r.procedureCode = .init(value: "24627-2", scheme: "LN", meaning: "CT Chest")
        let ds = try DICOMFile.read(r.encode()).dataSet
        #expect(ds.string("CompletionFlag") == "PARTIAL")
        #expect(ds.string("VerificationFlag") == "UNVERIFIED")
        #expect(ds["VerifyingObserverSequence"] == nil)
        #expect(ds["PredecessorDocumentsSequence"] == nil)
        #expect(ds["CurrentRequestedProcedureEvidenceSequence"] == nil)
        #expect(ds.string("TimezoneOffsetFromUTC") == "+0800")
        #expect(ds.string("ContentDate") == "20240305" && ds.string("ContentTime") == "140708")
        #expect(Self.code(try #require(ds.sequence(Tag(keyword: "PerformedProcedureCodeSequence")!)?.first), nil) == ["24627-2", "LN", "CT Chest"])
        #expect(ds.sequence(Tag(keyword: "ContentSequence")!)?.count == 6)
    }

    @Test("created times render as UTC calendar dates across leap days, epochs and offsets")
    func clock() throws {
        // Expected strings from Python's datetime (proleptic Gregorian, UTC).
        let cases: [(Int64, Int, String, String)] = [
            (0, 0, "19700101", "000000"),
            (951_782_400_000, 0, "20000229", "000000"),       // 2000-02-29, a 400-year leap day
            (4_107_542_399_999, 0, "21000228", "235959"),     // 2100 is not a leap year
            (-1, 0, "19691231", "235959"),
            (-62_135_596_800_000, 0, "00010101", "000000"),
            (253_402_300_799_999, 0, "99991231", "235959"),
            (1_709_596_800_000, -5 * 60, "20240304", "190000"),
        ]
        for (ms, offset, date, time) in cases {
            var r = Self.report()
            r.contentDateTime = .init(millisecondsSinceEpoch: ms)
            r.verification = nil
            r.criticalResult = nil
            r.addenda = []
            r.timeZoneOffsetMinutes = offset
            let ds = try DICOMFile.read(r.encode()).dataSet
            #expect(ds.string("ContentDate") == date, "\(ms)")
            #expect(ds.string("ContentTime") == time, "\(ms)")
        }
    }

    // MARK: outside readers

    @Test("dcmtk's dsrdump reads the document without warnings and prints the report tree")
    func dsrdumpReadsIt() throws {
        let dsrdump = try #require(Self.executable("dsrdump"), "dsrdump is not installed (apt-get install dcmtk)")
        let url = try Self.writeTemporary(try Self.report().encode())
        defer { try? FileManager.default.removeItem(at: url) }
        // +Pl: long texts in full; +Pt: template ids. -ll warn keeps warnings on whatever the default.
        let (code, output) = try Self.run(dsrdump, ["-ll", "warn", "+Pl", "+Pt", url.path])
        #expect(code == 0, "\(output)")
        // dcmtk 3.6.7's string VR checker knows no UTF-8 and says so once; everything else it
        // reports (structure, relationship constraints, DT/DA/UI syntax) must be silent.
        let problems = output.split(separator: "\n").filter { $0.hasPrefix("W:") || $0.hasPrefix("E:") || $0.hasPrefix("F:") }
            .filter { $0 != "W: The VR checker does not support this Specific Character Set: ISO_IR 192" }
        #expect(problems.isEmpty, "\(problems)")
        #expect(output.contains("Basic Text SR Document"))
        #expect(output.contains("Diagnostic Imaging Report"))
        #expect(output.contains("Patient             : Wang^XiaoMing=王^小明 (M, 1958-02-14, #P-0042)"))
        #expect(output.contains("Verification Flag   : VERIFIED"))
        #expect(output.contains("Verifying Observers : 2024-03-05 06:10:08, Li^Wei, RadGrid Reading Center"))
        #expect(output.contains("Content Date/Time   : 2024-03-05 06:07:08"))
        #expect(output.contains("<CONTAINER:(,,\"Diagnostic Imaging Report\")=SEPARATE>  # TID 2000 (DCMR"))
        for text in [Self.impressions, Self.critical, Self.addendumText, Self.addendumReason, "右肺上叶见一约 12 mm 结节，边缘毛刺。"] {
            #expect(output.contains(text), "\(text.count) characters missing from dsrdump's output")
        }
        for heading in ["Findings", "Impressions", "Communication of Critical Results", "Addendum"] {
            #expect(output.contains("<contains CONTAINER:(,,\"\(heading)\")=SEPARATE>"), "\(heading)")
        }
        #expect(output.contains("<has concept mod CODE:(,,\"Language of Content Item and Descendants\")=(zh-CN,RFC5646,\"Chinese (China)\")>"))
        #expect(output.contains("<has obs context PNAME:(,,\"Person Observer Name\")=\"Chen^Jie\">"))
    }

    @Test("pydicom reads the document: identity, flags and every text value of the content tree")
    func pydicomReadsIt() throws {
        let deps = CharsetFixtures.packageRoot.appendingPathComponent(".pydeps")
        try #require(FileManager.default.fileExists(atPath: deps.appendingPathComponent("pydicom").path),
                     "pydicom is missing at \(deps.path): run scripts/pydeps.sh")
        let python = try #require(Self.executable("python3"), "python3 is not installed")
        let url = try Self.writeTemporary(try Self.report().encode())
        defer { try? FileManager.default.removeItem(at: url) }
        // Strict reading: pydicom raises on values its VR validation rejects.
        let script = """
        import json, sys
        import pydicom
        from pydicom import config
        config.settings.reading_validation_mode = config.RAISE
        ds = pydicom.dcmread(sys.argv[1])
        for elem in ds.iterall():
            str(elem.value)
        def walk(items, depth):
            out = []
            for it in items:
                name = it.ConceptNameCodeSequence[0]
                row = {"depth": depth, "rel": it.RelationshipType, "type": it.ValueType, "name": name.CodeMeaning, "code": name.CodeValue}
                if it.ValueType == "TEXT": row["text"] = it.TextValue
                if it.ValueType == "PNAME": row["text"] = str(it.PersonName)
                if it.ValueType == "CODE": row["text"] = it.ConceptCodeSequence[0].CodeMeaning
                out.append(row)
                if "ContentSequence" in it: out += walk(it.ContentSequence, depth + 1)
            return out
        print(json.dumps({
            "sop_class": ds.SOPClassUID, "ts": str(ds.file_meta.TransferSyntaxUID), "charset": ds.SpecificCharacterSet,
            "patient": str(ds.PatientName), "ideographic": ds.PatientName.ideographic, "title": ds.ConceptNameCodeSequence[0].CodeMeaning,
            "completion": ds.CompletionFlag, "verification": ds.VerificationFlag,
            "verifier": str(ds.VerifyingObserverSequence[0].VerifyingObserverName),
            "tree": walk(ds.ContentSequence, 1),
        }, ensure_ascii=True))
        """
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = deps.path
        let (code, output) = try Self.run(python, ["-c", script, url.path], environment: environment)
        #expect(code == 0, "\(output)")
        let line = try #require(output.split(separator: "\n").last, "\(output)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(output)")
        #expect(json["sop_class"] as? String == BasicTextSR.sopClassUID)
        #expect(json["ts"] as? String == "1.2.840.10008.1.2.1")
        #expect(json["charset"] as? String == "ISO_IR 192")
        #expect(json["patient"] as? String == "Wang^XiaoMing=王^小明")
        #expect(json["ideographic"] as? String == "王^小明")
        #expect(json["title"] as? String == "Diagnostic Imaging Report")
        #expect(json["completion"] as? String == "COMPLETE")
        #expect(json["verification"] as? String == "VERIFIED")
        #expect(json["verifier"] as? String == "Li^Wei")
        let tree = try #require(json["tree"] as? [[String: Any]])
        let rows = tree.map { "\($0["depth"]!)|\($0["rel"]!)|\($0["type"]!)|\($0["name"]!)|\($0["text"] ?? "")" }
        #expect(rows == [
            "1|HAS CONCEPT MOD|CODE|Language of Content Item and Descendants|Chinese (China)",
            "1|HAS OBS CONTEXT|CODE|Observer Type|Person",
            "1|HAS OBS CONTEXT|PNAME|Person Observer Name|Li^Wei",
            "1|HAS OBS CONTEXT|TEXT|Person Observer's Organization Name|RadGrid Reading Center",
            "1|CONTAINS|CONTAINER|Findings|",
            "2|CONTAINS|TEXT|Finding|\(Self.findings)",
            "1|CONTAINS|CONTAINER|Impressions|",
            "2|CONTAINS|TEXT|Impression|\(Self.impressions)",
            "1|CONTAINS|CONTAINER|Communication of Critical Results|",
            "2|CONTAINS|TEXT|Finding|\(Self.critical)",
            "1|CONTAINS|CONTAINER|Addendum|",
            "2|HAS OBS CONTEXT|CODE|Observer Type|Person",
            "2|HAS OBS CONTEXT|PNAME|Person Observer Name|Chen^Jie",
            "2|CONTAINS|TEXT|Reason for Addendum|\(Self.addendumReason)",
            "2|CONTAINS|TEXT|Addendum|\(Self.addendumText)",
        ])
    }

    // MARK: invalid input

    @Test("invalid values are refused with a typed error naming the field, never the value")
    func invalidInput() throws {
        let secret = "SECRET"
        let longName = String(repeating: "王", count: 65)
        let cases: [(field: String, mutate: (inout BasicTextSR) -> Void)] = [
            ("studyInstanceUID", { $0.studyInstanceUID = "1.2.03.\(secret)" }),
            ("studyInstanceUID", { $0.studyInstanceUID = "1.2.03" }),
            ("sopInstanceUID", { $0.sopInstanceUID = "" }),
            ("seriesInstanceUID", { $0.seriesInstanceUID = "1." + String(repeating: "9", count: 70) }),
            ("title.meaning", { $0.title.meaning = "" }),
            ("title.value", { $0.title.value = "12345678901234567" }),
            ("patientName", { $0.patientName = longName + "^" + secret }),
            ("patientName", { $0.patientName = "A=B=C=\(secret)" }),
            ("patientName", { $0.patientName = "Doe\\\(secret)" }),
            ("patientID", { $0.patientID = secret + "\n" }),
            ("accessionNumber", { $0.accessionNumber = String(repeating: "7", count: 17) }),
            ("patientSex", { $0.patientSex = "X" }),
            ("patientBirthDate", { $0.patientBirthDate = "19990230" }),
            ("studyTime", { $0.studyTime = "246000" }),
            ("sections[1].text", { $0.sections[1].text = String(repeating: "a", count: BasicTextSR.maxTextBytes + 1) }),
            ("sections[0].text", { $0.sections[0].text = "" }),
            ("sections[0].text", { $0.sections[0].text = "\(secret)\u{0}" }),
            ("sections[1].heading.scheme", { $0.sections[1].heading.scheme = "" }),
            ("author.name", { $0.author.name = "" }),
            ("verification", { $0.completed = false }),
            ("verification.organization", { $0.verification?.organization = "" }),
            ("addenda[0].reason", { $0.addenda[0].reason = "" }),
            ("addenda[0].dateTime", { $0.addenda[0].dateTime = .init(millisecondsSinceEpoch: .max) }),
            ("contentDateTime", { $0.contentDateTime = .init(millisecondsSinceEpoch: -62_135_596_800_001) }),
            ("instanceNumber", { $0.instanceNumber = Int(Int32.max) + 1 }),
            ("evidence[1].sopClassUID", { $0.evidence[1].sopClassUID = "x" }),
            ("predecessors", { $0.predecessors[0].sopInstanceUID = $0.sopInstanceUID }),
            ("timeZoneOffsetMinutes", { $0.timeZoneOffsetMinutes = 15 * 60 }),
        ]
        for (field, mutate) in cases {
            var r = Self.report()
            mutate(&r)
            do {
                _ = try r.encode()
                Issue.record("\(field): accepted")
            } catch let error as DICOMError {
                #expect(error.code == "dicom.invalidValue", "\(field)")
                #expect(error.message.hasPrefix("BasicTextSR.\(field): "), "\(field): \(error.message)")
                #expect(!error.message.contains(secret) && !error.message.contains("王"), "\(field) leaks its value")
                #expect(error.tag != nil, "\(field)")
            }
        }
    }

    @Test("limits are inclusive: a 64-character name group and a text of exactly maxTextBytes are written")
    func limitsAreInclusive() throws {
        var r = Self.report()
        r.patientName = String(repeating: "王", count: 64) + "=" + String(repeating: "A", count: 64)
        r.sections[0].text = String(repeating: "b", count: BasicTextSR.maxTextBytes)
        let ds = try DICOMFile.read(r.encode()).dataSet
        #expect(ds.string(.patientName) == r.patientName)
        let section = ds.sequence(Tag(keyword: "ContentSequence")!)?[4].sequence(Tag(keyword: "ContentSequence")!)?.first
        #expect(section?.string("TextValue")?.utf8.count == BasicTextSR.maxTextBytes)
    }

    /// [Code Value, Coding Scheme Designator, Code Meaning] of a code sequence's first item
    /// (or of `item` itself when `sequence` is nil).
    static func code(_ item: DataSet, _ sequence: String?) -> [String] {
        let entry = sequence.flatMap { Tag(keyword: $0) }.flatMap { item.sequence($0)?.first } ?? item
        return [entry.string("CodeValue") ?? "", entry.string("CodingSchemeDesignator") ?? "", entry.string("CodeMeaning") ?? ""]
    }
}
