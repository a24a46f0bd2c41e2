import Foundation
import DICOM

/// The shared reference corpus: `<package root>/../shared/corpus`, or $RADGRID_CORPUS_DIR.
enum Corpus {
    static let directory: URL? = {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["RADGRID_CORPUS_DIR"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))  // an explicit setting replaces the default
        } else {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            candidates.append(root.deletingLastPathComponent().appendingPathComponent("shared/corpus"))
        }
        for c in candidates {
            let dicom = c.appendingPathComponent("dicom")
            if fm.fileExists(atPath: dicom.appendingPathComponent("expected.json").path) { return dicom }
            if fm.fileExists(atPath: c.appendingPathComponent("expected.json").path) { return c }
        }
        return nil
    }()

    static var isAvailable: Bool { directory != nil }

    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        guard let dir = directory,
              let data = try? Data(contentsOf: dir.appendingPathComponent("expected.json")),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return [:] }
        return obj
    }()

    static var fileNames: [String] { expected.keys.sorted() }

    static func bytes(_ name: String) throws -> [UInt8] {
        guard let dir = directory else { throw CocoaError(.fileNoSuchFile) }
        return [UInt8](try Data(contentsOf: dir.appendingPathComponent(name)))
    }
}

/// Converts our JSONValue to Foundation objects for comparison with expected.json.
func foundationValue(_ v: JSONValue) -> Any? {
    switch v {
    case .null: return nil
    case .bool(let b): return b
    case .int(let i): return i
    case .double(let d): return d
    case .string(let s): return s
    case .array(let a): return a.map { foundationValue($0) as Any }
    case .object(let o): return o.mapValues { foundationValue($0) as Any }
    }
}

/// Loose equality for JSON scalars: numbers compare numerically.
func jsonEqual(_ a: Any?, _ b: Any?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case (let x as NSNumber, let y as NSNumber): return abs(x.doubleValue - y.doubleValue) <= 1e-9 * max(1, abs(y.doubleValue))
    case (let x as Int, let y as NSNumber): return Double(x) == y.doubleValue
    case (let x as Double, let y as NSNumber): return abs(x - y.doubleValue) <= 1e-9 * max(1, abs(y.doubleValue))
    case (let x as String, let y as String): return x == y
    case (let x as [Any], let y as [Any]): return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
    default: return false
    }
}
