import Compliance
import DICOM
import Foundation
import RadGridCore
import TestSupport
import Testing

/// The corpus's real files (../shared/corpus), de-identified by us and, for comparison, by
/// dicognito (PyPI, pinned in scripts/pydeps.sh) through Tests/Clients/deid_compare.py.
@Suite("De-identification on the reference corpus", .enabled(if: Corpus.isAvailable, "the reference corpus (../shared/corpus) is absent"))
struct CorpusDeidentificationTests {
    static var files: [URL] {
        guard let dir = Corpus.directory?.appendingPathComponent("dicom"),
              let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        return names.filter { $0.hasSuffix(".dcm") }.sorted().map { dir.appendingPathComponent($0) }
    }

    @Test("every file our reader reads is de-identified, re-reads, and keeps no identifier")
    func everyReadableFile() throws {
        let deid = try Deidentifier(secret: Fixtures.secret)
        var done = 0
        for url in Self.files {
            let name = url.lastPathComponent
            let bytes = [UInt8](try Data(contentsOf: url))
            guard let original = try? DICOMFile.read(bytes) else {
                // What the reader refuses (truncated files) is refused with a code, never half-done.
                do throws(DeidentificationError) {
                    _ = try deid.deidentifyPart10(bytes)
                    Issue.record("\(name): an unreadable file was de-identified")
                } catch {
                    #expect(error.code == DeidentificationError.unreadableCode, "\(name)")
                }
                continue
            }
            let out: [UInt8]
            do throws(DeidentificationError) {
                out = try deid.deidentifyPart10(bytes)
            } catch {
                // Only a file without meta header and SOP class may be refused once read.
                #expect(error.code == DeidentificationError.unreadableCode && original.meta.isEmpty, "\(name): \(error)")
                continue
            }
            let file = try DICOMFile.read(out)
            done += 1
            for tag in [DICOM.Tag.patientName, .patientID] {
                if let value = original.dataSet.string(tag), value.count >= 3 {
                    #expect(!Fixtures.contains(out, value), "\(name): \(tag) survives")
                }
            }
            for tag in [DICOM.Tag.studyInstanceUID, .seriesInstanceUID, .sopInstanceUID, .frameOfReferenceUID] {
                guard let uid = original.dataSet.string(tag), !uid.isEmpty else { continue }
                #expect(!Fixtures.contains(out, uid), "\(name): \(tag) survives")
                #expect(file.dataSet.string(tag) == deid.pseudonymousUID(uid), "\(name): \(tag)")
            }
            #expect(!file.dataSet.tags.contains { $0.isPrivate }, "\(name)")
            #expect(file.dataSet.string(DICOM.Tag(0x0012, 0x0062)) == "YES", "\(name)")
            #expect((file.meta.string(.mediaStorageSOPInstanceUID) ?? "") == (file.dataSet.string(.sopInstanceUID) ?? ""), "\(name)")
            if !original.dataSet.isBigEndian, let pixels = original.dataSet[.pixelData] {
                #expect(file.dataSet[.pixelData]?.value == pixels.value, "\(name): pixel data changed")
            }
        }
        #expect(done >= 25, "only \(done) corpus files were de-identified")
    }

    /// Runs a command, returning its exit status and combined output.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, in work: String) throws -> (Int32?, String) {
        let log = work + "/run-\(UUID().uuidString).log"
        let process = try ChildProcess(executable: executable, arguments: arguments, environment: environment, outputPath: log)
        let status = process.wait(timeout: .seconds(180))
        return (status, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test("an independent de-identifier (dicognito) finds nothing of the inputs left in ours")
    func comparedWithDicognito() throws {
        let root = Corpus.packageRoot.path
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("deid-compare-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        // PYTHONPATH as scripts/pydeps.sh names it; python and the pinned packages must be there.
        let (pathStatus, pathOutput) = try Self.run("/bin/bash", [root + "/scripts/pydeps.sh", "--path"], in: work)
        #expect(pathStatus == 0, "scripts/pydeps.sh --path: \(pathOutput)")
        let pydeps = pathOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let environment = ["PYTHONPATH": pydeps, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
                           "HOME": ProcessInfo.processInfo.environment["HOME"] ?? work]
        let (importStatus, importOutput) = try Self.run("/usr/bin/env", ["python3", "-c", "import pydicom, dicognito"], environment: environment, in: work)
        try #require(importStatus == 0, "python3 with pydicom and dicognito is needed (run scripts/pydeps.sh): \(importOutput)")

        let names = ["CT_small.dcm", "MR_small.dcm", "MR_small_bigendian.dcm", "JPEG2000.dcm", "image_dfl.dcm",
                     "rtplan.dcm", "test-SR.dcm", "nested_priv_SQ.dcm", "examples_rgb_color.dcm"]
        let inputs = names.compactMap { name in Self.files.first { $0.lastPathComponent == name } }
        try #require(inputs.count == names.count, "corpus files are missing")
        for profile in ["basic", "retain-dates,retain-patient-chars"] {
            let deid = try Deidentifier(secret: Fixtures.secret, options: try Deidentifier.Options(profile: profile))
            let ours = work + "/ours-" + profile.replacingOccurrences(of: ",", with: "+")
            try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: true)
            for url in inputs {
                let out = try deid.deidentifyPart10([UInt8](try Data(contentsOf: url)))
                try Data(out).write(to: URL(fileURLWithPath: ours + "/" + url.lastPathComponent))
            }
            let report = ours + ".json"
            let (status, output) = try Self.run("/usr/bin/env", ["python3", root + "/Tests/Clients/deid_compare.py", "--input"] + inputs.map(\.path)
                                                    + ["--ours", ours, "--profile", profile, "--json-out", report], environment: environment, in: work)
            #expect(status == 0, "deid_compare.py (\(profile)): \(output)")
            let summary = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report)))) as? [String: Any] ?? [:]
            #expect(summary["ok"] as? Bool == true, "\(profile): \(output)")
            #expect(summary["files"] as? Int == names.count, "\(profile): \(output)")
            #expect((summary["leaks"] as? [Any])?.isEmpty == true, "\(profile): \(output)")
            #expect(summary["uid_mapping_consistent"] as? Bool == true)
            if profile != "basic" {
                // What the options keep and dicognito changes is listed as justified, not as a leak.
                #expect((summary["justified"] as? [Any])?.isEmpty == false, "\(profile): \(output)")
            }
        }
    }
}
