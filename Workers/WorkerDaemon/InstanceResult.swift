import DICOM
import Foundation
import GridContract
import Imaging

/// What routing needs from one instance's header (gathered over the study by its study task).
public struct InstanceDescriptors: Sendable, Hashable, Codable {
    public var modality: String
    public var sopClass: String
    public var bodyPart: String
    public var studyDescription: String
    public var protocolName: String
    public var seriesDescription: String
    public var regionCodes: [AnatomicCode]

    public init(dataSet ds: DataSet) {
        modality = ds.string(.modality) ?? ""
        sopClass = ds.string(.sopClassUID) ?? ""
        bodyPart = ds.string(.bodyPartExamined) ?? ""
        studyDescription = ds.string(.studyDescription) ?? ""
        protocolName = ds.string(Tag(0x0018, 0x1030)) ?? ""
        seriesDescription = ds.string(.seriesDescription) ?? ""
        regionCodes = (ds.sequence(Tag(0x0008, 0x2218)) ?? []).prefix(8).compactMap { item in
            guard let value = item.string(Tag(0x0008, 0x0100)), let scheme = item.string(Tag(0x0008, 0x0102)) else { return nil }
            return AnatomicCode(scheme: scheme, value: value, meaning: item.string(Tag(0x0008, 0x0104)) ?? "")
        }
    }

    /// Combines the instances' headers into the study's (first non-empty value wins; lists unique, in order).
    public static func study(_ instances: [InstanceDescriptors]) -> StudyDescriptors {
        func first(_ field: KeyPath<InstanceDescriptors, String>) -> String { instances.lazy.map { $0[keyPath: field] }.first { !$0.isEmpty } ?? "" }
        func unique(_ field: KeyPath<InstanceDescriptors, String>) -> [String] {
            var seen = Set<String>()
            return instances.map { $0[keyPath: field] }.filter { !$0.isEmpty && seen.insert($0).inserted }
        }
        var codes: [AnatomicCode] = []
        for code in instances.flatMap(\.regionCodes) where !codes.contains(code) { codes.append(code) }
        return StudyDescriptors(modality: first(\.modality), modalitiesInStudy: unique(\.modality), sopClassUIDs: unique(\.sopClass),
                                bodyPartExamined: first(\.bodyPart), studyDescription: first(\.studyDescription), protocolName: first(\.protocolName),
                                seriesDescriptions: unique(\.seriesDescription), anatomicRegionCodes: Array(codes.prefix(16)))
    }
}

/// What an instance task leaves for its study task: a screening slice, or why there is none.
/// Stored as the task's result: one JSON line (`{"outcome":…}`), then, for a slice, its pixels.
public enum InstanceTaskResult: Sendable, Equatable {
    /// A greyscale slice in HU for the screeners.
    case slice(InstanceResult)
    /// An image an expert reads but the screeners do not (colour, multi-frame): `reason` says
    /// which; colour images carry a PNG thumbnail for the worklist.
    case unscreened(reason: String, series: String, descriptors: InstanceDescriptors?, thumbnail: [UInt8]?)
    /// Not an image (SR, KO, RT plan, ...): listed with the study.
    case nonImage(kind: String, descriptors: InstanceDescriptors?)
    /// Could not be read (an error code; never patient data).
    case failed(code: String)

    /// The outcome recorded for the instance.
    public var outcome: InstanceOutcome {
        switch self {
        case .slice, .unscreened: .image
        case .nonImage(let kind, _): .nonImage(kind: kind)
        case .failed(let code): .failed(code: code)
        }
    }

    /// The instance's header facts for routing (nil for an unreadable one).
    public var descriptors: InstanceDescriptors? {
        switch self {
        case .slice(let result): result.header.descriptors
        case .unscreened(_, _, let d, _), .nonImage(_, let d): d
        case .failed: nil
        }
    }

    /// Header line of a result without pixels.
    struct Line: Codable {
        var outcome: String?
        var reason: String?
        var series: String?
        var kind: String?
        var code: String?
        var descriptors: InstanceDescriptors?
    }

    public func encoded() throws -> [UInt8] {
        let line: Line
        switch self {
        case .slice(let result): return try result.encoded()
        case .unscreened(let reason, let series, let d, let thumbnail):
            // The thumbnail's bytes follow the header line.
            return Array(try JSONEncoder().encode(Line(outcome: "unscreened", reason: Self.safe(reason), series: series, descriptors: d))) + [0x0A] + (thumbnail ?? [])
        case .nonImage(let kind, let d): line = Line(outcome: "nonimage", kind: Self.safe(kind), descriptors: d)
        case .failed(let code): line = Line(outcome: "failed", code: Self.safe(code))
        }
        return Array(try JSONEncoder().encode(line)) + [0x0A]
    }

    public static func decode(_ bytes: [UInt8]) throws -> InstanceTaskResult {
        guard let newline = bytes.firstIndex(of: 0x0A) else { throw WorkerError(code: "worker.badResult", message: "instance result has no header") }
        let line = try JSONDecoder().decode(Line.self, from: Data(bytes[..<newline]))
        switch line.outcome {
        case nil: return .slice(try InstanceResult.decode(bytes))
        case "unscreened":
            let rest = bytes[(newline + 1)...]
            return .unscreened(reason: line.reason ?? "", series: line.series ?? "", descriptors: line.descriptors, thumbnail: rest.isEmpty ? nil : Array(rest))
        case "nonimage": return .nonImage(kind: line.kind ?? "", descriptors: line.descriptors)
        case "failed": return .failed(code: line.code ?? "worker.failed")
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
        public var descriptors: InstanceDescriptors?
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
        #if _endian(little)
        hu.withUnsafeBytes { out.append(contentsOf: $0) }
        #else
        out.reserveCapacity(out.count + hu.count * 2)
        for v in hu { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        #endif
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
        let hu = [Int16](unsafeUninitializedCapacity: count) { out, initialized in
            body.withUnsafeBytes { raw in
                for k in 0..<count { out[k] = Int16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * k, as: Int16.self)) }
            }
            initialized = count
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
        let width = options.targetWidth ?? slice.columns, height = options.targetHeight ?? slice.rows
        let hu: [Int16]
        if let direct = HUSlice.direct(slice, width: width, height: height) {
            hu = direct
        } else {
            var pre = SeriesPreprocessor(options: options, info: info, expectedSlices: 1)
            try pre.add(slice)
            let voxels = try pre.finish().volume.voxels
            hu = [Int16](unsafeUninitializedCapacity: voxels.count) { out, count in
                voxels.withUnsafeBufferPointer { v in
                    for k in 0..<v.count { out[k] = HUSlice.rounded(v[k]) }
                }
                count = voxels.count
            }
        }
        let header = Header(columns: width, rows: height, series: info.seriesInstanceUID ?? "",
                            modality: info.modality ?? "", bodyPart: info.bodyPart ?? "", position: slice.header.imagePosition,
                            orientation: slice.header.imageOrientation, instanceNumber: slice.header.instanceNumber,
                            pixelSpacing: spacing, sliceThickness: slice.header.sliceThickness, truncated: slice.truncated,
                            sourceColumns: slice.columns, sourceRows: slice.rows, descriptors: InstanceDescriptors(dataSet: file.dataSet))
        return InstanceResult(header: header, hu: hu)
    }
}
