import DICOMCodecs

/// How a data set is encoded (PS3.5 10 and Annex A).
public struct TransferSyntax: Sendable, Equatable, CustomStringConvertible {
    public let uid: String
    public let name: String
    public let isExplicitVR: Bool
    public let isBigEndian: Bool
    public let isDeflated: Bool
    /// Pixel data is encapsulated (compressed) rather than native.
    public let isEncapsulated: Bool

    public init(uid: String, name: String, explicitVR: Bool = true, bigEndian: Bool = false, deflated: Bool = false, encapsulated: Bool = false) {
        self.uid = uid
        self.name = name
        self.isExplicitVR = explicitVR
        self.isBigEndian = bigEndian
        self.isDeflated = deflated
        self.isEncapsulated = encapsulated
    }

    public var description: String { "\(name) (\(uid))" }

    public static let implicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2", name: "Implicit VR Little Endian", explicitVR: false)
    public static let explicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1", name: "Explicit VR Little Endian")
    public static let deflatedExplicitVRLittleEndian = TransferSyntax(uid: "1.2.840.10008.1.2.1.99", name: "Deflated Explicit VR Little Endian", deflated: true)
    public static let explicitVRBigEndian = TransferSyntax(uid: "1.2.840.10008.1.2.2", name: "Explicit VR Big Endian", bigEndian: true)
    public static let rleLossless = TransferSyntax(uid: "1.2.840.10008.1.2.5", name: "RLE Lossless", encapsulated: true)

    static let encapsulatedNames: [String: String] = [
        "1.2.840.10008.1.2.4.50": "JPEG Baseline (Process 1)",
        "1.2.840.10008.1.2.4.51": "JPEG Extended (Process 2 & 4)",
        "1.2.840.10008.1.2.4.57": "JPEG Lossless, Non-Hierarchical (Process 14)",
        "1.2.840.10008.1.2.4.70": "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])",
        "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81": "JPEG-LS Lossy (Near-Lossless)",
        "1.2.840.10008.1.2.4.90": "JPEG 2000 Image Compression (Lossless Only)",
        "1.2.840.10008.1.2.4.91": "JPEG 2000 Image Compression",
        "1.2.840.10008.1.2.4.92": "JPEG 2000 Part 2 Multi-component (Lossless Only)",
        "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 Multi-component",
        "1.2.840.10008.1.2.4.94": "JPIP Referenced",
        "1.2.840.10008.1.2.4.95": "JPIP Referenced Deflate",
        "1.2.840.10008.1.2.4.100": "MPEG2 Main Profile / Main Level",
        "1.2.840.10008.1.2.4.101": "MPEG2 Main Profile / High Level",
        "1.2.840.10008.1.2.4.102": "MPEG-4 AVC/H.264 High Profile / Level 4.1",
        "1.2.840.10008.1.2.4.103": "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1",
        "1.2.840.10008.1.2.4.104": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video",
        "1.2.840.10008.1.2.4.105": "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video",
        "1.2.840.10008.1.2.4.106": "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2",
        "1.2.840.10008.1.2.4.107": "HEVC/H.265 Main Profile / Level 5.1",
        "1.2.840.10008.1.2.4.108": "HEVC/H.265 Main 10 Profile / Level 5.1",
        "1.2.840.10008.1.2.4.201": "High-Throughput JPEG 2000 Image Compression (Lossless Only)",
        "1.2.840.10008.1.2.4.202": "High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)",
        "1.2.840.10008.1.2.4.203": "High-Throughput JPEG 2000 Image Compression",
    ]

    /// The syntax for a UID. Unknown UIDs are assumed to be Explicit VR Little Endian with
    /// encapsulated pixel data (every registered compressed syntax is), so headers still read.
    public static func forUID(_ uid: String) -> TransferSyntax {
        switch uid {
        case implicitVRLittleEndian.uid: return .implicitVRLittleEndian
        case explicitVRLittleEndian.uid: return .explicitVRLittleEndian
        case deflatedExplicitVRLittleEndian.uid: return .deflatedExplicitVRLittleEndian
        case explicitVRBigEndian.uid: return .explicitVRBigEndian
        case rleLossless.uid: return .rleLossless
        default:
            return TransferSyntax(uid: uid, name: encapsulatedNames[uid] ?? "Unknown transfer syntax", encapsulated: true)
        }
    }
}

extension TransferSyntax {
    /// Every syntax the grid can take in and decode: native, deflated, RLE, and each JPEG,
    /// JPEG-LS, JPEG 2000 and HTJ2K syntax with a codec. Receivers (C-STORE, the edge) offer these.
    public static var receivableUIDs: Set<String> {
        let native: Set<String> = [implicitVRLittleEndian.uid, explicitVRLittleEndian.uid, deflatedExplicitVRLittleEndian.uid,
                                   explicitVRBigEndian.uid, rleLossless.uid]
        let compressed = ["50", "51", "57", "70", "80", "81", "90", "91", "92", "93", "201", "202", "203"]
            .map { "1.2.840.10008.1.2.4." + $0 }.filter { CodecRegistry.standard.canDecode($0) }
        return native.union(compressed)
    }
}
