import Foundation
import Testing
@testable import DICOM

/// VRs pydicom returns as text (DS and IS are numbers); the same set the script records.
private let textVRs: Set<VR> = [.AE, .AS, .CS, .DA, .DT, .LO, .LT, .PN, .SH, .ST, .TM, .UC, .UI, .UR, .UT]

/// Our reading of every text element, keyed like expected.json ("00321064[0].00100010").
private func textElements(_ ds: DataSet, prefix: String = "") -> [String: (vr: VR, values: [String], groups: [[String]]?)] {
    var out: [String: (vr: VR, values: [String], groups: [[String]]?)] = [:]
    for e in ds.elements {
        let path = prefix + hex4(e.tag.group) + hex4(e.tag.element)
        if let items = ds.sequence(e.tag) {
            for (i, item) in items.enumerated() {
                out.merge(textElements(item, prefix: "\(path)[\(i)]."), uniquingKeysWith: { a, _ in a })
            }
            continue
        }
        let vr = ds.effectiveVR(e)
        guard textVRs.contains(vr) else { continue }
        if vr == .PN {
            let names = ds.personNames(e.tag) ?? []
            let values = names.map(\.description)
            // A PN of delimiters only ("=", "^^") is empty, as in pydicom.
            out[path] = values == [""] ? (vr, [], []) : (vr, values, names.map(\.groups))
        } else {
            out[path] = (vr, ds.strings(e.tag) ?? [], nil)
        }
    }
    return out
}

private func charsetFileBytes(_ name: String) throws -> [UInt8] {
    let url = CharsetFixtures.charsetFiles.appendingPathComponent(name)
    try #require(FileManager.default.fileExists(atPath: url.path),
                 "pydicom's charset files are missing at \(CharsetFixtures.charsetFiles.path): run scripts/pydeps.sh")
    return [UInt8](try Data(contentsOf: url))
}

@Suite("Character sets: pydicom's charset test files")
struct CharsetFileTests {
    static let fileNames = CharsetFixtures.expected.keys.sorted()

    @Test("the fixture covers all 17 files and they are installed (scripts/pydeps.sh)")
    func filesPresent() throws {
        #expect(Self.fileNames.count == 17, "Tests/DICOMTests/Resources/charset/expected.json: run scripts/make-charset-expected.py")
        let installed = try? FileManager.default.contentsOfDirectory(atPath: CharsetFixtures.charsetFiles.path)
        let names = try #require(installed, "pydicom's charset files are missing at \(CharsetFixtures.charsetFiles.path): run scripts/pydeps.sh")
        #expect(Set(names.filter { $0.hasSuffix(".dcm") }) == Set(Self.fileNames))
    }

    @Test("every text element, in sequences too, and every PN group reads as in pydicom", arguments: fileNames)
    func elements(name: String) throws {
        let file = try DICOMFile.read(try charsetFileBytes(name))
        let expected = try #require(CharsetFixtures.expected[name]).elements
        let ours = textElements(file.dataSet)
        let decodable = expected.filter { !$0.value.privateDictionary }
        #expect(Set(ours.keys) == Set(decodable.keys), "\(name): tag paths differ")
        for (path, _) in expected where expected[path]!.privateDictionary {
            // Known gap: no private dictionary, so these stay UN (raw bytes), not text.
            let tag = DICOM.Tag(rawValue: UInt32(path, radix: 16) ?? 0)
            #expect(file.dataSet[tag]?.vr == .UN, "\(name) \(path)")
        }
        for (path, want) in decodable.sorted(by: { $0.key < $1.key }) {
            guard let got = ours[path] else { continue }
            #expect(got.vr.rawValue == want.vr, "\(name) \(path) VR")
            #expect(got.values == want.values, "\(name) \(path)")
            if let groups = want.groups {
                #expect(got.groups == groups, "\(name) \(path) PN groups")
            }
        }
    }

    @Test("inspect --json gives PatientName and StudyDescription as pydicom's text", arguments: fileNames)
    func inspect(name: String) throws {
        let (report, readable) = InspectReport.json(for: try charsetFileBytes(name), digest: sha256Hex)
        #expect(readable)
        let want = try #require(CharsetFixtures.expected[name]).inspect
        for key in InspectReport.textKeywords {
            let ours = report[key].flatMap(foundationValue)
            #expect(jsonEqual(ours, want[key]), "\(name) \(key): ours \(String(describing: ours)), pydicom \(String(describing: want[key]))")
        }
    }

    @Test("chrX2.dcm (GB18030): the PatientName groups and components")
    func gb18030PatientName() throws {
        let ds = try DICOMFile.read(try charsetFileBytes("chrX2.dcm")).dataSet
        let want = try #require(CharsetFixtures.expected["chrX2.dcm"]?.elements["00100010"]?.groups?.first)
        let pn = try #require(ds.personName(.patientName))
        #expect([pn.alphabetic, pn.ideographic] == want)
        #expect(pn.familyName == "Wang" && pn.givenName == "XiaoDong")
        #expect(ds.characterSet.terms == ["GB18030"] && ds.characterSet.warnings.isEmpty)
    }

    @Test("chrSQEncoding*.dcm: an item uses its own (0008,0005), or inherits its parent's")
    func sequenceCharacterSets() throws {
        let own = try DICOMFile.read(try charsetFileBytes("chrSQEncoding.dcm")).dataSet
        let inherited = try DICOMFile.read(try charsetFileBytes("chrSQEncoding1.dcm")).dataSet
        let ownItem = try #require(own.sequence(Tag(0x0032, 0x1064))?.first)
        let inheritedItem = try #require(inherited.sequence(Tag(0x0032, 0x1064))?.first)
        #expect(own.characterSet.isUTF8)
        #expect(ownItem.characterSet.terms == ["ISO 2022 IR 13", "ISO 2022 IR 87"])
        #expect(ownItem.inheritedCharacterSet.isUTF8)
        #expect(inheritedItem.characterSet == inherited.characterSet)
        #expect(!inheritedItem.contains(.specificCharacterSet))
        let want = try #require(CharsetFixtures.expected["chrSQEncoding.dcm"]?.elements["00321064[0].00100010"]?.values)
        #expect(ownItem.personNames(.patientName)?.map(\.description) == want)
        #expect(inheritedItem.personNames(.patientName)?.map(\.description) == want)
    }
}

@Suite("Character sets: values built in Swift, one family at a time (expected values from pydicom)")
struct CharsetSyntheticTests {
    static func padded(_ b: [UInt8]) -> [UInt8] { b.count % 2 == 0 ? b : b + [0x20] }

    /// The case's data set, built in memory, and the same after DICOMWriter and DICOMFile.read.
    static func dataSets(_ c: CharsetFixtures.SyntheticCase) throws -> [DataSet] {
        var ds = DataSet()
        if let terms = c.terms {
            ds.set(.specificCharacterSet, vr: .CS, bytes: padded(terms.joined(separator: "\\").unicodeScalars.map { UInt8($0.value) }))
        }
        ds.set(CharsetFixtures.tag(for: c.vr), vr: c.vr, bytes: padded(c.bytes))
        return [ds, try DICOMFile.read(try DICOMWriter.write(ds)).dataSet]
    }

    static func check(_ c: CharsetFixtures.SyntheticCase) throws {
        if c.deviation == nil {
            #expect(c.expected == c.pydicom, "fixture: expected must be pydicom's value")
        }
        let tag = CharsetFixtures.tag(for: c.vr)
        for ds in try dataSets(c) {
            if c.vr == .PN {
                let names: [PersonName] = ds.personNames(tag) ?? []
                #expect(names.map { $0.description } == c.expected, "\(c.name)")
                if let groups = c.groups, c.deviation == nil {
                    #expect(names.map { $0.groups } == groups, "\(c.name) groups")
                }
            } else {
                #expect((ds.strings(tag) ?? []) == c.expected, "\(c.name)")
            }
        }
    }

    static func family(_ name: String) -> [CharsetFixtures.SyntheticCase] { CharsetFixtures.synthetic(family: name) }

    @Test("Chinese: GB18030, GBK, GB2312, ISO 2022 IR 58 with escapes", arguments: family("chinese"))
    func chinese(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("Japanese: ISO 2022 IR 13 / 87 / 159 escapes in each PN group", arguments: family("japanese"))
    func japanese(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("Korean: ISO 2022 IR 149", arguments: family("korean"))
    func korean(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("Latin-1, -2, -3, -4, -5, -9", arguments: family("latin"))
    func latin(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("Cyrillic, Greek, Hebrew, Arabic, Thai", arguments: family("cyrillic") + family("greek") + family("hebrew") + family("arabic") + family("thai"))
    func otherSingleByte(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("UTF-8 and the default repertoire (CS stays default)", arguments: family("utf8") + family("default"))
    func utf8AndDefault(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("malformed input falls back as pydicom does, without crashing", arguments: family("malformed"))
    func malformed(_ c: CharsetFixtures.SyntheticCase) throws { try Self.check(c) }

    @Test("the fixture has every family")
    func families() {
        for f in ["chinese", "japanese", "korean", "latin", "cyrillic", "greek", "hebrew", "arabic", "thai", "utf8", "default", "malformed"] {
            #expect(!Self.family(f).isEmpty, "no \(f) cases in synthetic.json")
        }
    }

    @Test("GB18030 Wang^XiaoDong=王^小东=: components and groups")
    func gb18030Components() throws {
        let c = try #require(CharsetFixtures.synthetic.first { $0.name == "gb18030 person name" })
        let ds = try Self.dataSets(c)[1]
        let pn = try #require(ds.personName(.patientName))
        #expect(pn.description == c.expected.first)
        #expect(pn.groups == c.groups?.first)
        #expect(pn.familyName == "Wang" && pn.givenName == "XiaoDong")
        #expect(pn.raw.hasSuffix("="))  // the empty phonetic group is kept in the raw form only
    }

    @Test("sequence items inherit (0008,0005), nested, unless they carry their own")
    func inheritance() throws {
        let gb = try #require(CharsetFixtures.synthetic.first { $0.name == "gb18030 person name" })
        let latin = try #require(CharsetFixtures.synthetic.first { $0.name == "latin-1" })
        var inner = DataSet()
        inner.set(.patientName, vr: .PN, bytes: Self.padded(gb.bytes))
        var own = DataSet()
        own.set(.specificCharacterSet, "ISO_IR 100")
        own.set(.patientName, vr: .PN, bytes: Self.padded(latin.bytes))
        var middle = DataSet()
        middle.set(Tag(0x0040, 0xA730), sequence: [inner, own])
        var top = DataSet()
        top.set(.specificCharacterSet, "GB18030")
        top.set(.patientName, vr: .PN, bytes: Self.padded(gb.bytes))
        top.set(Tag(0x0040, 0xA730), sequence: [middle])
        for ds in [top, try DICOMFile.read(try DICOMWriter.write(top)).dataSet] {
            let items = try #require(ds.sequence(Tag(0x0040, 0xA730))?.first?.sequence(Tag(0x0040, 0xA730)))
            #expect(items.count == 2)
            #expect(items[0].personNames(.patientName)?.map(\.description) == gb.expected)
            #expect(items[1].personNames(.patientName)?.map(\.description) == latin.expected)
            #expect(items[1].characterSet.terms == ["ISO_IR 100"])
        }
    }
}

@Suite("Character sets: decode_bytes against pydicom on random input")
struct CharsetDifferentialTests {
    @Test("seeded random byte strings (escapes, delimiters, multibyte, truncations) decode as in pydicom",
          arguments: CharsetFixtures.differential)
    func matchesPydicom(_ config: CharsetFixtures.DifferentialConfig) {
        let charset = SpecificCharacterSet(terms: config.terms)
        var mismatches = 0
        for c in config.cases {
            let ours = charset.decode(c.bytes)
            if ours != c.text {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(config.testDescription) \(c.bytes.map { hex2($0) }.joined()): ours \(ours.debugDescription) pydicom \(c.text.debugDescription)")
                }
            }
        }
        #expect(mismatches == 0)
        #expect(config.cases.count >= 30)
    }

    @Test("the fixture covers every configuration")
    func complete() {
        #expect(CharsetFixtures.differential.count == 46)
    }
}

@Suite("Character sets: terms, robustness, iconv")
struct CharsetMechanicsTests {
    @Test("terms: misspellings, unknown terms, stand-alone terms, Python codec names")
    func terms() {
        #expect(SpecificCharacterSet(terms: ["ISO IR 100"]).warnings.count == 1)
        #expect(SpecificCharacterSet(terms: ["ISO_IR 100"]).warnings.isEmpty)
        #expect(SpecificCharacterSet(terms: ["ISO_IR 999"]).warnings.first?.contains("unknown") == true)
        #expect(SpecificCharacterSet(terms: ["ISO_IR 192", "GB18030"]).storage.codecs.count == 1)
        #expect(SpecificCharacterSet(terms: ["", "ISO 2022 IR 87", "GBK"]).storage.codecs.map(\.name) == ["iso8859", "iso2022_jp"])
        #expect(SpecificCharacterSet(terms: ["latin1"]).warnings.isEmpty)
        #expect(SpecificCharacterSet(elementValue: Array("\\ISO 2022 IR 87 ".utf8)).terms == ["", "ISO 2022 IR 87"])
        #expect(SpecificCharacterSet(elementValue: []).terms.isEmpty)
        #expect(SpecificCharacterSet(elementValue: Array("ISO_IR 192".utf8)).isUTF8)
    }

    @Test("glibc has every converter the decoders use")
    func iconvAvailable() {
        for pool in Iconv.all { #expect(pool.isAvailable, "iconv cannot open \(pool.fromCode)") }
        for charset in SingleByteCharset.allCases { #expect(charset.table.isAvailable, "iconv cannot open \(charset.rawValue)") }
    }

    @Test("random bytes under every configuration: no crash, valid bounded text, same result twice")
    func randomBytes() {
        var rng = SplitMix64(seed: 0x5EED_C0DE)
        let configs = CharsetFixtures.differential.map(\.terms) + [["ISO_IR 203"], ["ISO 2022 IR 58"], ["", "ISO 2022 IR 58"]]
        let alphabet: [UInt8] = [0x1B, 0x24, 0x28, 0x29, 0x2D, 0x2E, 0x26, 0x40, 0x42, 0x44, 0x4A, 0x49, 0x43, 0x41, 0x4E,
                                 0x0D, 0x0A, 0x5E, 0x3D, 0x5C, 0x21, 0x7E, 0x80, 0x81, 0x30, 0x39, 0xA1, 0xA4, 0xD4, 0xFE, 0xFF]
        for terms in configs {
            let charset = SpecificCharacterSet(terms: terms)
            for _ in 0..<300 {
                let n = Int(rng.next() % 24)
                let bytes = (0..<n).map { _ in rng.next() % 3 == 0 ? UInt8(truncatingIfNeeded: rng.next()) : alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                let text = charset.decode(bytes)
                #expect(text.utf8.count <= TextCodec.outputBound(bytes.count))
                #expect(charset.decode(bytes) == text)
            }
        }
    }

    @Test("concurrent decoding shares iconv descriptors safely")
    func concurrent() async {
        let configs = CharsetFixtures.differential
        let failures = await withTaskGroup(of: Int.self) { group -> Int in
            for worker in 0..<8 {
                group.addTask {
                    var bad = 0
                    for round in 0..<20 {
                        let config = configs[(worker * 7 + round) % configs.count]
                        let charset = SpecificCharacterSet(terms: config.terms)
                        for c in config.cases where charset.decode(c.bytes) != c.text { bad += 1 }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(failures == 0)
    }

    @Test("other VRs stay in the default repertoire; isUTF8 still answers")
    func defaultRepertoireVRs() {
        var ds = DataSet()
        ds.set(.specificCharacterSet, "ISO_IR 192")
        ds.set(.modality, vr: .CS, bytes: [0xC3, 0xA9])
        ds.set(.studyDescription, vr: .LO, bytes: [0xC3, 0xA9])
        #expect(ds.isUTF8)
        #expect(ds.string(.modality) == "\u{C3}\u{A9}")
        #expect(ds.string(.studyDescription) == "é")
        ds.remove(.specificCharacterSet)
        #expect(!ds.isUTF8)
        #expect(ds.string(.studyDescription) == "\u{C3}\u{A9}")
    }
}

/// Small deterministic generator for the robustness test.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
