import ArgumentParser
import Foundation
import Imaging
import RadGridCore
import Screening

/// `radgrid-bench screen-data`: training/validation data for the slice-classifier screeners.
/// Per case: the model input tensor (channels = 1; the trainer stacks neighbours itself the
/// way `ModelInputTensor` does) as `case-<i>.npy` (float16, [N,1,H,W]) and one line of
/// ground truth in `labels.jsonl`. Synthetic phantoms only: no patient data anywhere.
struct ScreenDataCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "screen-data",
        abstract: "Export phantom series as model input tensors (.npy) with slice labels (labels.jsonl)."
    )

    @Option(help: "head or chest.") var kind: String
    @Option(help: "Number of cases (even indices carry a lesion).") var count = 100
    @Option(help: "Seed of the phantom set.") var seed: UInt64 = 1
    @Flag(help: "Use the hard phantom set.") var hard = false
    @Option(help: "Output folder (created).") var out: String
    @Option(name: .customLong("input-spec"), help: "ModelInputSpec JSON (window, spacing, size; channels are ignored: 1 is written).")
    var inputSpec: String
    @Option(help: "Concurrent cases (default: the number of cores).") var jobs = 0

    struct CaseResult: Sendable {
        var index: Int
        var line: String
        var ms: Double
    }

    func run() async throws {
        guard let k = PhantomSpec.Kind(rawValue: kind) else { throw ValidationError("--kind must be head or chest") }
        guard count > 0 else { throw ValidationError("--count must be > 0") }
        var parsed = try JSONDecoder().decode(ModelInputSpec.self, from: Data(contentsOf: URL(fileURLWithPath: inputSpec)))
        parsed.channels = 1
        try parsed.validate()
        let dir = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let width = jobs > 0 ? jobs : ProcessInfo.processInfo.activeProcessorCount
        // Immutable copies for the child tasks.
        let (seed, hard, count, spec, path) = (self.seed, self.hard, self.count, parsed, dir.path)

        let t0 = WallClock.monotonicNanoseconds()
        var results: [CaseResult] = []
        try await withThrowingTaskGroup(of: CaseResult.self) { group in
            // At most `width` cases in flight: each holds a whole series in memory.
            for i in 0..<min(width, count) {
                group.addTask { try Self.export(kind: k, index: i, seed: seed, hard: hard, spec: spec, dir: path) }
            }
            var next = min(width, count)
            while let r = try await group.next() {
                results.append(r)
                if next < count {
                    let i = next
                    next += 1
                    group.addTask { try Self.export(kind: k, index: i, seed: seed, hard: hard, spec: spec, dir: path) }
                }
            }
        }
        results.sort { $0.index < $1.index }
        let labels = results.map(\.line).joined(separator: "\n") + "\n"
        try Data(labels.utf8).write(to: dir.appendingPathComponent("labels.jsonl"))
        let wall = Double(WallClock.monotonicNanoseconds() - t0) / 1e9
        let perCase = results.map(\.ms).reduce(0, +) / Double(results.count)
        print("screen-data: \(count) \(kind) cases (hard=\(hard), seed=\(seed)) -> \(out) in \(String(format: "%.1f", wall)) s (\(String(format: "%.0f", perCase)) ms/case/core)")
    }

    static func export(kind: PhantomSpec.Kind, index: Int, seed: UInt64, hard: Bool, spec: ModelInputSpec, dir: String) throws -> CaseResult {
        let dir = URL(fileURLWithPath: dir)
        let t0 = WallClock.monotonicNanoseconds()
        let (ps, positive) = Validation.lesionCase(kind: kind, index: index, seed: seed, hard: hard)
        let phantom = Phantom.generate(ps)
        let series = try phantom.preprocessed()
        let tensor = try ModelInputTensor.slices(series, spec: spec)
        let n = series.volume.depth, h = spec.size[0], w = spec.size[1]
        let labels = phantom.sliceLabels()
        // Labels are per sorted slice; the preprocessor must have kept every slice.
        guard labels.count == n else {
            throw ScreeningError.invalidInput("case \(index): \(labels.count) slice labels for \(n) slices")
        }
        try NumPyArray(shape: [n, 1, h, w], values: tensor).write(to: dir.appendingPathComponent("case-\(index).npy").path, precision: .float16)

        let lesions: [[String: Any]] = phantom.lesions.map { l in
            ["diameter": l.diameterMM, "hu": l.hu, "center": l.center, "radii": l.radiiMM ?? [l.diameterMM / 2, l.diameterMM / 2, l.diameterMM / 2]]
        }
        let obj: [String: Any] = [
            "case": index, "positive": positive, "slices": n, "sliceLabels": labels, "lesions": lesions, "mimics": phantom.mimicsPlaced,
            "pixelSpacing": phantom.spec.pixelSpacing, "sliceSpacing": phantom.spec.sliceSpacing,
            "width": phantom.spec.width, "height": phantom.spec.height,
        ]
        let line = String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self)
        return CaseResult(index: index, line: line, ms: Double(WallClock.monotonicNanoseconds() - t0) / 1e6)
    }
}
