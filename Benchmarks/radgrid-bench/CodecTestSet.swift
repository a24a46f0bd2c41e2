import DICOM
import Foundation
import Imaging
import Screening

/// One codec's test files: the same series in one transfer syntax.
struct CodecCase {
    let name: String
    let transferSyntax: String
    var paths: [String]
}

/// Builds the codec test sets at run time from the head CT phantom, with the Debian encoders
/// (dcmtk `dcmcjpeg`/`dcmcjpls`/`dcmcrle`, GDCM `gdcmconv`, OpenJPH `ojph_compress`).
enum CodecTestSet {
    /// Short names of the transfer syntaxes the benchmark knows (others are named by UID).
    static let names: [String: String] = [
        "1.2.840.10008.1.2": "native-implicit",
        "1.2.840.10008.1.2.1": "native",
        "1.2.840.10008.1.2.2": "native-big-endian",
        "1.2.840.10008.1.2.1.99": "native-deflated",
        "1.2.840.10008.1.2.5": "rle",
        "1.2.840.10008.1.2.4.50": "jpeg-baseline-8",
        "1.2.840.10008.1.2.4.51": "jpeg-extended-12",
        "1.2.840.10008.1.2.4.57": "jpeg-lossless-p14",
        "1.2.840.10008.1.2.4.70": "jpeg-lossless-sv1",
        "1.2.840.10008.1.2.4.80": "jpeg-ls-lossless",
        "1.2.840.10008.1.2.4.81": "jpeg-ls-near",
        "1.2.840.10008.1.2.4.90": "j2k-lossless",
        "1.2.840.10008.1.2.4.91": "j2k-lossy",
        "1.2.840.10008.1.2.4.201": "htj2k-lossless",
        "1.2.840.10008.1.2.4.202": "htj2k-lossless-rpcl",
        "1.2.840.10008.1.2.4.203": "htj2k-lossy",
    ]

    static func name(of uid: String) -> String { names[uid] ?? uid }

    /// `--from DIR`: the files grouped by transfer syntax, in the table's order.
    static func cases(from dir: String) throws -> [CodecCase] {
        var groups: [String: [String]] = [:]
        for (path, file) in try dicomFiles(under: dir) { groups[file.transferSyntax.uid, default: []].append(path) }
        let order = Array(names.keys).sorted { sortKey($0).lexicographicallyPrecedes(sortKey($1)) }
        return groups.keys.sorted { (order.firstIndex(of: $0) ?? 99, $0) < (order.firstIndex(of: $1) ?? 99, $1) }
            .map { CodecCase(name: name(of: $0), transferSyntax: $0, paths: groups[$0]!) }
    }

    static func sortKey(_ uid: String) -> [Int] { uid.split(separator: ".").map { Int($0) ?? 0 } }

    /// The head CT phantom (`slices` × `size`², int16, rescale intercept −1024), written
    /// natively to `folder`; returns the paths in slice order.
    static func phantomSeries(slices: Int, size: Int, seed: UInt64, into folder: URL) throws -> [String] {
        let spec = PhantomSpec(kind: .head, width: size, height: size, slices: slices, pixelSpacing: 240.0 / Double(size),
                               sliceSpacing: 140.0 / Double(max(slices, 1)), lesionDiameterMM: 12, noiseHU: 6, seed: seed)
        var paths: [String] = []
        for (k, bytes) in try Phantom.generate(spec).dicomFiles().enumerated() {
            let p = folder.appendingPathComponent(String(format: "%04d.dcm", k + 1)).path
            try Data(bytes).write(to: URL(fileURLWithPath: p))
            paths.append(p)
        }
        return paths
    }

    /// The same slices with other stored values: 12 bits unsigned (what JPEG extended
    /// takes), or 8 bits through a soft-tissue window (what JPEG baseline takes).
    static func variant(_ paths: [String], bits: Int, into folder: URL) throws -> [String] {
        try paths.map { p in
            let file = try DICOMFile.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: p))))
            var ds = file.dataSet
            guard let raw = ds[.pixelData]?.bytes, let rows = ds.int(.rows), let columns = ds.int(.columns) else {
                throw BenchError.failed("\(p) has no native pixel data")
            }
            let n = rows * columns
            let stored = (0..<n).map { Int(Int16(bitPattern: UInt16(raw[2 * $0]) | UInt16(raw[2 * $0 + 1]) << 8)) }
            if bits == 12 {
                try ds.setPixelData(.uint16(stored.map { UInt16(max(0, min(4095, $0))) }), rows: rows, columns: columns, bitsStored: 12)
            } else {
                // HU = stored − 1024; window centre 40, width 400 to 0…255.
                let bytes = stored.map { s -> UInt8 in
                    let v = (Double(s - 1024) - (40 - 200)) / 400 * 255
                    return UInt8(max(0, min(255, v.rounded())))
                }
                try ds.setPixelData(.uint8(bytes), rows: rows, columns: columns)
                _ = ds.remove(.rescaleIntercept)
                _ = ds.remove(.rescaleSlope)
                _ = ds.remove(.rescaleType)
                _ = ds.remove(.windowCenter)
                _ = ds.remove(.windowWidth)
            }
            let out = folder.appendingPathComponent(URL(fileURLWithPath: p).lastPathComponent).path
            try Data(try DICOMWriter.write(ds)).write(to: URL(fileURLWithPath: out))
            return out
        }
    }

    /// An HTJ2K copy of native 16-bit files, coded by `ojph_compress` and wrapped here
    /// (neither dcmtk nor GDCM in bookworm writes HTJ2K).
    static func htj2k(_ paths: [String], lossless: Bool, into folder: URL) throws -> [String] {
        try paths.map { p in
            let file = try DICOMFile.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: p))))
            var ds = file.dataSet
            guard let raw = ds[.pixelData]?.bytes, let rows = ds.int(.rows), let columns = ds.int(.columns),
                  ds.int(.bitsAllocated) == 16 else { throw BenchError.failed("\(p) is not native 16-bit") }
            let signed = ds.int(.pixelRepresentation) == 1
            let bits = ds.int(.bitsStored) ?? 16
            let base = folder.appendingPathComponent(URL(fileURLWithPath: p).deletingPathExtension().lastPathComponent)
            let rawURL = base.appendingPathExtension("raw"), j2c = base.appendingPathExtension("j2c")
            try Data(raw.prefix(rows * columns * 2)).write(to: rawURL)
            var args = ["-i", rawURL.path, "-o", j2c.path, "-dims", "{\(columns),\(rows)}", "-num_comps", "1",
                        "-signed", signed ? "true" : "false", "-bit_depth", "\(bits)", "-downsamp", "{1,1}"]
            // Lossy: quantisation step 2^-14 of the 16-bit range (about 4 stored units).
            args += lossless ? ["-reversible", "true"] : ["-qstep", "0.00006"]
            try Tool.run("ojph_compress", args)
            var stream = [UInt8](try Data(contentsOf: j2c))
            if stream.count % 2 == 1 { stream.append(0) }
            ds.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(EncapsulatedPixelData(fragments: [stream]))))
            let uid = lossless ? "1.2.840.10008.1.2.4.201" : "1.2.840.10008.1.2.4.203"
            let out = base.appendingPathExtension("dcm").path
            try Data(try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: uid)).write(to: URL(fileURLWithPath: out))
            try? FileManager.default.removeItem(at: rawURL)
            try? FileManager.default.removeItem(at: j2c)
            return out
        }
    }

    /// Runs `tool` once per file: `tool args… in out`.
    static func convert(_ paths: [String], tool: String, _ args: [String], into folder: URL) throws -> [String] {
        try paths.map { p in
            let out = folder.appendingPathComponent(URL(fileURLWithPath: p).lastPathComponent).path
            try Tool.run(tool, args + [p, out])
            return out
        }
    }

    /// Every codec family of the benchmark, from one phantom series. A family whose tool is
    /// missing is skipped with a note.
    static func build(slices: Int, size: Int, seed: UInt64, scratch: ScratchDirectory, only: Set<String>?,
                      note: (String) -> Void) throws -> [CodecCase] {
        let native = try phantomSeries(slices: slices, size: size, seed: seed, into: try scratch.folder("native"))
        var twelve: [String]?, eight: [String]?
        func source(_ bits: Int) throws -> [String] {
            switch bits {
            case 12:
                if twelve == nil { twelve = try variant(native, bits: 12, into: try scratch.folder("native12")) }
                return twelve!
            case 8:
                if eight == nil { eight = try variant(native, bits: 8, into: try scratch.folder("native8")) }
                return eight!
            default: return native
            }
        }
        // (name, syntax, source bits, tool, arguments)
        let recipes: [(String, String, Int, String, [String])] = [
            ("native", "1.2.840.10008.1.2.1", 16, "", []),
            ("rle", "1.2.840.10008.1.2.5", 16, "dcmcrle", []),
            ("jpeg-baseline-8", "1.2.840.10008.1.2.4.50", 8, "dcmcjpeg", ["+eb", "+q", "90"]),
            ("jpeg-extended-12", "1.2.840.10008.1.2.4.51", 12, "dcmcjpeg", ["+ee", "+q", "90"]),
            ("jpeg-lossless-p14", "1.2.840.10008.1.2.4.57", 16, "dcmcjpeg", ["+el", "+sv", "6"]),
            ("jpeg-lossless-sv1", "1.2.840.10008.1.2.4.70", 16, "dcmcjpeg", ["+e1"]),
            ("jpeg-ls-lossless", "1.2.840.10008.1.2.4.80", 16, "dcmcjpls", ["+el"]),
            ("jpeg-ls-near", "1.2.840.10008.1.2.4.81", 12, "dcmcjpls", ["+en", "+md", "2"]), // dcmtk: unsigned only
            ("j2k-lossless", "1.2.840.10008.1.2.4.90", 16, "gdcmconv", ["--j2k"]),
            ("j2k-lossy", "1.2.840.10008.1.2.4.91", 16, "gdcmconv", ["--j2k", "--lossy", "-r", "10"]),
            ("htj2k-lossless", "1.2.840.10008.1.2.4.201", 16, "ojph_compress", []),
            ("htj2k-lossy", "1.2.840.10008.1.2.4.203", 16, "ojph_compress", []),
        ]
        var cases: [CodecCase] = []
        for (name, uid, bits, tool, args) in recipes {
            if let only, !only.contains(name) { continue }
            if !tool.isEmpty && !Tool.exists(tool) {
                note("\(name): skipped, \(tool) is not installed (make deps)")
                continue
            }
            let src = try source(bits)
            let paths: [String]
            switch tool {
            case "": paths = src
            case "ojph_compress": paths = try htj2k(src, lossless: name == "htj2k-lossless", into: try scratch.folder(name))
            default: paths = try convert(src, tool: tool, args, into: try scratch.folder(name))
            }
            // The encoder must have written the syntax the case is named after.
            let written = try DICOMFile.readHeader([UInt8](try Data(contentsOf: URL(fileURLWithPath: paths[0])))).transferSyntax.uid
            guard written == uid else { throw BenchError.failed("\(tool) wrote \(written) for \(name), expected \(uid)") }
            cases.append(CodecCase(name: name, transferSyntax: uid, paths: paths))
        }
        return cases
    }
}
