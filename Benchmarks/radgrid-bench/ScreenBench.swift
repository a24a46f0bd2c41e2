import ArgumentParser
import Foundation
import Imaging
import Inference
import RadGridCore
import Screening

/// `radgrid-bench screen`: validation of the built-in screeners on seeded synthetic phantoms,
/// and of the model screeners (Ops/models) on the held-out hard set: sensitivity,
/// specificity, AUC and speed on one core, against onnxruntime on the same tensors and beside
/// the rule-based screener for the same task.
struct ScreenBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "screen",
        abstract: "Sensitivity, specificity, AUC and ms/series of the built-in and model screeners on synthetic phantoms."
    )

    @Option(help: "Series per screener (half with a lesion or defect).") var count = 200
    @Option(help: "Seed of the phantom set.") var seed: UInt64 = 20_261_123
    @Option(help: "Screener ids (comma-separated).") var screeners = "ct.head.hyperdensity,ct.chest.nodule,qc.image"
    @Option(help: "Screening config JSON (default: built-in thresholds).") var config: String?
    @Flag(help: "Small, coarse phantoms (fast smoke run).") var small = false
    @Flag(help: "Validate the rule-based lesion screeners on the hard phantom set.") var hard = false
    @Flag(help: "Print every case.") var verbose = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    @Option(help: "Folder of model manifests (default: Ops/models when it exists; none: no model section).") var models: String?
    @Option(name: .customLong("model-count"), help: "Held-out hard series per model (half positive).") var modelCount = 200
    @Option(name: .customLong("model-seed"), help: "Seed of the held-out set (the training's test seed: never trained on).")
    var modelSeed: UInt64 = 20_261_203
    @Flag(name: .customLong("skip-onnxruntime"), help: "Do not compare the inference speed with onnxruntime.") var skipOnnxruntime = false
    @Option(name: .customLong("timing-repeat"), help: "Repeats of the OpenVINO / onnxruntime timing over the .npy set (median is reported).")
    var timingRepeat = 3
    @Option(name: .customLong("onnx-reference"), help: "The onnxruntime timing script (run with PYTHONPATH=.pydeps).")
    var onnxReference = "Tests/Clients/onnx_reference.py"

    /// Slices per inference, as the worker's ModelScreener runs them.
    static let batch = 16

    func run() async throws {
        guard count > 0, modelCount > 0, timingRepeat > 0 else { throw ValidationError("--count, --model-count and --timing-repeat must be > 0") }
        var cfg = ScreeningConfig.default
        if let config {
            cfg = try JSONDecoder().decode(ScreeningConfig.self, from: Data(contentsOf: URL(fileURLWithPath: config)))
        }
        var results: [(String, ValidationMetrics)] = []
        print("screener                  n   sens    spec    AUC     ms/series  prep ms\(hard ? "   (hard phantoms)" : "")")
        for id in screeners.split(separator: ",").map(String.init) {
            let m = try Validation.run(screenerID: id, count: count, seed: seed, config: cfg, small: small, hard: hard) { i, positive, out, note in
                guard verbose else { return }
                let fs = out.findings.map { "\($0.code) p=\(f($0.probability, 2)) \($0.label) \($0.boundingBox.map { "x\($0.x0)-\($0.x1) y\($0.y0)-\($0.y1) z\($0.z0)-\($0.z1)" } ?? "") \($0.measurements.map { "\($0.key)=\(f($0.value, 1))" }.sorted())" }
                print("  #\(i) \(positive ? "POS" : "neg") score=\(f(out.suspicionScore)) \(note)\n      " + fs.joined(separator: "\n      "))
            }
            results.append((id, m))
            print(pad(id, 24), pad("\(m.series)", 4), f(m.sensitivity), f(m.specificity), f(m.auc), pad(f(m.msPerSeries, 2), 10), f(m.prepMsPerSeries, 1))
            print("    TP \(m.truePositives) FN \(m.falseNegatives) TN \(m.trueNegatives) FP \(m.falsePositives)")
        }

        var modelResults: [[String: Any]] = []
        var runtimeVersion: String?
        if let folder = modelFolder() {
            let catalog = try ModelCatalog.load(directory: folder)
            if catalog.isEmpty { print("\nno model manifests in \(folder)") }
            if !catalog.isEmpty {
                runtimeVersion = try InferenceRuntime.shared().version
                print("\nmodels in \(folder), held-out hard set seed \(modelSeed), \(modelCount) series each; OpenVINO \(runtimeVersion ?? "?"), 1 thread")
                print("(ms/series: tensor build + inference; OV npy / ORT ms: inference only over the same tensors; ORT/OV >= 1: OpenVINO as fast or faster)")
                print(pad("model", 26), pad("version", 9), pad("n", 4), pad("sens", 7), pad("spec", 7), pad("AUC", 7), pad("ms/series", 10), pad("img/s", 8),
                      pad("OV npy ms", 10), pad("ORT ms", 10), "ORT/OV")
            }
            for entry in catalog.entries {
                modelResults.append(try await benchModel(entry, config: cfg))
            }
        }

        if json {
            var obj: [String: Any] = ["benchmark": "screen", "count": count, "seed": seed, "small": small, "hard": hard]
            var list: [[String: Any]] = []
            for (id, m) in results {
                let row: [String: Any] = ["sensitivity": m.sensitivity, "specificity": m.specificity, "auc": m.auc, "ms_per_series": m.msPerSeries,
                                          "tp": m.truePositives, "fp": m.falsePositives, "tn": m.trueNegatives, "fn": m.falseNegatives,
                                          "prep_ms_per_series": m.prepMsPerSeries]
                // Kept at the top level as before, and as a list beside the models.
                obj[id] = row
                list.append(row.merging(["screener": id]) { a, _ in a })
            }
            obj["screeners"] = list
            obj["models"] = modelResults
            if !modelResults.isEmpty {
                obj["model_seed"] = modelSeed
                obj["model_count"] = modelCount
                obj["openvino"] = runtimeVersion ?? NSNull()
            }
            let data = try JSONSerialization.data(withJSONObject: sanitized(obj), options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    /// `--models`, else Ops/models when present; nil: no model section.
    func modelFolder() -> String? {
        if let models { return models }
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: "Ops/models", isDirectory: &isDirectory) && isDirectory.boolValue ? "Ops/models" : nil
    }

    // MARK: One model

    /// Which phantom and which rule-based screener go with a model, by its body parts.
    static func task(of manifest: ModelManifest) throws -> (kind: PhantomSpec.Kind, rule: String) {
        let parts = Set(manifest.input.bodyParts.map { $0.uppercased() })
        if !parts.isDisjoint(with: ["HEAD", "BRAIN", "SKULL"]) { return (.head, HeadHyperdensityScreener.screenerID) }
        if !parts.isDisjoint(with: ["CHEST", "LUNG", "THORAX"]) { return (.chest, ChestNoduleScreener.screenerID) }
        throw ScreeningError.config("model \(manifest.name): no phantom set for body parts \(manifest.input.bodyParts)")
    }

    struct Tally {
        var samples: [(score: Double, positive: Bool)] = []
        var tp = 0, fp = 0, tn = 0, fn = 0

        mutating func add(score: Double, flagged: Bool, positive: Bool) {
            samples.append((score, positive))
            switch (positive, flagged) {
            case (true, true): tp += 1
            case (true, false): fn += 1
            case (false, true): fp += 1
            case (false, false): tn += 1
            }
        }

        var sensitivity: Double { tp + fn > 0 ? Double(tp) / Double(tp + fn) : .nan }
        var specificity: Double { tn + fp > 0 ? Double(tn) / Double(tn + fp) : .nan }
        var auc: Double { Validation.auc(samples) }
    }

    func benchModel(_ entry: ModelCatalog.Entry, config: ScreeningConfig) async throws -> [String: Any] {
        let manifest = entry.manifest
        let (kind, ruleID) = try Self.task(of: manifest)
        let finding = try manifest.output.findings.first.orThrow(ScreeningError.model("model \(manifest.name) has no finding"))
        // "One core": one inference thread; the tensor build runs on the calling thread.
        let screener = try ModelScreener(entry: entry, options: CompileOptions(threads: 1), batchSize: Self.batch)
        let rule = try config.makeScreener(ruleID)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-screen-bench-\(UUID().uuidString)")
        if !skipOnnxruntime { try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true) }
        defer { try? FileManager.default.removeItem(at: work) }

        // One pass over the held-out set: each series generated and preprocessed once, then
        // screened by the model and by the rule-based screener, and written out for the timing.
        var model = Tally(), ruleBased = Tally()
        var modelMs = 0.0, ruleMs = 0.0, prepMs = 0.0
        var slices = 0
        for i in 0..<modelCount {
            let t0 = WallClock.monotonicNanoseconds()
            let (spec, positive) = Validation.lesionCase(kind: kind, index: i, seed: modelSeed, hard: true)
            let series = try Phantom.generate(spec).preprocessed()
            prepMs += Double(WallClock.monotonicNanoseconds() - t0) / 1e6

            let out = try await screener.screen(series)
            modelMs += out.runTimeMs
            slices += series.volume.depth
            model.add(score: out.suspicionScore, flagged: out.findings.contains { $0.code == finding.code }, positive: positive)

            let r = try rule.screen(series)
            ruleMs += r.runTimeMs
            ruleBased.add(score: r.suspicionScore, flagged: !r.findings.isEmpty, positive: positive)
            if verbose {
                print("  #\(i) \(positive ? "POS" : "neg") model p=\(f(out.suspicionScore)) \(out.urgency) rule p=\(f(r.suspicionScore)) slices \(series.volume.depth)")
            }
            if !skipOnnxruntime {
                let tensor = try ModelInputTensor.slices(series, spec: manifest.input)
                let shape = [series.volume.depth, manifest.input.channels, manifest.input.size[0], manifest.input.size[1]]
                try NumPyArray(shape: shape, values: tensor).write(to: work.appendingPathComponent(String(format: "series-%05d.npy", i)).path)
            }
        }
        let n = Double(modelCount)
        let msPerSeries = modelMs / n
        let imagesPerSecond = Double(slices) / (modelMs / 1000)

        // The same .npy set through both runtimes, the same way: batches of 16, one untimed
        // warm-up batch, median over the repeats of the mean per series, inference only.
        var openVINO: (ms: Double, imagesPerSecond: Double)?
        var reference: [String: Any]?
        if !skipOnnxruntime {
            openVINO = try await timeOpenVINO(screener, folder: work.path)
            reference = try timeOnnxruntime(model: entry.modelPath, folder: work.path)
        }
        let ortMs = reference?["ms_per_series"] as? Double
        let speed = ortMs.flatMap { ort in openVINO.map { ort / $0.ms } }

        print(pad(manifest.name, 26), pad(manifest.version, 9), pad("\(modelCount)", 4), pad(f(model.sensitivity), 7), pad(f(model.specificity), 7),
              pad(f(model.auc), 7), pad(f(msPerSeries, 1), 10), pad(f(imagesPerSecond, 1), 8),
              pad(openVINO.map { f($0.ms, 1) } ?? "-", 10), pad(ortMs.map { f($0, 1) } ?? "-", 10), speed.map { f($0, 2) + "x" } ?? "-")
        print("    TP \(model.tp) FN \(model.fn) TN \(model.tn) FP \(model.fp) at reportAt \(f(finding.reportAt, 4)); \(slices) slices, \(f(Double(slices) / n, 1)) per series; phantom + preprocess \(f(prepMs / n, 1)) ms/series")
        print(pad("  rule-based " + ruleID, 41), pad(f(ruleBased.sensitivity), 7), pad(f(ruleBased.specificity), 7), pad(f(ruleBased.auc), 7),
              pad(f(ruleMs / n, 1), 10), "(same series)")
        print("    TP \(ruleBased.tp) FN \(ruleBased.fn) TN \(ruleBased.tn) FP \(ruleBased.fp)")
        if let reference {
            print("    timed over the same \(modelCount) .npy tensors, batches of \(Self.batch), 1 thread, median of \(timingRepeat): OpenVINO \(f(openVINO?.ms ?? .nan, 1)) ms/series (\(f(openVINO?.imagesPerSecond ?? .nan, 1)) img/s), \(reference["runtime"] as? String ?? "onnxruntime") \(f(ortMs ?? .nan, 1)) ms/series (\(f(reference["images_per_s"] as? Double ?? .nan, 1)) img/s)")
        }

        var result: [String: Any] = [
            "model": manifest.name, "version": manifest.version, "sha256": manifest.sha256.lowercased(), "task": ruleID,
            "series": modelCount, "positives": model.tp + model.fn, "slices": slices,
            "sensitivity": model.sensitivity, "specificity": model.specificity, "auc": model.auc,
            "tp": model.tp, "fp": model.fp, "tn": model.tn, "fn": model.fn, "report_at": finding.reportAt,
            "ms_per_series": msPerSeries, "images_per_s": imagesPerSecond, "prep_ms_per_series": prepMs / n,
            "openvino_npy_ms_per_series": openVINO?.ms ?? NSNull(), "openvino_npy_images_per_s": openVINO?.imagesPerSecond ?? NSNull(),
            "onnxruntime_ms_per_series": ortMs ?? NSNull(), "onnxruntime_images_per_s": reference?["images_per_s"] ?? NSNull(),
            "onnxruntime": reference?["runtime"] ?? NSNull(),
            "speed_vs_onnxruntime": speed ?? NSNull(),
            "rule_based": ["screener": ruleID, "sensitivity": ruleBased.sensitivity, "specificity": ruleBased.specificity, "auc": ruleBased.auc,
                           "tp": ruleBased.tp, "fp": ruleBased.fp, "tn": ruleBased.tn, "fn": ruleBased.fn, "ms_per_series": ruleMs / n] as [String: Any],
            "timed": [
                "ms_per_series": "ModelScreener.screen per series during validation: input tensor build + OpenVINO inference in batches of \(Self.batch), 1 inference thread, mean",
                "openvino_npy_ms_per_series": "OpenVINO inference only over the written .npy tensors, batches of \(Self.batch), 1 thread, one untimed warm-up batch, median of \(timingRepeat) repeats of the mean per series",
                "onnxruntime_ms_per_series": "onnxruntime (CPUExecutionProvider, 1 intra-op and 1 inter-op thread, sequential) the same way over the same .npy tensors",
                "speed_vs_onnxruntime": "onnxruntime_ms_per_series / openvino_npy_ms_per_series (>= 1: OpenVINO at least as fast)",
            ],
        ]
        if skipOnnxruntime { result["onnxruntime"] = "skipped" }
        return result
    }

    /// OpenVINO over the .npy files exactly as onnx_reference.py times onnxruntime: each
    /// series is read before its clock starts, then run in batches.
    func timeOpenVINO(_ screener: ModelScreener, folder: String) async throws -> (ms: Double, imagesPerSecond: Double) {
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".npy") }.sorted().map { "\(folder)/\($0)" }
        guard let first = files.first else { throw ScreeningError.invalidInput("no .npy files in \(folder)") }
        let inputName = screener.manifest.input.tensor
        func runSeries(_ array: NumPyArray, limit: Int = .max) async throws -> Int {
            let perSlice = array.shape.dropFirst().reduce(1, *)
            let total = min(array.shape[0], limit)
            var start = 0
            while start < total {
                let k = min(Self.batch, total - start)
                let input = try Tensor(shape: [k] + array.shape.dropFirst(), floats: Array(array.values[(start * perSlice)..<((start + k) * perSlice)]))
                _ = try await screener.model.run([inputName: input])
                start += k
            }
            return total
        }
        _ = try await runSeries(try NumPyArray.read(first), limit: Self.batch)
        var perRepeat: [Double] = []
        var slices = 0
        for _ in 0..<timingRepeat {
            var nanoseconds: UInt64 = 0
            slices = 0
            for file in files {
                let array = try NumPyArray.read(file)
                let t0 = WallClock.monotonicNanoseconds()
                slices += try await runSeries(array)
                nanoseconds += WallClock.monotonicNanoseconds() - t0
            }
            perRepeat.append(Double(nanoseconds) / 1e6 / Double(files.count))
        }
        let ms = perRepeat.sorted()[perRepeat.count / 2]
        return (ms, Double(slices) / (ms * Double(files.count) / 1000))
    }

    /// `onnx_reference.py time` in a child python with the pinned packages; its JSON line.
    func timeOnnxruntime(model: String, folder: String) throws -> [String: Any] {
        let script = URL(fileURLWithPath: onnxReference).standardizedFileURL.path
        guard FileManager.default.isReadableFile(atPath: script) else {
            throw ScreeningError.config("\(onnxReference) not found: run from the package root, pass --onnx-reference or --skip-onnxruntime")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, "time", model, folder, "--threads", "1", "--repeat", String(timingRepeat), "--batch", String(Self.batch)]
        var environment = ProcessInfo.processInfo.environment
        // .pydeps beside the script's Tests/Clients (scripts/pydeps.sh installs it there).
        let root = URL(fileURLWithPath: script).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        environment["PYTHONPATH"] = root.appendingPathComponent(".pydeps").path + (environment["PYTHONPATH"].map { ":" + $0 } ?? "")
        process.environment = environment
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.standardError
        try process.run()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: output, as: UTF8.self)
        guard process.terminationStatus == 0,
              let line = text.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], object["ms_per_series"] is Double else {
            throw ScreeningError.config("onnx_reference.py time failed (status \(process.terminationStatus); python3 and onnxruntime are needed: scripts/pydeps.sh, or --skip-onnxruntime): \(text)")
        }
        return object
    }

    /// JSON has no NaN or infinity: such figures (no positives, no negatives) become null.
    func sanitized(_ value: Any) -> Any {
        switch value {
        case let d as Double: d.isFinite ? d : NSNull()
        case let dict as [String: Any]: dict.mapValues(sanitized)
        case let list as [Any]: list.map(sanitized)
        default: value
        }
    }

    func f(_ x: Double, _ digits: Int = 3) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "n/a" }
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
}

private extension Optional {
    func orThrow(_ error: @autoclosure () -> some Error) throws -> Wrapped {
        guard let self else { throw error() }
        return self
    }
}

