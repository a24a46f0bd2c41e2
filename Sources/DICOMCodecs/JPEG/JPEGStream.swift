/// Marker codes of ITU T.81 Table B.1 that the decoder handles by name.
enum JPEGMarker {
    static let sof0: UInt8 = 0xC0, sof1: UInt8 = 0xC1, sof3: UInt8 = 0xC3
    static let dht: UInt8 = 0xC4, dac: UInt8 = 0xCC
    static let rst0: UInt8 = 0xD0, rst7: UInt8 = 0xD7
    static let soi: UInt8 = 0xD8, eoi: UInt8 = 0xD9, sos: UInt8 = 0xDA, dqt: UInt8 = 0xDB
    static let dnl: UInt8 = 0xDC, dri: UInt8 = 0xDD, dhp: UInt8 = 0xDE, exp: UInt8 = 0xDF
    static let app0: UInt8 = 0xE0, app15: UInt8 = 0xEF, com: UInt8 = 0xFE

    static func name(_ m: UInt8) -> String {
        "FF" + String(m, radix: 16, uppercase: true)
    }
}

enum JPEGProcess {
    /// SOF0 / SOF1: Huffman sequential DCT, 8 or 12 bits.
    case sequential
    /// SOF3: Huffman lossless (process 14).
    case lossless
}

struct JPEGFrameComponent {
    var id: UInt8
    var h: Int
    var v: Int
    var quantTable: Int
    /// Samples across and down (T.81 A.1.1: ceil(X·h/hmax), ceil(Y·v/vmax)).
    var width = 0
    var height = 0
    var coded = false
}

struct JPEGFrame {
    var process: JPEGProcess
    var precision: Int
    var width: Int
    var height: Int
    var components: [JPEGFrameComponent]
    var hMax = 1
    var vMax = 1
    /// MCUs of an interleaved scan (data units of 8×8 for DCT, samples for lossless).
    var mcusAcross = 0
    var mcusDown = 0
}

struct JPEGScanComponent {
    /// Index into the frame's components.
    var index: Int
    var dcTable: Int
    var acTable: Int
}

struct JPEGScan {
    var components: [JPEGScanComponent]
    /// Ss (the predictor for lossless), Se, Ah, Al (the point transform for lossless).
    var spectralStart: Int
    var spectralEnd: Int
    var approximationHigh: Int
    var approximationLow: Int
}

@inline(__always) func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }

/// Bounds-checked big-endian reading of marker segments.
struct JPEGSegmentReader {
    let base: UnsafePointer<UInt8>
    var offset: Int
    let end: Int
    let marker: UInt8

    mutating func u8() throws(CodecError) -> Int {
        guard offset < end else {
            throw CodecError(.corrupt, "segment \(JPEGMarker.name(marker)) ends early at offset \(offset)")
        }
        defer { offset += 1 }
        return Int(base[offset])
    }

    mutating func u16() throws(CodecError) -> Int {
        let hi = try u8()
        return hi << 8 | (try u8())
    }

    var remaining: Int { end - offset }
}
