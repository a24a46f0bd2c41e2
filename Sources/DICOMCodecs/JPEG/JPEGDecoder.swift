/// Decodes one JPEG codestream (T.81: Huffman sequential DCT 8/12-bit and Huffman lossless)
/// into a frame buffer laid out as `FrameDescriptor` says. One instance per frame.
struct JPEGDecoder: ~Copyable {
    let base: UnsafePointer<UInt8>
    let count: Int
    let descriptor: FrameDescriptor
    let output: UnsafeMutableRawPointer

    var frame: JPEGFrame?
    /// Quantisation tables in natural (row-major) order.
    var quantTables: [[Int32]?] = [nil, nil, nil, nil]
    /// Huffman table definitions: 0-3 DC/lossless, 4-7 AC (counts of lengths 1-16, symbols).
    var huffmanSpecs: [(counts: [Int], symbols: [UInt8])?] = Array(repeating: nil, count: 8)
    var restartInterval = 0
    var sawJFIF = false
    var heightFromDNL = false
    /// Sample planes of a DCT frame, one per component (released by `deinit`).
    var planes: [JPEGPlane] = []

    init(base: UnsafePointer<UInt8>, count: Int, descriptor: FrameDescriptor, output: UnsafeMutableRawPointer) {
        self.base = base
        self.count = count
        self.descriptor = descriptor
        self.output = output
    }

    deinit {
        for plane in planes { plane.samples.deallocate() }
    }

    /// Walks the markers and decodes every scan; returns the frame once complete.
    mutating func decode() throws(CodecError) -> JPEGFrame {
        guard count >= 4, base[0] == 0xFF, base[1] == JPEGMarker.soi else {
            throw CodecError(.corrupt, "stream does not start with SOI (FFD8)")
        }
        var pos = 2
        markers: while true {
            guard pos < count else { break }
            guard base[pos] == 0xFF else {
                throw CodecError(.corrupt, "expected a marker at offset \(pos), found byte \(base[pos])")
            }
            while pos < count && base[pos] == 0xFF { pos += 1 }
            guard pos < count else { break }
            let marker = base[pos]
            let markerOffset = pos - 1
            pos += 1
            switch marker {
            case JPEGMarker.eoi:
                break markers
            case JPEGMarker.soi:
                throw CodecError(.corrupt, "second SOI at offset \(markerOffset)")
            case JPEGMarker.rst0...JPEGMarker.rst7, 0x01:
                continue // stray restart or TEM marker: no segment
            case 0x00:
                throw CodecError(.corrupt, "stuffed 0xFF00 outside entropy-coded data at offset \(markerOffset)")
            default:
                break
            }
            guard pos + 2 <= count else {
                throw CodecError(.corrupt, "segment \(JPEGMarker.name(marker)) at offset \(markerOffset) has no length")
            }
            let length = Int(base[pos]) << 8 | Int(base[pos + 1])
            guard length >= 2, pos + length <= count else {
                throw CodecError(.corrupt, "segment \(JPEGMarker.name(marker)) at offset \(markerOffset) declares \(length) bytes, \(count - pos) remain")
            }
            var segment = JPEGSegmentReader(base: base, offset: pos + 2, end: pos + length, marker: marker)
            pos += length
            switch marker {
            case JPEGMarker.sof0, JPEGMarker.sof1, JPEGMarker.sof3:
                try readFrame(&segment, process: marker == JPEGMarker.sof3 ? .lossless : .sequential, offset: markerOffset)
            case 0xC2:
                throw CodecError(.unsupported, "progressive DCT (SOF2) is not supported")
            case 0xC5, 0xC6, 0xC7, JPEGMarker.dhp, JPEGMarker.exp:
                throw CodecError(.unsupported, "hierarchical JPEG (\(JPEGMarker.name(marker))) is not supported")
            case 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, JPEGMarker.dac:
                throw CodecError(.unsupported, "arithmetic coding (\(JPEGMarker.name(marker))) is not supported")
            case 0xC8:
                throw CodecError(.unsupported, "JPEG extension frame (FFC8) is not supported")
            case JPEGMarker.dht:
                try readHuffmanTables(&segment)
            case JPEGMarker.dqt:
                try readQuantTables(&segment)
            case JPEGMarker.dri:
                guard segment.remaining == 2 else {
                    throw CodecError(.corrupt, "DRI at offset \(markerOffset) has length \(length), expected 4")
                }
                restartInterval = try segment.u16()
            case JPEGMarker.sos:
                let scan = try readScan(&segment, offset: markerOffset)
                pos = try decodeScan(scan, dataStart: pos)
            case JPEGMarker.dnl:
                try readDNL(&segment, offset: markerOffset)
            case JPEGMarker.app0:
                if length >= 7, base[segment.offset] == 0x4A, base[segment.offset + 1] == 0x46,
                   base[segment.offset + 2] == 0x49, base[segment.offset + 3] == 0x46 {
                    sawJFIF = true // "JFIF"
                }
            case 0xE1...JPEGMarker.app15, JPEGMarker.com, 0xF0...0xFD:
                break // application data, comments, JPEG extensions: skipped
            default:
                throw CodecError(.corrupt, "unknown marker \(JPEGMarker.name(marker)) at offset \(markerOffset)")
            }
        }
        guard let frame else { throw CodecError(.corrupt, "stream has no frame header (SOF)") }
        for (i, component) in frame.components.enumerated() where !component.coded {
            throw CodecError(.corrupt, "component \(i) (id \(component.id)) is in no scan")
        }
        return frame
    }

    // MARK: Segments

    private mutating func readFrame(_ s: inout JPEGSegmentReader, process: JPEGProcess, offset: Int) throws(CodecError) {
        guard frame == nil else { throw CodecError(.corrupt, "second frame header at offset \(offset)") }
        let precision = try s.u8()
        var height = try s.u16()
        let width = try s.u16()
        let componentCount = try s.u8()
        guard s.remaining == componentCount * 3 else {
            throw CodecError(.corrupt, "frame header at offset \(offset) has \(s.remaining) bytes for \(componentCount) components")
        }
        switch process {
        case .sequential:
            guard precision == 8 || precision == 12 else {
                throw CodecError(.corrupt, "DCT frame precision \(precision) (8 or 12 allowed)")
            }
        case .lossless:
            guard (2...16).contains(precision) else {
                throw CodecError(.corrupt, "lossless frame precision \(precision) (2-16 allowed)")
            }
        }
        guard (1...4).contains(componentCount) else {
            throw CodecError(.unsupported, "frame has \(componentCount) components (1-4 supported)")
        }
        guard width > 0 else { throw CodecError(.corrupt, "frame width is 0") }
        if height == 0 {
            // The height comes later in a DNL segment; it must then equal the data set's Rows.
            heightFromDNL = true
            height = descriptor.rows
        }
        // The data set decides the output size: a stream that disagrees is refused before decoding.
        guard width == descriptor.columns, height == descriptor.rows else {
            throw CodecError(.mismatch, "stream is \(width)×\(height), data set says \(descriptor.columns)×\(descriptor.rows)")
        }
        guard componentCount == descriptor.samplesPerPixel else {
            throw CodecError(.mismatch, "stream has \(componentCount) components, data set says \(descriptor.samplesPerPixel) samples per pixel")
        }
        guard descriptor.bitsAllocated == 8 || descriptor.bitsAllocated == 16 else {
            throw CodecError(.mismatch, "JPEG decodes to 8 or 16 bits allocated, data set says \(descriptor.bitsAllocated)")
        }
        guard precision <= descriptor.bitsAllocated else {
            throw CodecError(.mismatch, "stream precision \(precision) does not fit \(descriptor.bitsAllocated) bits allocated")
        }
        var components: [JPEGFrameComponent] = []
        var hMax = 1, vMax = 1
        for _ in 0..<componentCount {
            let id = UInt8(try s.u8())
            let sampling = try s.u8()
            let tq = try s.u8()
            let h = sampling >> 4, v = sampling & 15
            guard (1...4).contains(h), (1...4).contains(v) else {
                throw CodecError(.corrupt, "component \(id) has sampling factors \(h)×\(v)")
            }
            guard tq < 4 else { throw CodecError(.corrupt, "component \(id) uses quantisation table \(tq)") }
            guard !components.contains(where: { $0.id == id }) else {
                throw CodecError(.corrupt, "component id \(id) appears twice in the frame header")
            }
            hMax = max(hMax, h)
            vMax = max(vMax, v)
            components.append(JPEGFrameComponent(id: id, h: h, v: v, quantTable: tq))
        }
        for i in components.indices {
            guard hMax % components[i].h == 0, vMax % components[i].v == 0 else {
                throw CodecError(.unsupported, "component sampling \(components[i].h)×\(components[i].v) is not an integer fraction of \(hMax)×\(vMax)")
            }
            components[i].width = ceilDiv(width * components[i].h, hMax)
            components[i].height = ceilDiv(height * components[i].v, vMax)
        }
        var f = JPEGFrame(process: process, precision: precision, width: width, height: height, components: components, hMax: hMax, vMax: vMax)
        switch process {
        case .sequential:
            f.mcusAcross = ceilDiv(width, 8 * hMax)
            f.mcusDown = ceilDiv(height, 8 * vMax)
            for c in components {
                planes.append(JPEGPlane(width: f.mcusAcross * c.h * 8, height: f.mcusDown * c.v * 8))
            }
        case .lossless:
            if components.contains(where: { $0.h != components[0].h || $0.v != components[0].v }) {
                throw CodecError(.unsupported, "lossless frame with subsampled components")
            }
            f.mcusAcross = width
            f.mcusDown = height
        }
        frame = f
    }

    private mutating func readHuffmanTables(_ s: inout JPEGSegmentReader) throws(CodecError) {
        while s.remaining > 0 {
            let tcth = try s.u8()
            let tableClass = tcth >> 4, id = tcth & 15
            guard tableClass <= 1, id <= 3 else {
                throw CodecError(.corrupt, "DHT defines table class \(tableClass) id \(id)")
            }
            var counts: [Int] = []
            var total = 0
            for _ in 0..<16 {
                let n = try s.u8()
                counts.append(n)
                total += n
            }
            guard total <= 256, total <= s.remaining else {
                throw CodecError(.corrupt, "DHT table \(tableClass)/\(id) declares \(total) codes, \(s.remaining) bytes remain")
            }
            var symbols: [UInt8] = []
            symbols.reserveCapacity(total)
            for _ in 0..<total { symbols.append(UInt8(try s.u8())) }
            huffmanSpecs[tableClass * 4 + id] = (counts, symbols)
        }
    }

    private mutating func readQuantTables(_ s: inout JPEGSegmentReader) throws(CodecError) {
        while s.remaining > 0 {
            let pqtq = try s.u8()
            let wide = pqtq >> 4, id = pqtq & 15
            guard wide <= 1, id <= 3 else {
                throw CodecError(.corrupt, "DQT defines table precision \(wide) id \(id)")
            }
            var table = [Int32](repeating: 0, count: 64)
            for k in 0..<64 {
                table[JPEGZigZag.natural[k]] = Int32(wide == 1 ? try s.u16() : try s.u8())
            }
            quantTables[id] = table
        }
    }

    private mutating func readDNL(_ s: inout JPEGSegmentReader, offset: Int) throws(CodecError) {
        guard s.remaining == 2 else { throw CodecError(.corrupt, "DNL at offset \(offset) has a bad length") }
        let lines = try s.u16()
        guard heightFromDNL else { return } // DNL without a zero height in SOF: redundant
        guard lines == descriptor.rows else {
            throw CodecError(.mismatch, "DNL gives \(lines) lines, data set says \(descriptor.rows) rows")
        }
    }

    private mutating func readScan(_ s: inout JPEGSegmentReader, offset: Int) throws(CodecError) -> JPEGScan {
        guard let frame else { throw CodecError(.corrupt, "scan at offset \(offset) before the frame header") }
        let n = try s.u8()
        guard (1...4).contains(n), s.remaining == n * 2 + 3 else {
            throw CodecError(.corrupt, "scan header at offset \(offset) has \(n) components and \(s.remaining) bytes")
        }
        var components: [JPEGScanComponent] = []
        for _ in 0..<n {
            let id = UInt8(try s.u8())
            let tables = try s.u8()
            guard let index = frame.components.firstIndex(where: { $0.id == id }) else {
                throw CodecError(.corrupt, "scan at offset \(offset) names component id \(id), not in the frame")
            }
            guard !components.contains(where: { $0.index == index }) else {
                throw CodecError(.corrupt, "scan at offset \(offset) names component id \(id) twice")
            }
            if frame.components[index].coded {
                throw CodecError(.corrupt, "component id \(id) coded in a second scan at offset \(offset)")
            }
            let dc = tables >> 4, ac = tables & 15
            guard dc <= 3, ac <= 3 else { throw CodecError(.corrupt, "scan at offset \(offset) uses Huffman tables \(dc)/\(ac)") }
            components.append(JPEGScanComponent(index: index, dcTable: dc, acTable: ac))
        }
        let ss = try s.u8(), se = try s.u8(), a = try s.u8()
        let scan = JPEGScan(components: components, spectralStart: ss, spectralEnd: se, approximationHigh: a >> 4, approximationLow: a & 15)
        switch frame.process {
        case .sequential:
            guard ss == 0, se == 63, a == 0 else {
                throw CodecError(.corrupt, "sequential scan at offset \(offset) has Ss=\(ss) Se=\(se) Ah/Al=\(a)")
            }
            let blocks = components.reduce(0) { $0 + frame.components[$1.index].h * frame.components[$1.index].v }
            guard n == 1 || blocks <= 10 else {
                throw CodecError(.corrupt, "scan at offset \(offset) has \(blocks) blocks per MCU (at most 10)")
            }
        case .lossless:
            guard (1...7).contains(ss), se == 0, scan.approximationHigh == 0, scan.approximationLow < frame.precision else {
                throw CodecError(.corrupt, "lossless scan at offset \(offset) has predictor \(ss), Se=\(se), Ah=\(scan.approximationHigh), Pt=\(scan.approximationLow)")
            }
            if n > 1 && frame.components.contains(where: { $0.h != 1 || $0.v != 1 }) {
                throw CodecError(.unsupported, "interleaved lossless scan with sampling factors other than 1×1")
            }
        }
        return scan
    }

    /// The table a scan names, built for its use; throws when the stream never defined it.
    func huffmanTable(tableClass: Int, id: Int, use: JPEGHuffmanTable.Use) throws(CodecError) -> JPEGHuffmanTable {
        let name = tableClass == 0 ? "DC\(id)" : "AC\(id)"
        guard let spec = huffmanSpecs[tableClass * 4 + id] else {
            throw CodecError(.corrupt, "scan uses Huffman table \(name), which is not defined")
        }
        return try JPEGHuffmanTable(counts: spec.counts, symbols: spec.symbols, use: use, tableName: name)
    }

    private mutating func decodeScan(_ scan: JPEGScan, dataStart: Int) throws(CodecError) -> Int {
        guard let f = frame else { throw CodecError(.corrupt, "scan before the frame header") }
        let end: Int
        switch f.process {
        case .lossless: end = try decodeLosslessScan(scan, frame: f, dataStart: dataStart)
        case .sequential: end = try decodeSequentialScan(scan, frame: f, dataStart: dataStart)
        }
        for c in scan.components { frame!.components[c.index].coded = true }
        return end
    }

    // MARK: Entropy-coded segments

    /// Where the marker after an entropy-coded segment starts (searching from `from`, skipping
    /// bytes a decoder left unread); `count` when none follows.
    func nextMarker(from: Int) -> Int {
        var i = from
        while i + 1 < count {
            if base[i] == 0xFF {
                let next = base[i + 1]
                if next != 0 && next != 0xFF && !(JPEGMarker.rst0...JPEGMarker.rst7).contains(next) { return i }
                if next == 0xFF { i += 1; continue }
                i += 2
                continue
            }
            i += 1
        }
        return count
    }

    /// At the end of a restart interval: checks that the interval's data was complete,
    /// expects RSTn (n = `index` mod 8) and positions the reader after it.
    func processRestart(_ reader: inout JPEGBitReader, index: Int) throws(CodecError) {
        if reader.overran {
            throw CodecError(.corrupt, "entropy-coded data ends before restart interval \(index) is complete (offset \(reader.position))")
        }
        var i = reader.position
        // Bytes the interval did not use (there should be none) are skipped up to the marker.
        while i < count && base[i] != 0xFF { i += 1 }
        while i + 1 < count && base[i + 1] == 0xFF { i += 1 }
        let expected = JPEGMarker.rst0 + UInt8(index & 7)
        guard i + 1 < count, base[i + 1] == expected else {
            throw CodecError(.corrupt, "expected restart marker \(JPEGMarker.name(expected)) near offset \(i)")
        }
        reader.restart(at: i + 2)
    }

    /// After the last MCU of a scan: the data must not have run short.
    func finishScan(_ reader: JPEGBitReader) throws(CodecError) -> Int {
        if reader.overran {
            throw CodecError(.corrupt, "entropy-coded data of a scan ends early (offset \(reader.position))")
        }
        return nextMarker(from: reader.position)
    }
}

/// Zig-zag order (T.81 Figure A.6): `natural[k]` is the row-major index of the k-th coefficient.
enum JPEGZigZag {
    static let natural: [Int] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
        12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
        35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
        // Extra entries so a corrupt run that overshoots index 63 lands in a scratch slot.
        64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64,
    ]
}

/// One component's decoded samples of a DCT frame, before upsampling: level-shifted IDCT
/// output with `JPEGIDCT.fractionBits` fractional bits (rounded once, after upsampling).
struct JPEGPlane {
    let width: Int
    let height: Int
    let samples: UnsafeMutablePointer<Int32>

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        samples = .allocate(capacity: max(1, width * height))
        samples.initialize(repeating: 0, count: max(1, width * height))
    }
}
