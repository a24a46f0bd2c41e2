/// The frame header of a JPEG (ISO/IEC 10918-1) or JPEG-LS (ISO/IEC 14495-1) stream, read
/// before any decoding so a stream that disagrees with the data set is refused before a
/// library allocates anything for it.
public struct JPEGStreamHeader: Sendable, Equatable {
    /// The start-of-frame marker's second byte: 0xC0 baseline, 0xC1 extended, 0xC3 lossless,
    /// 0xF7 JPEG-LS, ...
    public var frameMarker: UInt8
    public var precision: Int
    /// Number of lines; 0 means it comes later in a DNL segment.
    public var height: Int
    public var width: Int
    public var componentIDs: [UInt8]
    /// Horizontal and vertical sampling factors of each component.
    public var sampling: [(h: Int, v: Int)]
    /// An APP0 segment starting "JFIF" precedes the frame header.
    public var hasJFIF: Bool
    /// The Adobe APP14 transform flag (0 none/RGB, 1 YCbCr, 2 YCCK), when present.
    public var adobeTransform: Int?

    public var components: Int { componentIDs.count }

    public static func == (a: JPEGStreamHeader, b: JPEGStreamHeader) -> Bool {
        a.frameMarker == b.frameMarker && a.precision == b.precision && a.height == b.height && a.width == b.width
            && a.componentIDs == b.componentIDs && a.hasJFIF == b.hasJFIF && a.adobeTransform == b.adobeTransform
            && a.sampling.map { [$0.h, $0.v] } == b.sampling.map { [$0.h, $0.v] }
    }

    /// Start-of-frame markers: SOF0–SOF3, SOF5–SOF7, SOF9–SOF11, SOF13–SOF15 and JPEG-LS SOF55.
    static func isFrameMarker(_ m: UInt8) -> Bool {
        switch m {
        case 0xC0...0xC3, 0xC5...0xC7, 0xC9...0xCB, 0xCD...0xCF, 0xF7: return true
        default: return false
        }
    }

    /// Reads markers from SOI up to and including the frame header.
    public static func parse(_ data: UnsafeRawBufferPointer) throws(CodecError) -> JPEGStreamHeader {
        let n = data.count
        guard n >= 4, data[0] == 0xFF, data[1] == 0xD8 else {
            throw CodecError(.corrupt, "stream does not start with a JPEG SOI marker (\(n) bytes)")
        }
        var pos = 2
        var jfif = false
        var adobe: Int?
        while true {
            // Markers may be preceded by any number of 0xFF fill bytes.
            guard pos < n, data[pos] == 0xFF else {
                throw CodecError(.corrupt, "expected a JPEG marker at offset \(pos) before the frame header")
            }
            while pos < n && data[pos] == 0xFF { pos += 1 }
            guard pos < n else { throw CodecError(.corrupt, "stream ends at offset \(pos) before the frame header") }
            let marker = data[pos]
            pos += 1
            if marker == 0xD9 || marker == 0xDA || marker == 0x00 || (0xD0...0xD8).contains(marker) || marker == 0x01 {
                throw CodecError(.corrupt, "marker 0xFF\(hex(marker)) at offset \(pos - 2) before any frame header")
            }
            guard pos + 2 <= n else { throw CodecError(.corrupt, "segment length of marker 0xFF\(hex(marker)) at offset \(pos - 2) is cut off") }
            let length = Int(data[pos]) << 8 | Int(data[pos + 1])
            guard length >= 2, pos + length <= n else {
                throw CodecError(.corrupt, "marker 0xFF\(hex(marker)) at offset \(pos - 2) declares length \(length), \(n - pos) bytes remain")
            }
            let body = pos + 2
            let bodyLength = length - 2
            if marker == 0xE0, bodyLength >= 5, data[body] == 0x4A, data[body + 1] == 0x46, data[body + 2] == 0x49, data[body + 3] == 0x46 {
                jfif = true
            }
            if marker == 0xEE, bodyLength >= 12, data[body] == 0x41, data[body + 1] == 0x64, data[body + 2] == 0x6F,
               data[body + 3] == 0x62, data[body + 4] == 0x65 {
                adobe = Int(data[body + 11])
            }
            if isFrameMarker(marker) {
                guard bodyLength >= 6 else { throw CodecError(.corrupt, "frame header at offset \(pos - 2) is \(length) bytes") }
                let components = Int(data[body + 5])
                guard components >= 1, bodyLength == 6 + 3 * components else {
                    throw CodecError(.corrupt, "frame header at offset \(pos - 2) declares \(components) components in \(length) bytes")
                }
                var ids: [UInt8] = []
                var sampling: [(h: Int, v: Int)] = []
                ids.reserveCapacity(components)
                for c in 0..<components {
                    ids.append(data[body + 6 + 3 * c])
                    let hv = data[body + 7 + 3 * c]
                    sampling.append((h: Int(hv >> 4), v: Int(hv & 0x0F)))
                }
                return JPEGStreamHeader(frameMarker: marker, precision: Int(data[body]),
                                        height: Int(data[body + 1]) << 8 | Int(data[body + 2]),
                                        width: Int(data[body + 3]) << 8 | Int(data[body + 4]),
                                        componentIDs: ids, sampling: sampling, hasJFIF: jfif, adobeTransform: adobe)
            }
            pos += length
        }
    }

    /// Refuses a frame header whose size or component count differs from the data set's.
    func check(against d: FrameDescriptor) throws(CodecError) {
        guard width == d.columns, height == d.rows else {
            throw CodecError(.mismatch, "stream is \(width) x \(height) (columns x rows), data set says \(d.columns) x \(d.rows)")
        }
        guard components == d.samplesPerPixel else {
            throw CodecError(.mismatch, "stream has \(components) components, data set says \(d.samplesPerPixel) samples per pixel")
        }
    }
}

/// The image and tile size (SIZ segment) of a JPEG 2000 codestream, possibly inside a JP2
/// file, read before OpenJPEG sees the stream.
public struct J2KStreamHeader: Sendable, Equatable {
    public struct Component: Sendable, Equatable {
        public var precision: Int
        public var isSigned: Bool
        public var dx: Int
        public var dy: Int
    }

    /// The stream is a JP2 file (boxes around the codestream), not a raw codestream.
    public var isJP2: Bool
    /// Byte offset of the SOC marker.
    public var codestreamOffset: Int
    public var width: Int
    public var height: Int
    public var tileWidth: Int
    public var tileHeight: Int
    public var tiles: Int
    public var components: [Component]
    /// Rsiz bit 14 (0x4000): the codestream uses HTJ2K (ISO/IEC 15444-15) block coding.
    public var isHighThroughput: Bool

    public static func parse(_ data: UnsafeRawBufferPointer) throws(CodecError) -> J2KStreamHeader {
        let n = data.count
        func be32(_ i: Int) -> Int { Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3]) }
        func be16(_ i: Int) -> Int { Int(data[i]) << 8 | Int(data[i + 1]) }
        var offset = 0
        var jp2 = false
        // JP2 signature box: length 12, type 'jP  '.
        if n >= 12, be32(0) == 12, data[4] == 0x6A, data[5] == 0x50, data[6] == 0x20, data[7] == 0x20 {
            jp2 = true
            offset = 12
            var found = false
            while offset + 8 <= n {
                var length = be32(offset)
                var header = 8
                if length == 1 {
                    guard offset + 16 <= n else { break }
                    // 64-bit box length; anything beyond Int range is corrupt.
                    guard be32(offset + 8) == 0 else { throw CodecError(.corrupt, "JP2 box at offset \(offset) is too long") }
                    length = be32(offset + 12)
                    header = 16
                } else if length == 0 {
                    length = n - offset
                }
                let isCodestream = data[offset + 4] == 0x6A && data[offset + 5] == 0x70 && data[offset + 6] == 0x32 && data[offset + 7] == 0x63
                if isCodestream {
                    offset += header
                    found = true
                    break
                }
                guard length >= header, length <= n - offset else {
                    throw CodecError(.corrupt, "JP2 box at offset \(offset) declares length \(length), \(n - offset) bytes remain")
                }
                offset += length
            }
            guard found else { throw CodecError(.corrupt, "JP2 file has no contiguous codestream box") }
        }
        guard offset + 4 <= n, data[offset] == 0xFF, data[offset + 1] == 0x4F else {
            throw CodecError(.corrupt, "no JPEG 2000 SOC marker at offset \(offset)")
        }
        guard data[offset + 2] == 0xFF, data[offset + 3] == 0x51 else {
            throw CodecError(.corrupt, "JPEG 2000 SIZ marker missing after SOC at offset \(offset + 2)")
        }
        let siz = offset + 4
        guard siz + 2 <= n else { throw CodecError(.corrupt, "SIZ segment is cut off") }
        let length = be16(siz)
        guard length >= 41, siz + length <= n else {
            throw CodecError(.corrupt, "SIZ segment declares length \(length), \(n - siz) bytes remain")
        }
        let rsiz = be16(siz + 2)
        let xsiz = be32(siz + 4), ysiz = be32(siz + 8)
        let xo = be32(siz + 12), yo = be32(siz + 16)
        let xt = be32(siz + 20), yt = be32(siz + 24)
        let xto = be32(siz + 28), yto = be32(siz + 32)
        let csiz = be16(siz + 36)
        guard csiz >= 1, length == 38 + 3 * csiz else {
            throw CodecError(.corrupt, "SIZ segment declares \(csiz) components in \(length) bytes")
        }
        guard xsiz > xo, ysiz > yo, xt > 0, yt > 0, xto <= xo, yto <= yo, xto + xt > xo, yto + yt > yo else {
            throw CodecError(.corrupt, "SIZ image/tile geometry is invalid (size \(xsiz) x \(ysiz), origin \(xo),\(yo), tile \(xt) x \(yt))")
        }
        let tilesX = (xsiz - xto + xt - 1) / xt
        let tilesY = (ysiz - yto + yt - 1) / yt
        var comps: [Component] = []
        comps.reserveCapacity(csiz)
        for c in 0..<csiz {
            let s = Int(data[siz + 38 + 3 * c])
            let dx = Int(data[siz + 39 + 3 * c]), dy = Int(data[siz + 40 + 3 * c])
            guard dx >= 1, dy >= 1 else { throw CodecError(.corrupt, "component \(c) has subsampling \(dx) x \(dy)") }
            comps.append(Component(precision: (s & 0x7F) + 1, isSigned: s & 0x80 != 0, dx: dx, dy: dy))
        }
        return J2KStreamHeader(isJP2: jp2, codestreamOffset: offset, width: xsiz - xo, height: ysiz - yo,
                               tileWidth: xt, tileHeight: yt, tiles: tilesX * tilesY, components: comps,
                               isHighThroughput: rsiz & 0x4000 != 0)
    }

    /// Whether any part of the codestream asks for HTJ2K block coding: Rsiz bit 14, a CAP
    /// segment, or the HT code-block style bit (0x40) in a COD or COC segment of the main
    /// header or of any tile-part header (where a decoder picks its block decoder). Every COD
    /// and COC is also checked against the limits of ISO/IEC 15444-1 A.6.1 (at most 32
    /// decomposition levels, code-blocks at most 1024 wide or high and 4096 samples): OpenJPH
    /// sizes its buffers from them unchecked (the fuzzer found a 23 GB allocation). Walks the
    /// marker segments only, never the coded data; a structure it cannot walk is corrupt.
    public func usesHighThroughputCoding(_ data: UnsafeRawBufferPointer) throws(CodecError) -> Bool {
        var usesHT = isHighThroughput
        let n = data.count
        func be16(_ i: Int) -> Int { Int(data[i]) << 8 | Int(data[i + 1]) }
        func be32(_ i: Int) -> Int { Int(data[i]) << 24 | Int(data[i + 1]) << 16 | Int(data[i + 2]) << 8 | Int(data[i + 3]) }
        // Bytes of a component index in COC: 1 below 257 components, else 2.
        let componentBytes = components.count < 257 ? 1 : 2
        /// Levels, code-block exponents and style at `spco` (SPcod / SPcoc).
        func checkCodingStyle(at spco: Int, marker: UInt8, offset: Int) throws(CodecError) {
            let levels = Int(data[spco]), xcb = Int(data[spco + 1]), ycb = Int(data[spco + 2])
            guard levels <= 32, xcb <= 8, ycb <= 8, xcb + ycb <= 8 else {
                throw CodecError(.corrupt, "FF\(hex(marker)) at offset \(offset) declares \(levels) decomposition levels and code-block exponents \(xcb), \(ycb) (at most 32 levels, exponents 8 each and 8 together)")
            }
            if data[spco + 3] & 0x40 != 0 { usesHT = true }
        }
        /// Walks the segments from `start` up to `end` (SOT in the main header, SOD in a
        /// tile-part header); returns that marker's offset, or nil at EOC / the end of the data.
        func scanSegments(from start: Int, until end: UInt8) throws(CodecError) -> Int? {
            var i = start
            while i + 4 <= n {
                guard data[i] == 0xFF else { throw CodecError(.corrupt, "no marker at offset \(i) of the JPEG 2000 header") }
                let marker = data[i + 1]
                if marker == end { return i }
                if marker == 0xD9 { return nil }
                let length = be16(i + 2)
                guard length >= 2, i + 2 + length <= n else {
                    throw CodecError(.corrupt, "marker FF\(hex(marker)) at offset \(i) declares length \(length), \(n - i - 2) bytes remain")
                }
                let segment = i + 4
                switch marker {
                case 0x50: usesHT = true // CAP: Part 15 capabilities
                case 0x52:               // COD: Scod, SGcod (4), SPcod
                    guard length >= 12 else { throw CodecError(.corrupt, "COD at offset \(i) is \(length) bytes long") }
                    try checkCodingStyle(at: segment + 5, marker: marker, offset: i)
                case 0x53:               // COC: Ccoc, Scoc, SPcoc
                    guard length >= 7 + componentBytes else { throw CodecError(.corrupt, "COC at offset \(i) is \(length) bytes long") }
                    try checkCodingStyle(at: segment + componentBytes + 1, marker: marker, offset: i)
                default: break
                }
                i += 2 + length
            }
            return nil
        }
        // Main header: from after SIZ to the first SOT.
        let siz = codestreamOffset + 2
        guard var sot = try scanSegments(from: siz + 2 + be16(siz + 2), until: 0x90) else { return usesHT }
        // Tile-parts: SOT (Lsot 10, Isot, Psot, TPsot, TNsot), their header up to SOD, then Psot bytes from SOT.
        while true {
            guard sot + 12 <= n, data[sot + 1] == 0x90, be16(sot + 2) == 10 else {
                throw CodecError(.corrupt, "tile-part at offset \(sot) has no valid SOT segment")
            }
            let psot = be32(sot + 6)
            guard try scanSegments(from: sot + 12, until: 0x93) != nil else { return usesHT }
            // The last tile-part (Psot 0 runs to EOC), data cut off, or EOC / trailing data next.
            guard psot >= 14, sot + psot + 2 <= n, data[sot + psot] == 0xFF, data[sot + psot + 1] == 0x90 else { return usesHT }
            sot += psot
        }
    }
}

@inline(__always) func hex(_ v: UInt8) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F"]
    return String([digits[Int(v >> 4)], digits[Int(v & 0xF)]])
}
