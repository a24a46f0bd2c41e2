import ArgumentParser
import Foundation
import Screening

/// `radgrid-bench screen`: validation of the built-in screeners on seeded synthetic phantoms.
struct ScreenBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "screen",
        abstract: "Sensitivity, specificity, AUC and ms/series of the built-in screeners on synthetic phantoms."
    )

    @Option(help: "Series per screener (half with a lesion or defect).") var count = 200
    @Option(help: "Seed of the phantom set.") var seed: UInt64 = 20_261_123
    @Option(help: "Screener ids (comma-separated).") var screeners = "ct.head.hyperdensity,ct.chest.nodule,qc.image"
    @Option(help: "Screening config JSON (default: built-in thresholds).") var config: String?
    @Flag(help: "Small, coarse phantoms (fast smoke run).") var small = false
    @Flag(help: "Print every case.") var verbose = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() throws {
        var cfg = ScreeningConfig.default
        if let config {
            cfg = try JSONDecoder().decode(ScreeningConfig.self, from: Data(contentsOf: URL(fileURLWithPath: config)))
        }
        var results: [String: ValidationMetrics] = [:]
        print("screener                  n   sens    spec    AUC     ms/series  prep ms")
        for id in screeners.split(separator: ",").map(String.init) {
            let m = try Validation.run(screenerID: id, count: count, seed: seed, config: cfg, small: small) { i, positive, out, note in
                guard verbose else { return }
                let fs = out.findings.map { "\($0.code) p=\(f($0.probability, 2)) \($0.label) \($0.boundingBox.map { "x\($0.x0)-\($0.x1) y\($0.y0)-\($0.y1) z\($0.z0)-\($0.z1)" } ?? "") \($0.measurements.map { "\($0.key)=\(f($0.value, 1))" }.sorted())" }
                print("  #\(i) \(positive ? "POS" : "neg") score=\(f(out.suspicionScore)) \(note)\n      " + fs.joined(separator: "\n      "))
            }
            results[id] = m
            print(pad(id, 24), pad("\(m.series)", 4), f(m.sensitivity), f(m.specificity), f(m.auc), pad(f(m.msPerSeries, 2), 10), f(m.prepMsPerSeries, 1))
            print("    TP \(m.truePositives) FN \(m.falseNegatives) TN \(m.trueNegatives) FP \(m.falsePositives)")
        }
        if json {
            var obj: [String: Any] = ["benchmark": "screen", "count": count, "seed": seed, "small": small]
            for (id, m) in results {
                obj[id] = ["sensitivity": m.sensitivity, "specificity": m.specificity, "auc": m.auc, "ms_per_series": m.msPerSeries,
                           "tp": m.truePositives, "fp": m.falsePositives, "tn": m.trueNegatives, "fn": m.falseNegatives,
                           "prep_ms_per_series": m.prepMsPerSeries]
            }
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    }

    func f(_ x: Double, _ digits: Int = 3) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "n/a" }
    func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
}
