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
        abstract: "MB/s per core of decompress -> parse -> decode -> preprocess vs zstd decompression alone; with --jpeg-lossless, the worker's per-instance path on a native and a JPEG-lossless series against pydicom + numpy."
    )

    @Option(help: "Slices in the synthetic series (default 200; 40 with --jpeg-lossless).") var slices: Int?
    @Option(help: "Matrix size (square).") var size = 512
    @Option(help: "zstd level used to store the instances.") var level = 3
    @Option(help: "Timed repetitions (best is reported).") var repeats = 3
    @Option(help: "Resample to this size in the preprocess stage (default: native).") var target: Int?
    @Option(help: "PRNG seed of the phantom.") var seed: UInt64 = 1
    @Option(help: "Use the DICOM files under DIR (one series) instead of the synthetic series.") var from: String?
    @Flag(help: "The worker's per-instance path (InstanceResult.make) on the series native and JPEG-lossless (SV1), against pydicom + numpy on the same files.")
    var jpegLossless = false
    @Option(help: "With --jpeg-lossless: the worker's screening size (largest side after downsampling).") var maxSize = 256
    @Option(help: "With --jpeg-lossless: timed seconds per series for each side (at least 5 rounds).") var seconds = 3.0
    @Option(help: "With --jpeg-lossless: CPU both sides are pinned to (sched_setaffinity); -1 leaves them unpinned.") var cpu = 0
    @Option(help: "With --jpeg-lossless: folder with pydicom, numpy and zstandard (scripts/pydeps.sh).") var pydeps = ".pydeps"
    @Flag(help: "With --jpeg-lossless: keep the generated files (their folder is printed).") var keep = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    func run() throws {
        if jpegLossless {
            try InstancePathBench(options: self).run()
            return
        }
        // A head CT phantom with scanner-like noise, written as DICOM (int16 native) and zstd-compressed per instance,
        // or the files under --from.
        let t0 = WallClock.monotonicNanoseconds()
        let files: [[UInt8]]
        var rawBytes = 0
        if let from {
            let found = try dicomFiles(under: from)
            guard !found.isEmpty else { throw BenchError.failed("no DICOM files with pixel data under \(from)") }
            files = try found.map { [UInt8](try Data(contentsOf: URL(fileURLWithPath: $0.path))) }
            for (_, f) in found { rawBytes += PipelineBench.decodedBytes(f.dataSet) }
        } else {
            let slices = slices ?? 200
            let spec = PhantomSpec(kind: .head, width: size, height: size, slices: slices, pixelSpacing: 240.0 / Double(size),
                                   sliceSpacing: 140.0 / Double(slices), lesionDiameterMM: 12, noiseHU: 6, seed: seed)
            files = try Phantom.generate(spec).dicomFiles()
            rawBytes = slices * size * size * 2
        }
        let slices = files.count
        var compressed: [[UInt8]] = []
        var fileBytes = 0, zBytes = 0
        for f in files {
            let z = try Zstd.compress(f, level: level, checksum: true)
            compressed.append(z)
            fileBytes += f.count
            zBytes += z.count
        }
        let genSeconds = Double(WallClock.monotonicNanoseconds() - t0) / 1e9
        let mb = Double(rawBytes) / 1e6
        print("series: \(slices) x \(from == nil ? "\(size)x\(size) int16" : "images from \(from!)"), pixel data \(String(format: "%.1f", mb)) MB, DICOM \(String(format: "%.1f", Double(fileBytes) / 1e6)) MB, zstd-\(level) \(String(format: "%.1f", Double(zBytes) / 1e6)) MB (ratio \(String(format: "%.2f", Double(fileBytes) / Double(zBytes)))), generated in \(String(format: "%.1f", genSeconds)) s")

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
            let obj: [String: Any] = ["benchmark": "pipeline", "slices": slices, "size": from == nil ? size : 0, "zstd_level": level,
                                      "pixel_mb": mb, "compressed_mb": Double(zBytes) / 1e6,
                                      "mb_per_s": wMBs, "zstd_only_mb_per_s": zMBs, "ratio": wMBs / zMBs,
                                      "stage_seconds": Dictionary(uniqueKeysWithValues: zip(["decompress", "parse", "decode", "preprocess", "finish"], bestStages))]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    /// Bytes of a data set's decoded pixels, from its Image Pixel module.
    static func decodedBytes(_ ds: DataSet) -> Int {
        let rows = ds.int(.rows) ?? 0, columns = ds.int(.columns) ?? 0
        let samples = ds.int(.samplesPerPixel) ?? 1, frames = max(1, ds.int(.numberOfFrames) ?? 1)
        let bytes = (ds.int(.bitsAllocated) ?? 16) <= 8 ? 1 : ((ds.int(.bitsAllocated) ?? 16) <= 16 ? 2 : 4)
        return rows * columns * samples * frames * bytes
    }
}
