import ArgumentParser
import DICOM
import Foundation
import Imaging
import RadGridCore

/// `radgrid-bench codecs`: MB/s of decoded pixels per codec, our `decodePixels` against
/// pydicom's `pixel_array` (pylibjpeg / openjpeg / pyjpegls / rle plugins) on the same files,
/// both pinned to the same core, in the same run. Rounds alternate between the two sides so
/// a machine that speeds up or slows down affects both alike; medians over the rounds.
struct CodecBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codecs",
        abstract: "Decoded MB/s per codec on one core against pydicom + pylibjpeg/openjpeg/pyjpegls on the same files."
    )

    @Option(help: "Decode the DICOM files under DIR (grouped by transfer syntax) instead of the synthetic series.")
    var from: String?
    @Option(help: "Slices of the synthetic series.") var slices = 20
    @Option(help: "Matrix size of the synthetic series (square).") var size = 512
    @Option(help: "PRNG seed of the phantom.") var seed: UInt64 = 1
    @Option(help: "Timed seconds per codec for each side (at least 5 rounds).") var seconds = 2.0
    @Option(help: "CPU both sides are pinned to (sched_setaffinity); -1 leaves them unpinned.") var cpu = 0
    @Option(help: "Folder with pydicom and its plugins (scripts/pydeps.sh).") var pydeps = ".pydeps"
    @Option(help: "Only these codecs (comma-separated names, e.g. jpeg-lossless-sv1,rle).") var codecs: String?
    @Flag(help: "Keep the generated test files (their folder is printed).") var keep = false
    @Flag(help: "Print one JSON object as the last line.") var json = false

    struct Row {
        var name: String
        var syntax: String
        var files: Int
        var decodedMB: Double
        var compressedMB: Double
        var ours: Double
        var reference: Double?
        var referencePlugin: String?
        var plugins: [String: Double]
        var maxAbsDifference: Int?
        var note: String?
    }

    func run() throws {
        let pinned = cpu >= 0 && CPUPinning.pin(to: cpu)
        print(pinned ? "pinned to CPU \(cpu) with sched_setaffinity (the python3 reference pins itself to the same CPU)"
                     : "not pinned: both sides may move between cores")
        let scratch = try ScratchDirectory(prefix: "radgrid-codecs", keep: keep)
        let only = codecs.map { Set($0.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) }) }
        let t0 = WallClock.monotonicNanoseconds()
        var cases: [CodecCase]
        if let from {
            cases = try CodecTestSet.cases(from: from)
            if let only { cases = cases.filter { only.contains($0.name) } }
            print("\(from): \(cases.map { "\($0.name) \($0.paths.count)" }.joined(separator: ", "))")
        } else {
            cases = try CodecTestSet.build(slices: slices, size: size, seed: seed, scratch: scratch, only: only) { print("  " + $0) }
            print("test set: head CT phantom, \(slices) slices of \(size)x\(size), built in \(String(format: "%.1f", Double(WallClock.monotonicNanoseconds() - t0) / 1e9)) s")
        }
        guard !cases.isEmpty else { throw BenchError.failed("no test files") }

        let reference = try PythonReference(pydeps: pydeps, cpu: pinned ? cpu : nil, scratch: scratch)
        let versions = try reference.request(["op": "hello"])
        print("reference: python \(versions["python"] ?? "?"), pydicom \(versions["pydicom"] ?? "?"), numpy \(versions["numpy"] ?? "?"), "
              + "pylibjpeg \(versions["pylibjpeg"] ?? "?") (libjpeg \(versions["pylibjpeg-libjpeg"] ?? "?"), openjpeg \(versions["pylibjpeg-openjpeg"] ?? "?"), "
              + "rle \(versions["pylibjpeg-rle"] ?? "?")), pyjpegls \(versions["pyjpegls"] ?? "?"); CPUs \(versions["affinity"] ?? "?")")
        print("")
        print(pad("codec", 20) + pad("files", 6) + pad("compr.", 7) + pad("ours MB/s", 11) + pad("pydicom MB/s", 13) + pad("ours/ref", 9) + "reference plugin, |Δ| vs ours")

        var rows: [Row] = []
        var sink = 0
        for c in cases {
            var row = Row(name: c.name, syntax: c.transferSyntax, files: c.paths.count, decodedMB: 0, compressedMB: 0, ours: .nan,
                          reference: nil, referencePlugin: nil, plugins: [:])
            defer { rows.append(row); printRow(row) }
            // Read once (not timed): the benchmark times decoding.
            var files: [DICOMFile] = []
            var compressed = 0
            for p in c.paths {
                let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: p)))
                let f = try DICOMFile.read(bytes)
                if let enc = f.dataSet[.pixelData]?.encapsulated { compressed += enc.fragments.reduce(0) { $0 + $1.count } }
                else { compressed += f.dataSet[.pixelData]?.bytes?.count ?? 0 }
                files.append(f)
            }
            let first: DecodedImage
            var decodedBytes = 0
            do {
                first = try files[0].decodePixels()
                for f in files {
                    let img = try f.decodePixels() // warm-up round
                    decodedBytes += img.storage.count * img.storage.bytesPerSample
                }
            } catch {
                row.note = "ours failed: \(error)"
                continue
            }
            row.decodedMB = Double(decodedBytes) / 1e6
            row.compressedMB = Double(compressed) / 1e6

            let dump = scratch.url.appendingPathComponent("\(c.name).ref").path
            let loaded: [String: Any]
            do {
                loaded = try reference.request(["op": "load", "id": c.name, "files": c.paths, "dump": dump])
            } catch {
                row.note = "reference failed: \(error)"
                loaded = ["plugins": [String: Any]()]
            }
            let pluginStates = loaded["plugins"] as? [String: [String: Any]] ?? [:]
            let plugins = pluginStates.keys.sorted().filter { pluginStates[$0]?["ok"] as? Bool == true }
            for (name, state) in pluginStates where state["error"] != nil {
                print("    pydicom plugin \(name) failed: \(state["error"]!)")
            }
            if let theirs = FileManager.default.contents(atPath: dump) {
                row.maxAbsDifference = ArrayComparison.maxAbsDifference(first.littleEndianBytes(), [UInt8](theirs),
                                                                        bytesPerSample: first.storage.bytesPerSample, signed: first.isSigned)
            }
            if let refBytes = loaded["decoded_bytes"] as? Int, refBytes != decodedBytes {
                row.note = "pydicom decodes \(refBytes) bytes, ours \(decodedBytes)"
            }

            // Alternate rounds: ours, then each reference plugin, until every side has had
            // `seconds` (at least 5 rounds each).
            var ourTimes: [Double] = []
            var theirTimes: [String: [Double]] = [:]
            var spent = 0.0
            repeat {
                let s = WallClock.monotonicNanoseconds()
                for f in files { sink &+= try f.decodePixels().storage.count }
                let t = Double(WallClock.monotonicNanoseconds() - s) / 1e9
                ourTimes.append(t)
                spent += t
                for p in plugins {
                    let answer = try reference.request(["op": "time", "id": c.name, "plugin": p, "rounds": 1])
                    theirTimes[p, default: []] += answer["seconds"] as? [Double] ?? []
                }
            } while ourTimes.count < 5 || (spent < seconds && ourTimes.count < 2000)
            // The reference plugins may be much slower: give them their own budget too.
            for p in plugins {
                var theirs = theirTimes[p] ?? []
                while theirs.count < 5 || (theirs.reduce(0, +) < seconds && theirs.count < 2000) {
                    theirs += try reference.request(["op": "time", "id": c.name, "plugin": p, "rounds": 1])["seconds"] as? [Double] ?? []
                }
                theirTimes[p] = theirs
            }
            row.ours = row.decodedMB / median(ourTimes)
            for (p, ts) in theirTimes { row.plugins[p] = row.decodedMB / median(ts) }
            if let best = row.plugins.max(by: { $0.value < $1.value }) {
                row.reference = best.value
                row.referencePlugin = best.key
            }
        }
        if sink == 42 { print("") } // keeps the decoded arrays observable

        if json {
            var out: [String: Any] = [:]
            for r in rows {
                var o: [String: Any] = ["transfer_syntax": r.syntax, "files": r.files, "decoded_mb": r.decodedMB, "compressed_mb": r.compressedMB,
                                        "reference_plugins": r.plugins]
                if r.ours.isFinite { o["mb_per_s"] = r.ours }
                if let ref = r.reference { o["reference_mb_per_s"] = ref; o["reference_plugin"] = r.referencePlugin ?? "" }
                if let ref = r.reference, r.ours.isFinite { o["ratio"] = r.ours / ref }
                if let d = r.maxAbsDifference { o["max_abs_diff_first_file"] = d }
                if let n = r.note { o["note"] = n }
                out[r.name] = o
            }
            let obj: [String: Any] = ["benchmark": "codecs", "source": from ?? "phantom \(slices)x\(size)x\(size)", "cpu": pinned ? cpu : -1,
                                      "seconds": seconds, "reference": versions, "codecs": out]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
    }

    func printRow(_ r: Row) {
        func f(_ x: Double?, _ d: Int = 1) -> String { x.map { $0.isFinite ? String(format: "%.\(d)f", $0) : "-" } ?? "-" }
        let ratio = r.compressedMB > 0 ? r.decodedMB / r.compressedMB : .nan
        let vs = r.reference.map { r.ours / $0 }
        let diff = r.maxAbsDifference.map { $0 == 0 ? "identical" : "max |Δ| \($0)" } ?? "not compared"
        print(pad(r.name, 20) + pad("\(r.files)", 6) + pad(f(ratio, 2), 7) + pad(f(r.ours), 11) + pad(f(r.reference), 13)
              + pad(vs.map { String(format: "%.2fx", $0) } ?? "-", 9) + "\(r.referencePlugin ?? "-"), \(diff)"
              + (r.note.map { "  [\($0)]" } ?? ""))
    }
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
