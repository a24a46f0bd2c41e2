import DICOM
import Foundation
import Imaging
import RadGridCore
import WorkerDaemon
import Zstd

/// `radgrid-bench pipeline --jpeg-lossless`: what a worker does with each instance of a CT
/// series (zstd-decompress → read → decode → HU → downsample to the screening size, i.e.
/// `InstanceResult.make`), for the series stored natively and the same series JPEG-lossless
/// (SV1) compressed, against pydicom + numpy doing the same on the same zstd blobs, both
/// pinned to one core, rounds alternating.
struct InstancePathBench {
    let options: PipelineBench

    struct Figures {
        var name: String
        var images: Int
        var pixelMB: Double
        var storedMB: Double
        var ours: Double = .nan           // seconds per round (median)
        var reference: Double = .nan
        var ourStages: [Double] = []      // decompress, read, make: seconds per round
        var referenceStages: [Double] = [] // decompress, dcmread, pixel_array, numpy
        var maxAbsDifference: Int?
        var oursImagesPerSecond: Double { Double(images) / ours }
        var referenceImagesPerSecond: Double { Double(images) / reference }
    }

    func run() throws {
        let o = options
        let pinned = o.cpu >= 0 && CPUPinning.pin(to: o.cpu)
        print(pinned ? "pinned to CPU \(o.cpu) with sched_setaffinity (the python3 reference pins itself to the same CPU)"
                     : "not pinned: both sides may move between cores")
        let scratch = try ScratchDirectory(prefix: "radgrid-pipeline", keep: o.keep)
        let reference = try PythonReference(pydeps: o.pydeps, cpu: pinned ? o.cpu : nil, scratch: scratch)
        let versions = try reference.request(["op": "hello"])
        let zstd = versions["zstandard"] as? String != nil
        print("reference: python \(versions["python"] ?? "?"), pydicom \(versions["pydicom"] ?? "?"), numpy \(versions["numpy"] ?? "?"), "
              + "pylibjpeg-libjpeg \(versions["pylibjpeg-libjpeg"] ?? "?"), zstandard \(versions["zstandard"] as? String ?? "not installed")")
        if !zstd {
            print("zstandard is not in \(o.pydeps): both sides start from the raw .dcm bytes (no zstd step on either side)")
        }

        // The native series: the phantom, or --from DIR made native with gdcmconv --raw where compressed.
        let nativeFolder = try scratch.folder("native")
        var native: [String]
        if let from = o.from {
            native = []
            for (path, file) in try dicomFiles(under: from) {
                if file.transferSyntax.isEncapsulated {
                    let out = nativeFolder.appendingPathComponent(String(format: "%05d.dcm", native.count)).path
                    try Tool.run("gdcmconv", ["--raw", path, out])
                    native.append(out)
                } else {
                    native.append(path)
                }
            }
            guard !native.isEmpty else { throw BenchError.failed("no DICOM files with pixel data under \(from)") }
        } else {
            native = try CodecTestSet.phantomSeries(slices: o.slices ?? 40, size: o.size, seed: o.seed, into: nativeFolder)
        }
        let lossless = try CodecTestSet.convert(native, tool: "dcmcjpeg", ["+e1"], into: try scratch.folder("jpeg-lossless"))

        var results: [Figures] = []
        var sink = 0
        for (name, paths) in [("native", native), ("jpeg-lossless", lossless)] {
            // The stored blobs, as the grid keeps instances: zstd level `level`, with checksum.
            var blobs: [[UInt8]] = []
            var blobPaths: [String] = []
            var pixelBytes = 0, stored = 0
            let folder = try scratch.folder(name + "-zst")
            for (k, p) in paths.enumerated() {
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
                pixelBytes += PipelineBench.decodedBytes(try DICOMFile.read(bytes, options: .headerOnly).dataSet)
                let blob = zstd ? try Zstd.compress(bytes, level: o.level, checksum: true) : bytes
                let bp = folder.appendingPathComponent(String(format: "%05d.blob", k)).path
                try Data(blob).write(to: URL(fileURLWithPath: bp))
                blobs.append(blob)
                blobPaths.append(bp)
                stored += blob.count
            }
            var fig = Figures(name: name, images: blobs.count, pixelMB: Double(pixelBytes) / 1e6, storedMB: Double(stored) / 1e6)

            var stages = [Double](repeating: 0, count: 3)
            func instance(_ blob: [UInt8]) throws -> InstanceResult {
                let a = WallClock.monotonicNanoseconds()
                let raw = zstd ? try Zstd.decompress(blob, maxOutputSize: 1 << 30) : blob
                let b = WallClock.monotonicNanoseconds()
                let file = try DICOMFile.read(raw, options: ReadOptions(allowTruncated: true))
                let c = WallClock.monotonicNanoseconds()
                let result = try InstanceResult.make(from: file, maxSize: o.maxSize)
                let d = WallClock.monotonicNanoseconds()
                stages[0] += Double(b - a) / 1e9; stages[1] += Double(c - b) / 1e9; stages[2] += Double(d - c) / 1e9
                return result
            }
            let first = try instance(blobs[0])
            for b in blobs { sink &+= try instance(b).hu.count } // warm-up round

            let dump = scratch.url.appendingPathComponent("\(name).ref").path
            _ = try reference.request(["op": "pipeline_load", "id": name, "files": blobPaths, "zstd": zstd, "max_size": o.maxSize, "dump": dump])
            if let theirs = FileManager.default.contents(atPath: dump) {
                let ours = first.hu.withUnsafeBytes { [UInt8]($0) }
                fig.maxAbsDifference = ArrayComparison.maxAbsDifference(ours, [UInt8](theirs), bytesPerSample: 2, signed: true)
            }

            var ourTimes: [Double] = [], theirTimes: [Double] = []
            var ourStages: [[Double]] = [], theirStages: [[Double]] = []
            var spentOurs = 0.0, spentTheirs = 0.0
            while ourTimes.count < 5 || theirTimes.count < 5 || ((spentOurs < o.seconds || spentTheirs < o.seconds) && ourTimes.count < 2000) {
                if ourTimes.count < 5 || spentOurs < o.seconds {
                    stages = [0, 0, 0]
                    let s = WallClock.monotonicNanoseconds()
                    for b in blobs { sink &+= try instance(b).hu.count }
                    let t = Double(WallClock.monotonicNanoseconds() - s) / 1e9
                    ourTimes.append(t); spentOurs += t; ourStages.append(stages)
                }
                if theirTimes.count < 5 || spentTheirs < o.seconds {
                    let answer = try reference.request(["op": "pipeline_time", "id": name, "rounds": 1])
                    let t = (answer["seconds"] as? [Double])?.first ?? .nan
                    theirTimes.append(t); spentTheirs += t
                    theirStages.append(answer["stage_seconds"] as? [Double] ?? [])
                }
            }
            fig.ours = median(ourTimes)
            fig.reference = median(theirTimes)
            fig.ourStages = (0..<3).map { i in median(ourStages.map { $0[i] }) }
            fig.referenceStages = (0..<4).map { i in median(theirStages.compactMap { $0.count == 4 ? $0[i] : nil }) }
            results.append(fig)
        }
        if sink == 42 { print("") }

        let src = o.from ?? "head CT phantom \(native.count) x \(o.size)x\(o.size) int16"
        print("series: \(src); per instance: \(zstd ? "zstd-decompress → " : "")read → decode → HU → downsample to ≤ \(o.maxSize) (InstanceResult.make)")
        print(pad("series", 15) + pad("images", 7) + pad("stored MB", 10) + pad("ours img/s", 11) + pad("MB/s", 8)
              + pad("pydicom img/s", 14) + pad("MB/s", 8) + pad("ours/ref", 9) + "|Δ| HU vs ours")
        for f in results {
            print(pad(f.name, 15) + pad("\(f.images)", 7) + pad(String(format: "%.1f", f.storedMB), 10)
                  + pad(String(format: "%.0f", f.oursImagesPerSecond), 11) + pad(String(format: "%.0f", f.pixelMB / f.ours), 8)
                  + pad(String(format: "%.0f", f.referenceImagesPerSecond), 14) + pad(String(format: "%.0f", f.pixelMB / f.reference), 8)
                  + pad(String(format: "%.1fx", f.reference / f.ours), 9)
                  + (f.maxAbsDifference.map { $0 == 0 ? "identical" : "max \($0)" } ?? "not compared"))
            let ms = { (x: Double) in String(format: "%.2f", x * 1000 / Double(f.images)) }
            print("    ours ms/image: " + zip(["decompress", "read", "make"], f.ourStages).map { "\($0) \(ms($1))" }.joined(separator: ", ")
                  + "; pydicom: " + zip(["decompress", "dcmread", "pixel_array", "numpy"], f.referenceStages).map { "\($0) \(ms($1))" }.joined(separator: ", "))
        }
        let lossVsNative = results.count == 2 ? results[1].oursImagesPerSecond / results[0].oursImagesPerSecond : .nan
        print(String(format: "jpeg-lossless / native (ours): %.2f (goal ≥ 0.5, i.e. within 2x)", lossVsNative))
        if o.json {
            var series: [String: Any] = [:]
            for f in results {
                var s: [String: Any] = ["images": f.images, "pixel_mb": f.pixelMB, "stored_mb": f.storedMB,
                                        "images_per_s": f.oursImagesPerSecond, "mb_per_s": f.pixelMB / f.ours,
                                        "reference_images_per_s": f.referenceImagesPerSecond, "reference_mb_per_s": f.pixelMB / f.reference,
                                        "ratio": f.reference / f.ours,
                                        "stage_seconds": Dictionary(uniqueKeysWithValues: zip(["decompress", "read", "make"], f.ourStages)),
                                        "reference_stage_seconds": Dictionary(uniqueKeysWithValues: zip(["decompress", "dcmread", "pixel_array", "numpy"], f.referenceStages))]
                if let d = f.maxAbsDifference { s["max_abs_diff_first_image"] = d }
                series[f.name] = s
            }
            let obj: [String: Any] = ["benchmark": "pipeline", "mode": "jpeg-lossless", "source": src, "max_size": o.maxSize,
                                      "zstd_level": zstd ? o.level : -1, "cpu": pinned ? o.cpu : -1, "seconds": o.seconds,
                                      "series": series, "lossless_vs_native": lossVsNative, "reference": versions]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
