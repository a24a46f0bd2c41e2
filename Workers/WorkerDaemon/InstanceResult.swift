import DICOM
import Foundation
import GridContract
import Imaging

/// What an instance task leaves for its study task: a screening slice, or why there is none.
/// Stored as the task's result: one JSON line (`{"outcome":…}`), then, for a slice, its pixels.
public enum InstanceTaskResult: Sendable, Equatable {
    /// A greyscale slice in HU for the screeners.
    case slice(InstanceResult)
    /// An image an expert reads but the screeners do not (colour, multi-frame): `reason` says which.
    case unscreened(reason: String, series: String)
    /// Not an image (SR, KO, RT plan, ...): listed with the study.
    case nonImage(kind: String)
    /// Could not be read (an error code; never patient data).
    case failed(code: String)

    /// The outcome recorded for the instance.
    public var outcome: InstanceOutcome {
        switch self {
        case .slice, .unscreened: .image
        case .nonImage(let kind): .nonImage(kind: kind)
        case .failed(let code): .failed(code: code)
        }
    }

    public func encoded() throws -> [UInt8] {
        switch self {
        case .slice(let result): return try result.encoded()
        case .unscreened(let reason, let series): return Array(#"{"outcome":"unscreened","reason":"\#(Self.safe(reason))","series":"\#(Self.safe(series))"}"#.utf8) + [0x0A]
        case .nonImage(let kind): return Array(#"{"outcome":"nonimage","kind":"\#(Self.safe(kind))"}"#.utf8) + [0x0A]
        case .failed(let code): return Array(#"{"outcome":"failed","code":"\#(Self.safe(code))"}"#.utf8) + [0x0A]
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> InstanceTaskResult {
        guard let newline = bytes.firstIndex(of: 0x0A) else { throw WorkerError(code: "worker.badResult", message: "instance result has no header") }
        struct Probe: Decodable { var outcome: String?; var reason: String?; var series: String?; var kind: String?; var code: String? }
        let probe = try JSONDecoder().decode(Probe.self, from: Data(bytes[..<newline]))
        switch probe.outcome {
        case nil: return .slice(try InstanceResult.decode(bytes))
        case "unscreened": return .unscreened(reason: probe.reason ?? "", series: probe.series ?? "")
        case "nonimage": return .nonImage(kind: probe.kind ?? "")
        case "failed": return .failed(code: probe.code ?? "worker.failed")
        default: throw WorkerError(code: "worker.badResult", message: "instance result has an unknown outcome")
        }
    }

    /// Codes and kinds are ASCII identifiers; anything else is dropped rather than escaped.
    static func safe(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || ".-_/ ".unicodeScalars.contains($0)) }.prefix(64).map(Character.init))
    }
}

/// What an instance task leaves for its study task: the slice in Hounsfield units (rounded
/// to Int16, downsampled to at most `maxSize` columns) and the geometry needed to assemble
/// the series. Stored as the task's result (`QueueKeys.result`): a JSON header line, then
/// the pixels little-endian.
public struct InstanceResult: Sendable, Equatable {
    public struct Header: Codable, Sendable, Equatable {
        public var columns: Int
        public var rows: Int
        public var series: String
        public var modality: String
        public var bodyPart: String
        public var position: [Double]?
        public var orientation: [Double]?
        public var instanceNumber: Int?
        public var pixelSpacing: [Double]?
        public var sliceThickness: Double?
        public var truncated: Bool
        public var sourceColumns: Int
        public var sourceRows: Int
    }

    public var header: Header
    public var hu: [Int16]

    public init(header: Header, hu: [Int16]) {
        self.header = header
        self.hu = hu
    }

    public func encoded() throws -> [UInt8] {
        var out = Array(try JSONEncoder().encode(header))
        out.append(0x0A)
        out.reserveCapacity(out.count + hu.count * 2)
        for v in hu {
            let u = UInt16(bitPattern: v.littleEndian)
            out.append(UInt8(truncatingIfNeeded: u))
            out.append(UInt8(truncatingIfNeeded: u >> 8))
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> InstanceResult {
        guard let newline = bytes.firstIndex(of: 0x0A) else { throw WorkerError(code: "worker.badResult", message: "instance result has no header") }
        let header = try JSONDecoder().decode(Header.self, from: Data(bytes[..<newline]))
        let body = bytes[(newline + 1)...]
        let count = header.columns * header.rows
        guard count > 0, body.count == count * 2 else {
            throw WorkerError(code: "worker.badResult", message: "instance result holds \(body.count) bytes, expected \(count * 2)")
        }
        var hu = [Int16](repeating: 0, count: count)
        var i = body.startIndex
        for k in 0..<count {
            hu[k] = Int16(bitPattern: UInt16(body[i]) | UInt16(body[i + 1]) << 8)
            i += 2
        }
        return InstanceResult(header: header, hu: hu)
    }

    /// The slice as a preprocessor input (identity modality LUT: the values are HU already).
    public var sliceInput: SliceInput {
        SliceInput(pixels: .int16(hu), rows: header.rows, columns: header.columns, modalityLUT: .identity, photometric: .monochrome2,
                   header: SliceHeader(imagePosition: header.position, imageOrientation: header.orientation, instanceNumber: header.instanceNumber,
                                       pixelSpacing: header.pixelSpacing, sliceThickness: header.sliceThickness),
                   truncated: header.truncated)
    }

    /// Decodes, maps to HU and downsamples one DICOM instance.
    public static func make(from file: DICOMFile, maxSize: Int) throws -> InstanceResult {
        let slice = try SliceInput(file: file)
        let info = SeriesInfo(dataSet: file.dataSet)
        var options = PreprocessOptions.screening
        var spacing = slice.header.pixelSpacing
        if slice.columns > maxSize || slice.rows > maxSize {
            let scale = Double(maxSize) / Double(max(slice.columns, slice.rows))
            let w = max(1, Int((Double(slice.columns) * scale).rounded())), h = max(1, Int((Double(slice.rows) * scale).rounded()))
            options.targetWidth = w
            options.targetHeight = h
            if let ps = spacing, ps.count == 2 {
                spacing = [ps[0] * Double(slice.rows) / Double(h), ps[1] * Double(slice.columns) / Double(w)]
            }
        }
        var pre = SeriesPreprocessor(options: options, info: info, expectedSlices: 1)
        try pre.add(slice)
        let series = try pre.finish()
        let voxels = series.volume.voxels
        var hu = [Int16](repeating: 0, count: voxels.count)
        for k in voxels.indices {
            let v = voxels[k]
            hu[k] = v.isFinite ? Int16(max(-32768, min(32767, v.rounded()))) : 0
        }
        let header = Header(columns: series.volume.width, rows: series.volume.height, series: info.seriesInstanceUID ?? "",
                            modality: info.modality ?? "", bodyPart: info.bodyPart ?? "", position: slice.header.imagePosition,
                            orientation: slice.header.imageOrientation, instanceNumber: slice.header.instanceNumber,
                            pixelSpacing: spacing, sliceThickness: slice.header.sliceThickness, truncated: slice.truncated,
                            sourceColumns: slice.columns, sourceRows: slice.rows)
        return InstanceResult(header: header, hu: hu)
    }
}
