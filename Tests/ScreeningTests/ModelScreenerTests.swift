import Foundation
import Imaging
import Inference
import Testing
@testable import Screening

/// The model screeners of issue #20 against the trained models in Ops/models: OpenVINO's
/// outputs against onnxruntime's (Tests/Clients/onnx_reference.py, pinned in scripts/pydeps.sh)
/// on held-out hard phantoms, the manifest's refusals, and findings from `screen`.
///
/// Nothing here skips: without the models, python3 or onnxruntime the suite fails and says
/// what to run. `RADGRID_TEST_MODELS` points it at another folder of models (development).
@Suite struct ModelScreenerTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let modelsDir = ProcessInfo.processInfo.environment["RADGRID_TEST_MODELS"] ?? packageRoot.appendingPathComponent("Ops/models").path
    static let expectedModels = ["ct-chest-nodule-cnn", "ct-head-hyperdensity-cnn"]
    /// Not a training, validation or test seed of scripts/train-screen-models.sh.
    static let seed: UInt64 = 777

    /// The catalog, failing (not skipping) when the trained models are not there.
    static func catalog() throws -> ModelCatalog {
        let catalog: ModelCatalog
        do {
            catalog = try ModelCatalog.load(directory: modelsDir)
        } catch {
            Issue.record("the trained models are needed in \(modelsDir) (scripts/train-screen-models.sh): \(error)")
            throw error
        }
        let names = catalog.entries.map(\.manifest.name).sorted()
        try #require(expectedModels.allSatisfy(names.contains), "models in \(modelsDir): \(names); expected \(expectedModels)")
        return catalog
    }

    static func kind(of manifest: ModelManifest) throws -> PhantomSpec.Kind {
        let parts = Set(manifest.input.bodyParts.map { $0.uppercased() })
        if !parts.isDisjoint(with: ["HEAD", "BRAIN", "SKULL"]) { return .head }
        if !parts.isDisjoint(with: ["CHEST", "LUNG", "THORAX"]) { return .chest }
        throw ScreeningError.model("no phantom for body parts \(manifest.input.bodyParts)")
    }

    /// Held-out hard phantoms 0..<3 of seed 777 (0 and 2 carry a lesion), generated once.
    static let phantoms: [PhantomSpec.Kind: Result<[(series: PreprocessedSeries, positive: Bool)], Error>] = {
        var result: [PhantomSpec.Kind: Result<[(series: PreprocessedSeries, positive: Bool)], Error>] = [:]
        for kind in PhantomSpec.Kind.allCases {
            result[kind] = Result {
                try (0..<3).map { i in
                    let (spec, positive) = Validation.lesionCase(kind: kind, index: i, seed: seed, hard: true)
                    return (try Phantom.generate(spec).preprocessed(), positive)
                }
            }
        }
        return result
    }()

    static func cases(_ kind: PhantomSpec.Kind) throws -> [(series: PreprocessedSeries, positive: Bool)] {
        try #require(phantoms[kind]).get()
    }

    // MARK: OpenVINO against onnxruntime

    @Test("OpenVINO's outputs match onnxruntime's within 1e-4 on held-out hard phantoms")
    func openVINOMatchesOnnxruntime() async throws {
        let catalog = try Self.catalog()
        let work = try Self.temporaryDirectory("onnx-reference")
        defer { try? FileManager.default.removeItem(atPath: work) }
        for entry in catalog.entries {
            let manifest = entry.manifest
            let screener = try ModelScreener(entry: entry, options: CompileOptions(threads: 1))
            let spec = manifest.input
            // The three series' slices as one batch: both runtimes see the very same tensor.
            var values: [Float] = []
            for c in try Self.cases(try Self.kind(of: manifest)) { values += try ModelInputTensor.slices(c.series, spec: spec) }
            let perSlice = spec.channels * spec.size[0] * spec.size[1]
            let shape = [values.count / perSlice, spec.channels, spec.size[0], spec.size[1]]
            let outputs = try await screener.model.run([spec.tensor: try Tensor(shape: shape, floats: values)])
            let ours = try #require(outputs.first).tensor

            let input = "\(work)/\(manifest.name)-in.npy", output = "\(work)/\(manifest.name)-out.npy"
            try NumPyArray(shape: shape, values: values).write(to: input)
            let (status, log) = try Self.python(["run", entry.modelPath, input, output, "--threads", "1"], in: work)
            try #require(status == 0, "onnx_reference.py run failed for \(manifest.name) (python3 and onnxruntime are needed: scripts/pydeps.sh): \(log)")
            let reference = try NumPyArray.read(output)
            #expect(reference.shape == ours.shape, "\(manifest.name): onnxruntime \(reference.shape), OpenVINO \(ours.shape)")
            let a = ours.floats()
            try #require(a.count == reference.values.count)
            let worst = zip(a, reference.values).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 1e-4, "\(manifest.name): largest |OpenVINO - onnxruntime| is \(worst) over \(a.count) values")
            #expect(a.allSatisfy { $0.isFinite })
        }
    }

    // MARK: Manifest refusals

    /// A copy of one real model and its manifest in a fresh folder; `edit` changes the manifest.
    func copiedModel(_ label: String, edit: (inout [String: Any]) -> Void = { _ in }) throws -> (folder: String, manifest: String, model: String) {
        let entry = try #require(try Self.catalog().entries.first)
        let folder = try Self.temporaryDirectory(label)
        let model = "\(folder)/\(entry.manifest.file)"
        try FileManager.default.copyItem(atPath: entry.modelPath, toPath: model)
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: entry.manifestPath))) as? [String: Any])
        edit(&json)
        let manifest = "\(folder)/\(entry.manifest.name).json"
        try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]).write(to: URL(fileURLWithPath: manifest))
        return (folder, manifest, model)
    }

    /// Loading the folder fails with `screening.model` and a message naming the problem.
    func expectRefusal(_ folder: String, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        do {
            let catalog = try ModelCatalog.load(directory: folder)
            Issue.record("accepted \(catalog.entries.map(\.manifest.name)); expected a refusal mentioning \(words)", sourceLocation: sourceLocation)
        } catch let error as ScreeningError {
            #expect(error.code == "screening.model", sourceLocation: sourceLocation)
            for word in words { #expect(error.message.contains(word), "\(error.message) does not mention \(word)", sourceLocation: sourceLocation) }
        } catch {
            Issue.record("not a ScreeningError: \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func aCopiedModelLoads() throws {
        let copy = try copiedModel("copy-ok")
        defer { try? FileManager.default.removeItem(atPath: copy.folder) }
        #expect(try ModelCatalog.load(directory: copy.folder).entries.count == 1)
    }

    @Test func checksumMismatchIsRefused() throws {
        let copy = try copiedModel("checksum")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: copy.model))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: copy.model))
        expectRefusal(copy.folder, mentions: ["SHA-256", "the manifest says"])
    }

    @Test func missingModelFileIsRefused() throws {
        let copy = try copiedModel("missing")
        try FileManager.default.removeItem(atPath: copy.model)
        expectRefusal(copy.folder, mentions: ["missing"])
    }

    @Test func fileOutsideTheFolderIsRefused() throws {
        let copy = try copiedModel("outside") { $0["file"] = "../x.onnx" }
        expectRefusal(copy.folder, mentions: ["../x.onnx", "outside"])
    }

    @Test func invalidJSONAndMissingFieldsAreRefused() throws {
        let broken = try copiedModel("invalid-json")
        try Data("{\"name\": \"x\",".utf8).write(to: URL(fileURLWithPath: broken.manifest))
        expectRefusal(broken.folder, mentions: ["not a model manifest"])

        let noChecksum = try copiedModel("missing-field") { $0.removeValue(forKey: "sha256") }
        expectRefusal(noChecksum.folder, mentions: ["missing sha256"])

        let noWindow = try copiedModel("missing-nested") { json in
            var input = json["input"] as? [String: Any] ?? [:]
            input.removeValue(forKey: "windowHU")
            json["input"] = input
        }
        expectRefusal(noWindow.folder, mentions: ["missing input.windowHU"])
    }

    @Test func duplicateModelNamesAreRefused() throws {
        let copy = try copiedModel("duplicate")
        try FileManager.default.copyItem(atPath: copy.manifest, toPath: "\(copy.folder)/zz-second.json")
        let name = (copy.manifest as NSString).lastPathComponent
        expectRefusal(copy.folder, mentions: ["zz-second.json", "also used by \(name)"])
    }

    @Test(arguments: [("reportAt", 1.5), ("reportAt", 0.0), ("reportAt", -0.2), ("criticalAt", 1.01), ("urgentAt", 0.0)])
    func thresholdsOutOfRangeAreRefused(_ field: String, _ value: Double) throws {
        let copy = try copiedModel("threshold-\(field)") { json in
            var output = json["output"] as? [String: Any] ?? [:]
            var findings = output["findings"] as? [[String: Any]] ?? []
            findings[0][field] = value
            output["findings"] = findings
            json["output"] = output
        }
        expectRefusal(copy.folder, mentions: ["thresholds must be in (0, 1]"])
    }

    @Test func thresholdsBelowReportAtAreRefused() throws {
        let copy = try copiedModel("threshold-order") { json in
            var output = json["output"] as? [String: Any] ?? [:]
            var findings = output["findings"] as? [[String: Any]] ?? []
            findings[0]["reportAt"] = 0.8
            findings[0]["criticalAt"] = 0.5
            output["findings"] = findings
            json["output"] = output
        }
        expectRefusal(copy.folder, mentions: ["criticalAt is below reportAt"])
    }

    @Test(arguments: [("size", [128, 128] as [Int]), ("size", [160, 96]), ("channels", [5]), ("channels", [1])])
    func inputShapeUnlikeTheModelsIsRefusedAtCompile(_ field: String, _ value: [Int]) throws {
        let copy = try copiedModel("shape-\(field)") { json in
            var input = json["input"] as? [String: Any] ?? [:]
            input[field] = field == "size" ? value as Any : value[0] as Any
            json["input"] = input
        }
        defer { try? FileManager.default.removeItem(atPath: copy.folder) }
        // The manifest itself is valid and its checksum matches: only the model can refuse it.
        let entry = try ModelCatalog.loadManifest(at: copy.manifest)
        do {
            _ = try ModelScreener(entry: entry, options: CompileOptions(threads: 1))
            Issue.record("a manifest with input \(field) \(value) was accepted")
        } catch let error as ScreeningError {
            #expect(error.code == "screening.model")
            #expect(error.message.contains("does not take float32"), "\(error.message)")
            #expect(error.message.contains(entry.manifest.name))
        }
    }

    // MARK: Findings

    @Test("screen: the model's provenance, the manifest's finding code, urgency from its thresholds")
    func screenReportsProvenanceCodeAndUrgency() async throws {
        for entry in try Self.catalog().entries {
            let manifest = entry.manifest
            let spec = try #require(manifest.output.findings.first)
            let screener = try ModelScreener(entry: entry, options: CompileOptions(threads: 1))
            let cases = try Self.cases(try Self.kind(of: manifest))
            let positive = try #require(cases.first { $0.positive }), negative = try #require(cases.first { !$0.positive })
            var scores: [Bool: Double] = [:]
            for c in [positive, negative] {
                let out = try await screener.screen(c.series)
                #expect(out.model == manifest.provenance)
                #expect(out.screenerID == manifest.name && out.screenerVersion == manifest.version)
                let p = out.suspicionScore
                #expect(p >= 0 && p <= 1)
                scores[c.positive] = p
                // Reported exactly at or above reportAt, with the manifest's code and label.
                #expect(out.findings.count == (p >= spec.reportAt ? 1 : 0), "\(manifest.name) p=\(p) reportAt=\(spec.reportAt)")
                for f in out.findings {
                    #expect(f.code == spec.code && f.label == spec.label)
                    #expect(f.probability == p)
                    #expect(f.slice.map { $0 >= 0 && $0 < c.series.volume.depth } ?? false)
                }
                #expect(out.urgency == (out.findings.isEmpty ? .routine : spec.urgency(p)), "\(manifest.name) p=\(p)")
            }
            let pos = try #require(scores[true]), neg = try #require(scores[false])
            #expect(pos > neg, "\(manifest.name): lesion case \(pos) not above the clean case \(neg)")
        }

        // Urgency from the thresholds is the screener's, not the model's: checked on one model,
        // its positive case, with thresholds placed around that case's score.
        let entry = try #require(try Self.catalog().entries.first)
        let positive = try #require(try Self.cases(try Self.kind(of: entry.manifest)).first { $0.positive })
        func screen(reportAt: Double, urgentAt: Double?, criticalAt: Double?) async throws -> ScreenerOutput {
            var variant = entry
            variant.manifest.output.findings[0].reportAt = reportAt
            variant.manifest.output.findings[0].urgentAt = urgentAt
            variant.manifest.output.findings[0].criticalAt = criticalAt
            return try await ModelScreener(entry: variant, options: CompileOptions(threads: 1)).screen(positive.series)
        }
        let critical = try await screen(reportAt: 0.001, urgentAt: 0.002, criticalAt: 0.003)
        let p = critical.suspicionScore
        try #require(p > 0.003, "\(entry.manifest.name) scores its lesion case \(p)")
        #expect(critical.urgency == .critical && critical.findings.count == 1)
        let urgent = try await screen(reportAt: p * 0.3, urgentAt: p * 0.6, criticalAt: p < 1 ? (p + 1) / 2 : nil)
        #expect(urgent.urgency == .urgent && urgent.findings.count == 1 && urgent.suspicionScore == p)
        let routine = try await screen(reportAt: p * 0.3, urgentAt: nil, criticalAt: nil)
        #expect(routine.urgency == .routine && routine.findings.count == 1)
        if p < 1 {
            let above = (p + 1) / 2
            let quiet = try await screen(reportAt: above, urgentAt: above, criticalAt: above)
            #expect(quiet.urgency == .routine && quiet.findings.isEmpty && quiet.suspicionScore == p)
        }
    }

    // MARK: Helpers

    static func temporaryDirectory(_ label: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs Tests/Clients/onnx_reference.py with the project's pinned packages (.pydeps).
    static func python(_ arguments: [String], in work: String) throws -> (Int32, String) {
        let log = "\(work)/python-\(UUID().uuidString).log"
        guard FileManager.default.createFile(atPath: log, contents: nil) else { throw ScreeningError.invalidInput("cannot create \(log)") }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", packageRoot.appendingPathComponent("Tests/Clients/onnx_reference.py").path] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = packageRoot.appendingPathComponent(".pydeps").path
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}
