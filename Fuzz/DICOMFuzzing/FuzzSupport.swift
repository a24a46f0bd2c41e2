#if canImport(Glibc)
import Glibc
#endif
import DICOM
import DICOMCodecs

// What every harness asserts about a failure, and the little file I/O the seed writers need
// (Glibc only: the harnesses link no Foundation).

/// Writes to file descriptor 2 (Glibc's `stderr` is shared mutable state to Swift 6).
func printToStderr(_ text: String) {
    var text = text
    text.withUTF8 { buffer in _ = Glibc.write(2, buffer.baseAddress, buffer.count) }
}

/// A broken property ends the process the way libFuzzer recognises as a crash (it saves the
/// input under `-artifact_prefix`), after saying which property broke.
func propertyFailed(_ what: String) -> Never {
    printToStderr("\nDICOMFuzzing: property violated: \(what)\n")
    abort()
}

/// Patient data planted in the seeds (PatientName, PatientID, a JPEG comment). No message
/// may ever repeat them.
let seededPatientData = ["Fuzz^Seed", "FuzzSeedID", "FuzzSeedStudy"]

/// Strings of the input that must not appear in any message: the planted values, and every
/// person name with a component separator (`^` never occurs in a message of ours).
struct PatientDataProbes {
    private(set) var values: [String] = seededPatientData

    init() {}

    /// Collects the person names (PN) of `dataSet` and its items, a few levels deep.
    init(from dataSet: DataSet) {
        collect(dataSet, depth: 0)
    }

    private mutating func collect(_ ds: DataSet, depth: Int) {
        for e in ds.elements {
            if e.vr == .PN, let names = ds.strings(e.tag) {
                for name in names where name.count >= 3 && name.contains("^") && values.count < 64 { values.append(name) }
            }
            if depth < 4, let items = ds.sequence(e.tag) {
                for item in items.prefix(8) { collect(item, depth: depth + 1) }
            }
        }
    }

    func leaked(into message: String) -> String? {
        values.first { message.contains($0) }
    }
}

/// The contract of a failure: a `DICOMError` with a `dicom.` or `codec.` code and a message
/// that names the problem without repeating patient data.
func checkDICOMFailure(_ error: any Error, _ step: String, _ probes: PatientDataProbes) {
    guard let e = error as? DICOMError else {
        propertyFailed("\(step) threw \(type(of: error)), not DICOMError")
    }
    guard e.code.hasPrefix("dicom.") || e.code.hasPrefix("codec."), e.code.count > 6 else {
        propertyFailed("\(step) threw code '\(e.code)'")
    }
    checkMessage(e.message, step, probes)
}

func checkCodecFailure(_ e: CodecError, _ step: String, _ probes: PatientDataProbes) {
    let known: Set<String> = [CodecError.Code.corrupt.rawValue, CodecError.Code.unsupported.rawValue,
                              CodecError.Code.mismatch.rawValue, CodecError.Code.limit.rawValue]
    guard known.contains(e.code) else { propertyFailed("\(step) threw code '\(e.code)'") }
    checkMessage(e.message, step, probes)
}

func checkMessage(_ message: String, _ step: String, _ probes: PatientDataProbes) {
    guard !message.isEmpty else { propertyFailed("\(step) threw an error without a message") }
    if let leaked = probes.leaked(into: message) {
        propertyFailed("\(step): message repeats patient data '\(leaked)': \(message)")
    }
}

// MARK: Files

enum FuzzFiles {
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// Regular files in `directory` whose names end in one of `suffixes`, sorted.
    static func list(_ directory: String, suffixes: [String]) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if suffixes.contains(where: { name.hasSuffix($0) }) { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String, limit: Int) -> [UInt8]? {
        guard let fp = fopen(path, "rb") else { return nil }
        defer { fclose(fp) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while out.count <= limit {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, fp) }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out.count <= limit ? out : nil
    }

    static func write(_ bytes: [UInt8], to path: String) {
        guard let fp = fopen(path, "wb") else {
            printToStderr("DICOMFuzzing: cannot write seed \(path)\n")
            return
        }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, fp) }
        fclose(fp)
    }

    static func baseName(_ path: String) -> String {
        String(path.split(separator: "/").last ?? Substring(path))
    }

    /// Seed sources: the colon-separated directories of $RADGRID_FUZZ_SEED_SOURCES.
    static var seedSources: [String] {
        (environment("RADGRID_FUZZ_SEED_SOURCES") ?? "").split(separator: ":").map(String.init).filter { !$0.isEmpty }
    }

    /// Largest seed written (the harness runs with -max_len of the same size).
    static let maxSeedBytes = 262_144
}
