import Compliance
import DICOM
import Foundation
import RadGridCore
import TestSupport
import Testing

/// The built `radgridctl` (as the integration tests find it).
enum DeidCLI {
    static var path: String? {
        var candidates: [String] = []
        if let dir = ProcessInfo.processInfo.environment["RADGRID_BIN_DIR"] { candidates.append(dir + "/radgridctl") }
        candidates.append(Corpus.packageRoot.appendingPathComponent(".build/debug/radgridctl").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func run(_ arguments: [String]) throws -> (Int32?, String) {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("deid-cli-\(UUID().uuidString).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let process = try ChildProcess(executable: try #require(path), arguments: arguments, outputPath: output)
        let code = process.wait(timeout: .seconds(60))
        return (code, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }
}

@Suite("radgridctl deid", .enabled(if: DeidCLI.path != nil, "radgridctl is not built (swift build --product radgridctl, or set RADGRID_BIN_DIR)"))
struct DeidCommandTests {
    static func mode(_ path: String) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int
    }

    static func hex(_ text: String) -> [UInt8] {
        let chars = Array(text.utf8)
        return stride(from: 0, to: chars.count - 1, by: 2).compactMap { UInt8(String(decoding: chars[$0...$0 + 1], as: UTF8.self), radix: 16) }
    }

    @Test("a tree keeps its relative paths, files are 0600, the secret is created once, runs repeat exactly")
    func directoryTree() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("deid-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let input = work + "/in", secretFile = work + "/keys/site.key"
        try FileManager.default.createDirectory(atPath: input + "/a/b", withIntermediateDirectories: true)
        let study = "1.2.826.0.1.3680043.9.7133.8", series = study + ".1"
        let one = try DICOMWriter.write(Fixtures.ctSlice(study: study, series: series, instance: series + ".1"))
        let two = try DICOMWriter.write(Fixtures.ctSlice(study: study, series: series, instance: series + ".2", references: [series + ".1"]))
        try Data(one).write(to: URL(fileURLWithPath: input + "/a/b/one.dcm"))
        try Data(two).write(to: URL(fileURLWithPath: input + "/two.dcm"))

        let (code, text) = try DeidCLI.run(["deid", input, work + "/out", "--secret-file", secretFile])
        #expect(code == 0, "\(text)")
        #expect(text.contains("created a new site secret"))
        #expect(Self.mode(secretFile) == 0o600)
        let secretText = try String(contentsOfFile: secretFile, encoding: .utf8)
        #expect(secretText.count == 65 && secretText.hasSuffix("\n"))
        let secret = Self.hex(String(secretText.dropLast()))
        #expect(secret.count == 32)

        // What the command wrote is what the library makes with the secret from the file.
        let deid = try Deidentifier(secret: secret)
        for (relative, original) in [("a/b/one.dcm", one), ("two.dcm", two)] {
            let path = work + "/out/" + relative
            #expect(Self.mode(path) == 0o600, "\(relative)")
            let written = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            #expect(written == (try deid.deidentifyPart10(original)), "\(relative)")
        }
        let first = try DICOMFile.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: work + "/out/a/b/one.dcm"))))
        let second = try DICOMFile.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: work + "/out/two.dcm"))))
        #expect(first.dataSet.string(.studyInstanceUID) == second.dataSet.string(.studyInstanceUID))
        #expect(second.dataSet.sequence(DICOM.Tag(0x0008, 0x1140))?.first?.string(DICOM.Tag(0x0008, 0x1155)) == first.dataSet.string(.sopInstanceUID))

        // Again with the same secret: the same bytes, and the secret is not made anew.
        let (again, againText) = try DeidCLI.run(["deid", input, work + "/out2", "--secret-file", secretFile])
        #expect(again == 0 && !againText.contains("created"))
        for relative in ["a/b/one.dcm", "two.dcm"] {
            #expect(FileManager.default.contents(atPath: work + "/out/" + relative) == FileManager.default.contents(atPath: work + "/out2/" + relative))
        }

        // One file, with an option; OUT an existing directory.
        try FileManager.default.createDirectory(atPath: work + "/single", withIntermediateDirectories: true)
        let (single, singleText) = try DeidCLI.run(["deid", input + "/two.dcm", work + "/single", "--profile", "retain-dates", "--secret-file", secretFile])
        #expect(single == 0, "\(singleText)")
        let dated = try DICOMFile.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: work + "/single/two.dcm"))))
        #expect(dated.dataSet.string(.studyDate) == "20240131" && dated.dataSet.string(.patientBirthDate) == "")
    }

    @Test("unreadable input, a bad option or a missing path: non-zero, a coded error, no half-written output")
    func failures() throws {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("deid-cli-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: work) }
        let input = work + "/in", secretFile = work + "/site.key"
        try FileManager.default.createDirectory(atPath: input + "/notes", withIntermediateDirectories: true)
        let good = try DICOMWriter.write(Fixtures.ctSlice(study: "1.2.3", series: "1.2.3.4", instance: "1.2.3.4.5"))
        try Data(good).write(to: URL(fileURLWithPath: input + "/good.dcm"))
        try Data("Patient Zebedee called twice".utf8).write(to: URL(fileURLWithPath: input + "/notes/call.txt"))
        try Data(good.prefix(good.count - 7)).write(to: URL(fileURLWithPath: input + "/cut.dcm"))

        let (code, text) = try DeidCLI.run(["deid", input, work + "/out", "--secret-file", secretFile])
        #expect(code != 0 && code != nil)
        #expect(text.contains("deid.unreadable") && text.contains("call.txt") && text.contains("cut.dcm"))
        #expect(!text.contains("Zebedee"))
        #expect(FileManager.default.fileExists(atPath: work + "/out/good.dcm"))
        #expect(!FileManager.default.fileExists(atPath: work + "/out/cut.dcm"))
        #expect(!FileManager.default.fileExists(atPath: work + "/out/notes/call.txt"))
        let leftovers = (FileManager.default.subpaths(atPath: work + "/out") ?? []).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty, "\(leftovers)")

        let (profile, profileText) = try DeidCLI.run(["deid", input + "/good.dcm", work + "/x.dcm", "--profile", "retain-everything", "--secret-file", secretFile])
        #expect(profile != 0 && profileText.contains("deid.profile"))
        let (missing, missingText) = try DeidCLI.run(["deid", work + "/nowhere", work + "/y", "--secret-file", secretFile])
        #expect(missing != 0 && missingText.contains("deid.unreadable"))
        let (inside, insideText) = try DeidCLI.run(["deid", input, input + "/deid", "--secret-file", secretFile])
        #expect(inside != 0 && insideText.contains("inside the input"))
        try Data("zz".utf8).write(to: URL(fileURLWithPath: work + "/short.key"))
        let (badKey, badKeyText) = try DeidCLI.run(["deid", input + "/good.dcm", work + "/z.dcm", "--secret-file", work + "/short.key"])
        #expect(badKey != 0 && badKeyText.contains("deid.secret"))
    }
}
