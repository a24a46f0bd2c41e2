import ArgumentParser
import DICOM
import Foundation
import Imaging
import RadGridCore
import Screening
import Zstd

/// `radgrid-bench pipeline`: zstd-compressed DICOM CT series through decompress -> parse ->
/// decode -> preprocess on one core, against zstd decompression alone on the same bytes.
struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "MB/s per core of decompress -> parse -> decode -> preprocess vs zstd decompression alone."
    )

    @Option(help: "Slices in the synthetic series.") var slices = 200
    @Option(help: "Matrix size (square).") var size = 512
    @Option(help: "zstd level used to store the instances.") var level = 3
    @Option(help: "Timed repetitions (best is reported).") var repeats = 3
    @Option(help: "Resample to this size in the preprocess stage (default: native).") var target: Int?
    @Option(help: "PRNG seed of the phantom.") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() throws {
        // A head CT phantom with scanner-like noise, written as DICOM (int16 native) and zstd-compressed per instance.
        let t0 = WallClock.monotonicNanoseconds()
        let spec = PhantomSpec(kind: .head, width: size, height: size, slices: slices, pixelSpacing: 240.0 / Double(size),
                               sliceSpacing: 140.0 / Double(slices), lesionDiameterMM: 12, noiseHU: 6, seed: seed)
        let files = try Phantom.generate(spec).dicomFiles()
        var compressed: [[UInt8]] = []
        var rawBytes = 0, fileBytes = 0, zBytes = 0
        for f in files {
            let z = try Zstd.compress(f, level: level, checksum: true)
            compressed.append(z)
            fileBytes += f.count
            zBytes += z.count
        }
        rawBytes = slices * size * size * 2
        let genSeconds = Double(WallClock.monotonicNanoseconds() - t0) / 1e9
        let mb = Double(rawBytes) / 1e6
        print("series: \(slices) x \(size)x\(size) int16, pixel data \(String(format: "%.1f", mb)) MB, DICOM \(String(format: "%.1f", Double(fileBytes) / 1e6)) MB, zstd-\(level) \(String(format: "%.1f", Double(zBytes) / 1e6)) MB (ratio \(String(format: "%.2f", Double(fileBytes) / Double(zBytes)))), generated in \(String(format: "%.1f", genSeconds)) s")

        var buffer: [UInt8] = []
        buffer.reserveCapacity(files.map(\.count).max() ?? 0)
        var checksum = 0

        func zstdOnly() throws -> Double {
            let s = WallClock.monotonicNanoseconds()
            for z in compressed {
                try Zstd.decompress(z, into: &buffer)
                checksum &+= Int(buffer[buffer.count / 2])
            }
            return Double(WallClock.monotonicNanoseconds() - s) / 1e9
        }

        var stages = [Double](repeating: 0, count: 5)
        var slot: [Float] = [] // a worker slot's tensor, reused from one series to the next
        func whole() throws -> Double {
            let s = WallClock.monotonicNanoseconds()
            var options = PreprocessOptions(window: .auto, output: .window)
            options.targetWidth = target
            options.targetHeight = target
            var pre: SeriesPreprocessor?
            var t = [Double](repeating: 0, count: 5)
            for z in compressed {
                let a = WallClock.monotonicNanoseconds()
                try Zstd.decompress(z, into: &buffer)
                let b = WallClock.monotonicNanoseconds()
                let file = try DICOMFile.read(buffer)
                let c = WallClock.monotonicNanoseconds()
                let slice = try SliceInput(file: file)
                let d = WallClock.monotonicNanoseconds()
                if pre == nil {
                    pre = SeriesPreprocessor(options: options, info: SeriesInfo(dataSet: file.dataSet), expectedSlices: compressed.count, buffer: slot)
                    slot = []
                }
                try pre!.add(slice)
                let e = WallClock.monotonicNanoseconds()
                t[0] += Double(b - a); t[1] += Double(c - b); t[2] += Double(d - c); t[3] += Double(e - d)
            }
            let f0 = WallClock.monotonicNanoseconds()
            let series = try pre!.finish()
            t[4] = Double(WallClock.monotonicNanoseconds() - f0)
            checksum &+= series.volume.depth
            slot = series.volume.voxels
            let total = Double(WallClock.monotonicNanoseconds() - s) / 1e9
            stages = t.map { $0 / 1e9 }
            return total
        }

        var bestZ = Double.infinity, bestW = Double.infinity
        var bestStages = stages
        _ = try zstdOnly(); _ = try whole() // warm-up
        for _ in 0..<max(1, repeats) {
            bestZ = min(bestZ, try zstdOnly())
            let w = try whole()
            if w < bestW { bestW = w; bestStages = stages }
        }
        let zMBs = mb / bestZ, wMBs = mb / bestW
        let names = ["decompress", "parse", "decode", "preprocess", "finish (sort/assemble)"]
        print(String(format: "zstd only:   %8.1f MB/s  (%.3f s)", zMBs, bestZ))
        print(String(format: "whole path:  %8.1f MB/s  (%.3f s)  = %.2fx zstd alone", wMBs, bestW, wMBs / zMBs))
        for (n, t) in zip(names, bestStages) {
            print("  " + n + String(repeating: " ", count: max(1, 24 - n.count)) + String(format: "%6.3f s  %8.1f MB/s", t, mb / max(t, 1e-9)))
        }
        if checksum == 42 { print("") } // keep the work observable
        if json {
            let obj: [String: Any] = ["benchmark": "pipeline", "slices": slices, "size": size, "zstd_level": level,
                                      "pixel_mb": mb, "compressed_mb": Double(zBytes) / 1e6,
                                      "mb_per_s": wMBs, "zstd_only_mb_per_s": zMBs, "ratio": wMBs / zMBs,
                                      "stage_seconds": Dictionary(uniqueKeysWithValues: zip(["decompress", "parse", "decode", "preprocess", "finish"], bestStages))]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
