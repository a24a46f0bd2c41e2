import ArgumentParser
import DICOM
import Foundation
import Imaging
import Screening

/// `radgridctl screen PATH... [--json]`: runs the configured screeners on each series found.
struct ScreenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "screen", abstract: "Run the AI pre-screen on DICOM series (grouped by Series Instance UID).")

    @Argument(help: "DICOM files or directories.") var paths: [String] = []
    @Option(help: "Screening config JSON (default: Ops/screening.json if present, else built-in).") var config: String?
    @Flag(help: "JSON output.") var json = false
    @Flag(help: "Print the effective screening config as JSON and exit.") var printConfig = false

    func run() throws {
        var cfg = ScreeningConfig.default
        let path = config ?? (FileManager.default.fileExists(atPath: "Ops/screening.json") ? "Ops/screening.json" : nil)
        if let path {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            cfg = try JSONDecoder().decode(ScreeningConfig.self, from: data)
            try cfg.validate()
        }
        if printConfig {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(cfg), as: UTF8.self))
            return
        }
        guard !paths.isEmpty else { throw ValidationError("give at least one DICOM file or directory") }
        let engine = ScreeningEngine(config: cfg)
        let (groups, skipped) = DICOMSeriesLoader.series(under: paths)
        if skipped > 0 { FileHandle.standardError.write(Data("skipped \(skipped) file(s) that are not DICOM images\n".utf8)) }
        var results: [ScreeningResult] = []
        for g in groups {
            do {
                let series = try SeriesPreprocessor.process(files: g.files, options: .screening)
                results.append(try engine.run(series))
            } catch {
                FileHandle.standardError.write(Data("series \(results.count + 1): \(error)\n".utf8))
            }
        }
        if json {
            struct Output: Encodable { var series: [ScreeningResult] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            enc.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            print(String(decoding: try enc.encode(Output(series: results)), as: UTF8.self))
            return
        }
        for r in results {
            print("series \(r.seriesInstanceUID ?? "?") (\(r.modality ?? "?") \(r.bodyPart ?? "")): urgency \(r.urgency.rawValue), score \(String(format: "%.3f", r.score))")
            for o in r.outputs {
                print("  \(o.screenerID) \(o.screenerVersion): score \(String(format: "%.3f", o.suspicionScore)), \(o.urgency.rawValue), \(String(format: "%.1f", o.runTimeMs)) ms")
                for f in o.findings {
                    print("    - \(f.code) p=\(String(format: "%.2f", f.probability)) \(f.label)\(f.slice.map { " slice \($0)" } ?? "")")
                }
            }
        }
    }
}


/// Finds DICOM files under paths and groups them by Series Instance UID.
enum DICOMSeriesLoader {
    static func files(under paths: [String]) -> [String] {
        var out: [String] = []
        let fm = FileManager.default
        for p in paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: p, isDirectory: &isDir) else { continue }
            if !isDir.boolValue { out.append(p); continue }
            if let e = fm.enumerator(atPath: p) {
                for case let rel as String in e {
                    let full = (p as NSString).appendingPathComponent(rel)
                    var d: ObjCBool = false
                    if fm.fileExists(atPath: full, isDirectory: &d), !d.boolValue { out.append(full) }
                }
            }
        }
        return out.sorted()
    }

    /// Reads every file that parses as DICOM; returns series in first-seen order and the
    /// number of files skipped.
    static func series(under paths: [String]) -> (series: [(uid: String, files: [DICOMFile])], skipped: Int) {
        var order: [String] = []
        var groups: [String: [DICOMFile]] = [:]
        var skipped = 0
        for path in files(under: paths) {
            guard let data = FileManager.default.contents(atPath: path),
                  let file = try? DICOMFile.read([UInt8](data), options: ReadOptions(allowTruncated: true)),
                  file.dataSet.contains(.pixelData) else { skipped += 1; continue }
            let uid = file.dataSet.string(.seriesInstanceUID) ?? "unknown"
            if groups[uid] == nil { order.append(uid) }
            groups[uid, default: []].append(file)
        }
        return (order.map { ($0, groups[$0]!) }, skipped)
    }
}
