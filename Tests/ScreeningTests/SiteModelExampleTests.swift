import Foundation
import Inference
import Screening
import Testing

/// docs/IMAGING.md's worked example: a site's own ONNX classifier, shaped unlike the grid's
/// models (one channel, 224x224, a fixed batch of one, raw logits), added by its manifest alone.
@Suite struct SiteModelExampleTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../docs/examples/hospital-classifier").standardizedFileURL.path

    @Test func aSitesOwnClassifierRunsFromItsManifestAlone() async throws {
        let catalog = try ModelCatalog.load(directory: Self.folder)
        let entry = try #require(catalog.entries.first)
        #expect(entry.manifest.name == "h001-chest-triage")
        let screener = try ModelScreener(entry: entry, options: CompileOptions(threads: 1))
        #expect(screener.model.inputs.first?.shape == [1, 1, 224, 224])

        let phantom = Phantom.generate(PhantomSpec.small(.chest, lesionMM: 12, seed: 3))
        #expect(entry.manifest.matches(phantom.info))
        #expect(!entry.manifest.matches(Phantom.generate(PhantomSpec.small(.head, seed: 3)).info))
        let series = try phantom.preprocessed()
        let probabilities = try await screener.sliceProbabilities(series)
        // One inference per slice (the model's batch is fixed at one), softmax over its two logits.
        #expect(probabilities.count == series.volume.depth)
        for slice in probabilities {
            #expect(slice.count == 2)
            #expect(abs(slice.reduce(0, +) - 1) < 1e-6)
        }
        let output = try await screener.screen(series)
        #expect(output.model == entry.manifest.provenance)
        #expect(output.screenerID == "h001-chest-triage" && output.screenerVersion == "2.3.0")
        let top = probabilities.map { $0[1] }.max() ?? 0
        #expect(abs(output.suspicionScore - top) < 1e-9)
        #expect(output.findings.map(\.code) == (top >= 0.5 ? ["h001.chest.suspicious"] : []))
        #expect(output.urgency == (top >= 0.8 ? .urgent : .routine))
    }
}
