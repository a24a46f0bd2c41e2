import DICOM
import Foundation
import Testing

/// Reference values for character-set decoding, made by scripts/make-charset-expected.py with
/// pydicom 3.0.2 and committed in Tests/DICOMTests/Resources/charset.
enum CharsetFixtures {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let directory = packageRoot.appendingPathComponent("Tests/DICOMTests/Resources/charset")
    /// pydicom's charset test files, inside the wheel that scripts/pydeps.sh installs.
    static let charsetFiles = packageRoot.appendingPathComponent(".pydeps/pydicom/data/charset_files")

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent(name)))
    }

    struct Element {
        let vr: String
        let values: [String]
        let groups: [[String]]?
        /// VR UN in the file; pydicom found the VR in its private dictionary, which this
        /// reader does not have (it keeps such elements as UN bytes).
        let privateDictionary: Bool
    }

    struct FileExpectation {
        let elements: [String: Element]
        let inspect: [String: Any]
    }

    /// expected.json: file name -> tag path -> values.
    nonisolated(unsafe) static let expected: [String: FileExpectation] = {
        guard let obj = try? json("expected.json") as? [String: [String: Any]] else { return [:] }
        return obj.mapValues { file in
            let elements = (file["elements"] as? [String: [String: Any]] ?? [:]).mapValues { e in
                Element(vr: e["vr"] as? String ?? "", values: e["values"] as? [String] ?? [], groups: e["groups"] as? [[String]],
                        privateDictionary: e["private_dictionary"] as? Bool ?? false)
            }
            return FileExpectation(elements: elements, inspect: file["inspect"] as? [String: Any] ?? [:])
        }
    }()

    struct SyntheticCase: Sendable, CustomTestStringConvertible {
        let name: String
        let family: String
        let terms: [String]?
        let vr: VR
        let bytes: [UInt8]
        let expected: [String]
        let pydicom: [String]
        let groups: [[String]]?
        let deviation: String?
        var testDescription: String { name }
    }

    static let synthetic: [SyntheticCase] = {
        guard let list = try? json("synthetic.json") as? [[String: Any]] else { return [] }
        return list.map { c in
            SyntheticCase(name: c["name"] as? String ?? "", family: c["family"] as? String ?? "",
                          terms: c["terms"] as? [String], vr: VR(rawValue: c["vr"] as? String ?? "") ?? .UN,
                          bytes: hexBytes(c["hex"] as? String ?? ""), expected: c["expected"] as? [String] ?? [],
                          pydicom: c["pydicom"] as? [String] ?? [], groups: c["groups"] as? [[String]],
                          deviation: c["deviation"] as? String)
        }
    }()

    static func synthetic(family: String) -> [SyntheticCase] { synthetic.filter { $0.family == family } }

    struct DifferentialConfig: Sendable, CustomTestStringConvertible {
        let terms: [String]
        let cases: [(bytes: [UInt8], text: String)]
        var testDescription: String { terms.isEmpty ? "(none)" : terms.map { "'\($0)'" }.joined(separator: "\\") }
    }

    static let differential: [DifferentialConfig] = {
        guard let list = try? json("differential.json") as? [[String: Any]] else { return [] }
        return list.map { c in
            let cases = (c["cases"] as? [[String]] ?? []).map { (bytes: hexBytes($0[0]), text: $0[1]) }
            return DifferentialConfig(terms: c["terms"] as? [String] ?? [], cases: cases)
        }
    }()

    /// corpus-text.json: PatientName / StudyDescription pydicom reads from the shared corpus.
    nonisolated(unsafe) static let corpusText: [String: [String: Any]] = {
        (try? json("corpus-text.json") as? [String: [String: Any]]) ?? [:]
    }()

    static func hexBytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var it = hex.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            func v(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
            out.append(v(a) << 4 | v(b))
        }
        return out
    }

    /// The element holding a synthetic case's value (one per VR, as in the script).
    static func tag(for vr: VR) -> DICOM.Tag {
        switch vr {
        case .PN: return Tag(0x0010, 0x0010)
        case .LO: return Tag(0x0008, 0x1030)
        case .SH: return Tag(0x0008, 0x0050)
        case .LT: return Tag(0x0010, 0x4000)
        case .ST: return Tag(0x0008, 0x0081)
        case .UT: return Tag(0x0040, 0xA160)
        case .UC: return Tag(0x0018, 0x9277)
        default: return Tag(0x0008, 0x0060)
        }
    }
}
