import ArgumentParser
import DICOM
import Foundation
import Imaging

/// `radgridctl preprocess FILE... --out DIR`: Float32 tensor + JSON sidecar + PNG thumbnail per series.
struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess",
        abstract: "Preprocess DICOM series: HU, VOI window, resample, Float32 tensor with JSON sidecar, PNG thumbnail."
    )

    @Argument(help: "DICOM files or directories.") var paths: [String]
    @Option(help: "Output directory.") var out: String
    @Option(help: "Target in-plane size WxH or N (default: keep).") var size: String?
    @Option(help: "Window: auto, a preset (\(WindowPreset.allCases.map(\.rawValue).joined(separator: ", "))), or CENTER,WIDTH.") var window = "auto"
    @Option(help: "Tensor content: window ([0,1]), hu, or range:LO,HI ([0,1]).") var output = "window"
    @Option(help: "Thumbnail size (longest side).") var thumbnail = 256

    func run() throws {
        var options = PreprocessOptions()
        if let size {
            let parts = size.split(separator: "x").compactMap { Int($0) }
            guard (parts.count == 1 || parts.count == 2), parts.allSatisfy({ $0 > 0 && $0 <= 8192 }) else { throw ValidationError("--size is N or WxH") }
            options.targetWidth = parts[0]
            options.targetHeight = parts.count == 2 ? parts[1] : parts[0]
        }
        switch window {
        case "auto": options.window = .auto
        default:
            if let p = WindowPreset(rawValue: window) { options.window = .preset(p) }
            else {
                let v = window.split(separator: ",").compactMap { Double($0) }
                guard v.count == 2 else { throw ValidationError("--window is auto, a preset or CENTER,WIDTH") }
                options.window = .explicit(VOIWindow(center: v[0], width: v[1]))
            }
        }
        if output == "window" { options.output = .window }
        else if output == "hu" { options.output = .hu }
        else if output.hasPrefix("range:") {
            let v = output.dropFirst(6).split(separator: ",").compactMap { Double($0) }
            guard v.count == 2 else { throw ValidationError("--output range:LO,HI") }
            options.output = .range(v[0], v[1])
        } else { throw ValidationError("--output is window, hu or range:LO,HI") }

        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let (groups, skipped) = DICOMSeriesLoader.series(under: paths)
        if skipped > 0 { FileHandle.standardError.write(Data("skipped \(skipped) file(s) that are not DICOM images\n".utf8)) }
        guard !groups.isEmpty else { throw ValidationError("no DICOM images found") }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        for (n, g) in groups.enumerated() {
            let series = try SeriesPreprocessor.process(files: g.files, options: options)
            let base = (out as NSString).appendingPathComponent("series-\(n + 1)")
            try Data(series.volume.rawLittleEndianBytes()).write(to: URL(fileURLWithPath: base + ".f32"))
            try encoder.encode(TensorSidecar(series)).write(to: URL(fileURLWithPath: base + ".json"))
            try Data(try Thumbnail.png(series, maxDimension: thumbnail)).write(to: URL(fileURLWithPath: base + ".png"))
            let v = series.volume
            var notes: [String] = []
            if series.geometry.missingSlices > 0 { notes.append("\(series.geometry.missingSlices) missing slice(s)") }
            if series.geometry.unevenSpacing { notes.append("uneven spacing") }
            print("\(base).f32: \(v.depth)x\(v.height)x\(v.width) float32, spacing z=\(fmt(v.spacing.z)) y=\(fmt(v.spacing.y)) x=\(fmt(v.spacing.x)) mm, window \(series.displayWindow), sorted by \(series.geometry.sortMethod.rawValue)\(notes.isEmpty ? "" : ", " + notes.joined(separator: ", "))")
        }
    }

    func fmt(_ d: Double?) -> String { d.map { String(format: "%.3g", $0) } ?? "?" }
}
