import ArgumentParser
import Crypto
import DICOM
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `radgridctl inspect FILE [--json]`: what our DICOM reader sees in a file.
struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a DICOM file's transfer syntax, elements and decoded pixel summary.",
        discussion: "With --json the output uses the field names of the reference corpus's expected.json. Exits non-zero when the file cannot be read."
    )

    @Argument(help: "Path to a DICOM file.")
    var file: String

    @Flag(name: .long, help: "Print a JSON object instead of text.")
    var json = false

    @Option(name: .long, help: "Truncate displayed values to this many characters (text output).")
    var maxValueLength = 64

    func run() async throws {
        let bytes: [UInt8]
        do {
            bytes = try Self.readFile(file)
        } catch let error as DICOMError {
            if json {
                let report = JSONValue.object(["error": .object(["code": .string(error.code), "message": .string(error.message)])])
                print(report.serialized(pretty: true))
            } else {
                print("error: \(error.code): \(error.message)")
            }
            throw ExitCode(2)
        }
        if json {
            let (report, readable) = InspectReport.json(for: bytes, digest: sha256Hex)
            print(report.serialized(pretty: true))
            if !readable { throw ExitCode(1) }
        } else {
            let (text, readable) = InspectReport.text(for: bytes, maxValueLength: maxValueLength, digest: sha256Hex)
            print(text, terminator: "")
            if !readable { throw ExitCode(1) }
        }
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        guard let fp = fopen(path, "rb") else {
            throw DICOMError(code: "dicom.io", message: "cannot open file (errno \(errno))")
        }
        defer { fclose(fp) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
            if n > 0 { out.append(contentsOf: buffer[0..<n]) }
            if n < buffer.count {
                if ferror(fp) != 0 { throw DICOMError(code: "dicom.io", message: "read error") }
                break
            }
        }
        return out
    }
}

/// Lowercase hex SHA-256, as in the reference corpus's `expected.json`.
func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
}
