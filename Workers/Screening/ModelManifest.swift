import Crypto
import Foundation
import GridContract
import Imaging

/// A model as configuration: `Ops/models/<name>.json` beside its `.onnx` file. The manifest
/// says what the model takes (which series, how its slices are windowed and resampled) and
/// how its outputs become findings; the checksum pins the exact file.
public struct ModelManifest: Sendable, Codable, Equatable {
    public var name: String
    public var version: String
    /// The ONNX file, relative to the manifest's folder.
    public var file: String
    /// SHA-256 of the file, hex.
    public var sha256: String
    public var description: String?
    public var input: ModelInputSpec
    public var output: ModelOutputSpec

    public var provenance: ModelProvenance { ModelProvenance(name: name, version: version, sha256: sha256.lowercased()) }

    /// Whether the model screens this series (modality and body part, as the built-in rules).
    public func matches(_ info: SeriesInfo) -> Bool {
        ScreeningConfig.Rule(modality: input.modality, bodyParts: input.bodyParts, screeners: []).matches(info)
    }
}

/// How a slice classifier's output becomes findings.
public struct ModelOutputSpec: Sendable, Codable, Equatable {
    public enum Activation: String, Sendable, Codable { case none, sigmoid, softmax }
    public enum Aggregate: String, Sendable, Codable { case max, mean }

    /// The output to read; nil takes the model's first output.
    public var tensor: String?
    /// Applied to each slice's outputs before thresholds (`none`: they are probabilities already).
    public var activation: Activation
    /// How the slices' probabilities become the series' (max: any slice positive).
    public var aggregate: Aggregate
    public var findings: [ModelFindingSpec]
}

/// One output class that maps to a finding.
public struct ModelFindingSpec: Sendable, Codable, Equatable {
    /// Index of the class in the output's last dimension.
    public var index: Int
    public var code: String
    public var label: String
    /// Reported at or above this probability.
    public var reportAt: Double
    /// The series is urgent / critical at or above these (absent: never).
    public var urgentAt: Double?
    public var criticalAt: Double?

    public func urgency(_ probability: Double) -> Urgency {
        if let criticalAt, probability >= criticalAt { return .critical }
        if let urgentAt, probability >= urgentAt { return .urgent }
        return .routine
    }
}

/// The verified models of a folder: every manifest parsed, every file's checksum matched.
/// A worker refuses to start on any mismatch; an empty folder (or none) means no models.
public struct ModelCatalog: Sendable {
    public struct Entry: Sendable {
        public var manifest: ModelManifest
        /// Absolute path of the ONNX file.
        public var modelPath: String
        public var manifestPath: String
    }

    public var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries }

    public static let empty = ModelCatalog()

    public var isEmpty: Bool { entries.isEmpty }

    /// The models that screen this series, in name order.
    public func entries(for info: SeriesInfo) -> [Entry] { entries.filter { $0.manifest.matches(info) } }

    /// Reads every `*.json` in `directory`, checks it and its model file's SHA-256.
    public static func load(directory: String) throws -> ModelCatalog {
        let folder = URL(fileURLWithPath: directory).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ScreeningError.model("model folder \(directory) does not exist")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        var entries: [Entry] = []
        for name in names {
            let entry = try loadManifest(at: folder.appendingPathComponent(name).path)
            if let other = entries.first(where: { $0.manifest.name == entry.manifest.name }) {
                throw ScreeningError.model("\(name): model name \(entry.manifest.name) is also used by \((other.manifestPath as NSString).lastPathComponent)")
            }
            entries.append(entry)
        }
        return ModelCatalog(entries: entries)
    }

    /// One manifest, checked: fields, the file inside the manifest's folder, its checksum.
    public static func loadManifest(at path: String) throws -> Entry {
        let label = (path as NSString).lastPathComponent
        let manifest: ModelManifest
        do {
            manifest = try JSONDecoder().decode(ModelManifest.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        } catch let error as DecodingError {
            throw ScreeningError.model("\(label): not a model manifest (\(describe(error)))")
        } catch {
            throw ScreeningError.model("\(label): unreadable")
        }
        try validate(manifest, label: label)
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().standardizedFileURL
        let modelURL = folder.appendingPathComponent(manifest.file).standardizedFileURL
        guard modelURL.path.hasPrefix(folder.path + "/") else {
            throw ScreeningError.model("\(label): file \(manifest.file) is outside the manifest's folder")
        }
        guard FileManager.default.isReadableFile(atPath: modelURL.path) else {
            throw ScreeningError.model("\(label): model file \(manifest.file) is missing")
        }
        let actual = try sha256(ofFile: modelURL.path)
        guard actual == manifest.sha256.lowercased() else {
            throw ScreeningError.model("\(label): model file \(manifest.file) has SHA-256 \(actual), the manifest says \(manifest.sha256.lowercased())")
        }
        return Entry(manifest: manifest, modelPath: modelURL.path, manifestPath: path)
    }

    static func validate(_ m: ModelManifest, label: String) throws {
        let nameCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789-._")
        guard !m.name.isEmpty, m.name.count <= 64, m.name.allSatisfy({ nameCharacters.contains($0) }) else {
            throw ScreeningError.model("\(label): name must be 1-64 of a-z 0-9 - . _")
        }
        guard !m.version.isEmpty, m.version.count <= 32, !m.version.contains(where: { $0.isWhitespace || $0 == "#" || $0 == "@" }) else {
            throw ScreeningError.model("\(label): version must be 1-32 characters without spaces, # or @")
        }
        guard m.sha256.count == 64, m.sha256.allSatisfy(\.isHexDigit) else { throw ScreeningError.model("\(label): sha256 must be 64 hex digits") }
        guard m.file.hasSuffix(".onnx") else { throw ScreeningError.model("\(label): file must be an .onnx model") }
        do { try m.input.validate() } catch let error as ScreeningError { throw ScreeningError.model("\(label): \(error.message)") }
        guard !m.input.tensor.isEmpty else { throw ScreeningError.model("\(label): input.tensor is empty") }
        guard !m.output.findings.isEmpty else { throw ScreeningError.model("\(label): output.findings is empty") }
        guard Set(m.output.findings.map(\.index)).count == m.output.findings.count else {
            throw ScreeningError.model("\(label): two findings map the same output index")
        }
        for f in m.output.findings {
            guard f.index >= 0, !f.code.isEmpty, !f.label.isEmpty else { throw ScreeningError.model("\(label): finding \(f.code) needs index >= 0, code and label") }
            for t in [f.reportAt, f.urgentAt, f.criticalAt].compactMap({ $0 }) where !(t > 0 && t <= 1) {
                throw ScreeningError.model("\(label): finding \(f.code) thresholds must be in (0, 1]")
            }
            if let u = f.urgentAt, u < f.reportAt { throw ScreeningError.model("\(label): finding \(f.code) urgentAt is below reportAt") }
            if let c = f.criticalAt, c < f.reportAt { throw ScreeningError.model("\(label): finding \(f.code) criticalAt is below reportAt") }
        }
    }

    /// Streamed: a model file may be large.
    static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ScreeningError.model("cannot open \((path as NSString).lastPathComponent)") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context): "missing \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            context.codingPath.isEmpty ? "invalid JSON" : "bad value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        @unknown default: "invalid"
        }
    }
}

extension ScreeningError {
    public static func model(_ m: String) -> ScreeningError { ScreeningError(code: "screening.model", message: m) }
}
