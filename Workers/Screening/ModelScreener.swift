import GridContract
import Imaging
import Inference
import Logging
import RadGridCore

/// A slice classifier from a manifest, compiled once: each slice of a series (with its
/// neighbours as channels) goes through the model, the slices' probabilities aggregate into
/// the series', and the manifest's thresholds turn them into findings and urgency.
public struct ModelScreener: Sendable {
    public let manifest: ModelManifest
    public let model: CompiledModel
    /// Slices per inference when the model's batch dimension is dynamic.
    public let batchSize: Int
    let inputName: String
    let outputIndex: Int
    let fixedBatchOfOne: Bool

    public var provenance: ModelProvenance { manifest.provenance }

    /// Compiles the entry's file and checks the model takes and gives what its manifest says.
    public init(entry: ModelCatalog.Entry, options: CompileOptions = CompileOptions(), batchSize: Int = 16,
                runtime: InferenceRuntime? = nil) throws {
        let manifest = entry.manifest
        let runtime = try runtime ?? InferenceRuntime.shared()
        let model = try runtime.compile(modelAt: entry.modelPath, options: options, name: "\(manifest.name)@\(manifest.version)")
        let label = "model \(manifest.name)"
        guard let input = model.inputs.first(where: { $0.name == manifest.input.tensor }) else {
            throw ScreeningError.model("\(label) has no input \(manifest.input.tensor) (it has \(model.inputs.map(\.description).joined(separator: ", ")))")
        }
        guard model.inputs.count == 1 else { throw ScreeningError.model("\(label) takes \(model.inputs.count) inputs; a slice classifier takes one") }
        let spec = manifest.input
        let wanted: [Int?] = [nil, spec.channels, spec.size[0], spec.size[1]]
        guard input.shape.count == 4, zip(input.shape.dropFirst(), wanted.dropFirst()).allSatisfy({ $0 == nil || $0 == $1 }),
              input.shape[0] == nil || input.shape[0] == 1, input.elementType == nil || input.elementType == .float32 else {
            throw ScreeningError.model("\(label): input \(input) does not take float32 [N,\(spec.channels),\(spec.size[0]),\(spec.size[1])] as the manifest says")
        }
        let outputIndex: Int
        if let name = manifest.output.tensor {
            guard let index = model.outputs.firstIndex(where: { $0.name == name }) else {
                throw ScreeningError.model("\(label) has no output \(name) (it has \(model.outputs.map(\.description).joined(separator: ", ")))")
            }
            outputIndex = index
        } else {
            outputIndex = 0
        }
        let classes = model.outputs[outputIndex].shape.last.flatMap { $0 } ?? 1
        if let highest = manifest.output.findings.map(\.index).max(), model.outputs[outputIndex].shape.count >= 2, highest >= classes {
            throw ScreeningError.model("\(label): finding index \(highest) but the output has \(classes) classes")
        }
        self.manifest = manifest
        self.model = model
        self.batchSize = max(1, batchSize)
        inputName = input.name
        self.outputIndex = outputIndex
        fixedBatchOfOne = input.shape[0] == 1
    }

    /// Each slice's probability per output class, `[slice][class]`.
    public func sliceProbabilities(_ series: PreprocessedSeries) async throws -> [[Double]] {
        let spec = manifest.input
        let tensor = try ModelInputTensor.slices(series, spec: spec)
        let perSlice = spec.channels * spec.size[0] * spec.size[1]
        let slices = perSlice > 0 ? tensor.count / perSlice : 0
        let step = fixedBatchOfOne ? 1 : batchSize
        var result: [[Double]] = []
        result.reserveCapacity(slices)
        var start = 0
        while start < slices {
            let n = min(step, slices - start)
            let input = try Tensor(shape: [n, spec.channels, spec.size[0], spec.size[1]],
                                   floats: Array(tensor[(start * perSlice)..<((start + n) * perSlice)]))
            let outputs = try await model.run([inputName: input])
            let values = outputs[outputIndex].tensor.floats()
            guard n > 0, values.count % n == 0, !values.isEmpty else {
                throw ScreeningError.model("model \(manifest.name) returned \(values.count) values for \(n) slices")
            }
            let classes = values.count / n
            for i in 0..<n { result.append(activate(values[(i * classes)..<((i + 1) * classes)].map(Double.init))) }
            start += n
        }
        return result
    }

    /// The series' verdict.
    public func screen(_ series: PreprocessedSeries) async throws -> ScreenerOutput {
        let started = WallClock.monotonicNanoseconds()
        let probabilities = try await sliceProbabilities(series)
        var findings: [Finding] = []
        var score = 0.0
        var urgency = Urgency.routine
        for spec in manifest.output.findings {
            let column = probabilities.map { spec.index < $0.count ? $0[spec.index] : 0 }
            guard !column.isEmpty else { continue }
            let (p, slice) = aggregate(column)
            score = max(score, p)
            guard p >= spec.reportAt else { continue }
            urgency = max(urgency, spec.urgency(p))
            findings.append(Finding(code: spec.code, label: spec.label, probability: p, slice: slice,
                                    measurements: ["slices_over_threshold": Double(column.filter { $0 >= spec.reportAt }.count)]))
        }
        let ms = Double(WallClock.monotonicNanoseconds() - started) / 1e6
        return ScreenerOutput(screenerID: manifest.name, screenerVersion: manifest.version, findings: findings, suspicionScore: score,
                              urgency: urgency, runTimeMs: ms, model: provenance)
    }

    func activate(_ values: [Double]) -> [Double] {
        switch manifest.output.activation {
        case .none: return values
        case .sigmoid: return values.map { 1 / (1 + exp(-$0)) }
        case .softmax:
            let top = values.max() ?? 0
            let e = values.map { exp($0 - top) }
            let sum = e.reduce(0, +)
            return e.map { $0 / sum }
        }
    }

    /// The series' probability and the slice that carries it.
    func aggregate(_ column: [Double]) -> (Double, Int?) {
        let best = column.indices.max { column[$0] < column[$1] }
        switch manifest.output.aggregate {
        case .max: return (best.map { column[$0] } ?? 0, best)
        case .mean: return (column.reduce(0, +) / Double(column.count), best)
        }
    }
}

/// The compiled models of a catalog, and which screen a series.
public struct ModelScreeners: Sendable {
    public let screeners: [ModelScreener]

    public init(screeners: [ModelScreener]) { self.screeners = screeners }

    /// Compiles every model of the catalog (at start: a model that does not compile stops it).
    public init(catalog: ModelCatalog, options: CompileOptions = CompileOptions(), logger: Logger? = nil) throws {
        var screeners: [ModelScreener] = []
        for entry in catalog.entries {
            let screener = try ModelScreener(entry: entry, options: options)
            logger?.info("model ready", metadata: ["model": "\(entry.manifest.provenance)", "device": "\(options.device)",
                                                   "input": "\(screener.model.inputs.map(\.description).joined(separator: " "))"])
            screeners.append(screener)
        }
        self.screeners = screeners
    }

    public var isEmpty: Bool { screeners.isEmpty }

    public func screeners(for info: SeriesInfo) -> [ModelScreener] { screeners.filter { $0.manifest.matches(info) } }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
