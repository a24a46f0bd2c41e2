// Sequential DCT scans (processes 1, 2, 4 with Huffman coding): coefficient decoding,
// dequantisation and an accurate floating-point IDCT into per-component planes; after the
// last scan the planes are upsampled, rounded once and written out.

/// The 8×8 inverse DCT (T.81 A.3.3) as the reference decoder computes it: the
/// Loeffler–Ligtenberg–Moschytz factorisation in fixed point with 9 fractional bits for
/// the multipliers, coefficients pre-scaled by `JPEGIDCT.fractionBits` so the output keeps
/// that many fractional bits for upsampling; rounding happens once at the very end.
/// Matching its arithmetic keeps 8-bit colour (where YCbCr → RGB amplifies chroma errors)
/// within one grey level of the reference instead of three.
enum JPEGIDCT {
    /// Fractional bits of the reconstructed samples (the reference's colour-transform precision).
    static let fractionBits = 4
    private static func fix(_ x: Double) -> Int { Int(x * 512 + 0.5) }
    private static let c0541 = fix(0.541196100), c1847 = fix(1.847759065), c0765 = fix(0.765366865)
    private static let c1175 = fix(1.175875602), c0298 = fix(0.298631336), c2053 = fix(2.053119869)
    private static let c3072 = fix(3.072711026), c1501 = fix(1.501321110), c0899 = fix(0.899976223)
    private static let c2562 = fix(2.562915447), c1961 = fix(1.961570560), c0390 = fix(0.390180644)

    /// One 8-point pass: reads `input[k * inStride]`, writes `output[k * outStride]` rounded by `shift` bits.
    @inline(__always)
    private static func pass(_ input: UnsafePointer<Int>, _ inStride: Int, _ output: UnsafeMutablePointer<Int>, _ outStride: Int, shift: Int) {
        let round = 1 << (shift - 1)
        let z2 = input[2 * inStride], z3 = input[6 * inStride]
        let z1 = (z2 + z3) * c0541
        let e2 = z1 - z3 * c1847
        let e3 = z1 + z2 * c0765
        let d0 = input[0], d4 = input[4 * inStride]
        let e0 = (d0 + d4) << 9, e1 = (d0 - d4) << 9
        let t10 = e0 + e3, t13 = e0 - e3, t11 = e1 + e2, t12 = e1 - e2
        let o0 = input[7 * inStride], o1 = input[5 * inStride], o2 = input[3 * inStride], o3 = input[1 * inStride]
        let a1 = o0 + o3, a2 = o1 + o2, a3 = o0 + o2, a4 = o1 + o3
        let z5 = (a3 + a4) * c1175
        let m1 = -a1 * c0899, m2 = -a2 * c2562
        let m3 = -a3 * c1961 + z5, m4 = -a4 * c0390 + z5
        let p0 = o0 * c0298 + m1 + m3
        let p1 = o1 * c2053 + m2 + m4
        let p2 = o2 * c3072 + m2 + m3
        let p3 = o3 * c1501 + m1 + m4
        output[0] = (t10 + p3 + round) >> shift
        output[7 * outStride] = (t10 - p3 + round) >> shift
        output[1 * outStride] = (t11 + p2 + round) >> shift
        output[6 * outStride] = (t11 - p2 + round) >> shift
        output[2 * outStride] = (t12 + p1 + round) >> shift
        output[5 * outStride] = (t12 - p1 + round) >> shift
        output[3 * outStride] = (t13 + p0 + round) >> shift
        output[4 * outStride] = (t13 - p0 + round) >> shift
    }

    /// `coefficients` row-major (v·8 + u), dequantised and pre-scaled; writes 64 samples
    /// plus `offset` into `target` rows `stride` apart.
    @inline(__always)
    static func inverse(_ coefficients: UnsafeMutablePointer<Int>, scratch: UnsafeMutablePointer<Int>,
                        offset: Int32, target: UnsafeMutablePointer<Int32>, stride: Int) {
        for v in 0..<8 {
            let row = coefficients + v * 8
            if row[1] == 0 && row[2] == 0 && row[3] == 0 && row[4] == 0 && row[5] == 0 && row[6] == 0 && row[7] == 0 {
                // Only the DC term: the pass gives (d0·512·8/8 + 256) >> 9 = d0 in every column.
                let dc = row[0]
                for x in 0..<8 { scratch[v * 8 + x] = dc }
                continue
            }
            pass(row, 1, scratch + v * 8, 1, shift: 9)
        }
        for x in 0..<8 {
            pass(scratch + x, 8, coefficients + x, 8, shift: 12)
        }
        for y in 0..<8 {
            let out = target + y * stride
            let src = coefficients + y * 8
            // Valid data stays far inside ±2^24; the clamp only keeps corrupt data from overflowing later.
            for x in 0..<8 { out[x] = Int32(min(max(src[x], -(1 << 24)), 1 << 24)) &+ offset }
        }
    }
}

/// One component of a sequential scan.
struct SequentialLane {
    var dc: JPEGHuffmanTable.View
    var ac: JPEGHuffmanTable.View
    var quant: UnsafeMutablePointer<Int>
    var plane: JPEGPlane
    var h: Int
    var v: Int
    var prediction = 0
}

extension JPEGDecoder {
    mutating func decodeSequentialScan(_ scan: JPEGScan, frame f: JPEGFrame, dataStart: Int) throws(CodecError) -> Int {
        let n = scan.components.count
        var tables: [JPEGHuffmanTable] = []
        // Working memory: 4 quantisation tables, coefficients (+1 scratch slot), IDCT scratch.
        let work = UnsafeMutablePointer<Int>.allocate(capacity: n * 64 + 65 + 64)
        defer { work.deallocate() }
        work.initialize(repeating: 0, count: n * 64 + 65 + 64)
        var lanes: [SequentialLane] = []
        for (i, c) in scan.components.enumerated() {
            let dc = try huffmanTable(tableClass: 0, id: c.dcTable, use: .category(maxCategory: f.precision == 8 ? 11 : 15))
            let ac = try huffmanTable(tableClass: 1, id: c.acTable, use: .ac)
            tables.append(dc)
            tables.append(ac)
            let component = f.components[c.index]
            guard let q = quantTables[component.quantTable] else {
                throw CodecError(.corrupt, "component \(component.id) uses quantisation table \(component.quantTable), which is not defined")
            }
            let quant = work + i * 64
            for k in 0..<64 { quant[k] = Int(q[k]) << JPEGIDCT.fractionBits }
            lanes.append(SequentialLane(dc: dc.view, ac: ac.view, quant: quant, plane: planes[c.index], h: component.h, v: component.v))
        }
        let coefficients = work + n * 64
        let scratch = coefficients + 65
        let offset = Int32(1 << (f.precision - 1 + JPEGIDCT.fractionBits))
        var reader = JPEGBitReader(base: base, start: dataStart, end: count)
        let interval = restartInterval
        var untilRestart = interval
        var restartIndex = 0

        try JPEGZigZag.natural.withUnsafeBufferPointer { (zigzagBuffer) throws(CodecError) in
                let natural = zigzagBuffer.baseAddress!
                func block(_ lane: inout SequentialLane, column: Int, row: Int) throws(CodecError) {
                    try decodeBlock(&lane, &reader, coefficients: coefficients, natural: natural)
                    let plane = lane.plane
                    JPEGIDCT.inverse(coefficients, scratch: scratch, offset: offset,
                                     target: plane.samples + (row * 8 * plane.width + column * 8), stride: plane.width)
                }
                func restartIfDue() throws(CodecError) {
                    guard interval > 0 else { return }
                    if untilRestart == 0 {
                        try processRestart(&reader, index: restartIndex)
                        restartIndex += 1
                        untilRestart = interval
                        for i in lanes.indices { lanes[i].prediction = 0 }
                    }
                    untilRestart -= 1
                }
                if n == 1 {
                    // Non-interleaved: the component's own blocks in raster order, one per MCU.
                    let component = f.components[scan.components[0].index]
                    let across = ceilDiv(component.width, 8), down = ceilDiv(component.height, 8)
                    for by in 0..<down {
                        for bx in 0..<across {
                            try restartIfDue()
                            try block(&lanes[0], column: bx, row: by)
                        }
                        if reader.overran { break }
                    }
                } else {
                    for my in 0..<f.mcusDown {
                        for mx in 0..<f.mcusAcross {
                            try restartIfDue()
                            for i in 0..<n {
                                for v in 0..<lanes[i].v {
                                    for h in 0..<lanes[i].h {
                                        try block(&lanes[i], column: mx * lanes[i].h + h, row: my * lanes[i].v + v)
                                    }
                                }
                            }
                        }
                        if reader.overran { break }
                    }
                }
        }
        withExtendedLifetime(tables) {}
        return try finishScan(reader)
    }

    /// Huffman-decodes one block's coefficients and dequantises them into `coefficients`
    /// (row-major; index 64 takes the writes of a corrupt run past the end).
    @inline(__always)
    private func decodeBlock(_ lane: inout SequentialLane, _ readerOut: inout JPEGBitReader,
                             coefficients: UnsafeMutablePointer<Int>, natural: UnsafePointer<Int>) throws(CodecError) {
        var reader = readerOut // in registers for the block's serial chain of codes, not behind the inout
        defer { readerOut = reader }
        coefficients.update(repeating: 0, count: 64)
        reader.ensure(32)
        guard let diff = lane.dc.decodeDifference(&reader) else {
            throw CodecError(.corrupt, "invalid DC Huffman code near offset \(reader.position)")
        }
        // A corrupt stream can drift the DC prediction without bound; valid ones stay within ±2^16.
        lane.prediction = min(max(lane.prediction &+ diff, -(1 << 20)), 1 << 20)
        let quant = lane.quant
        coefficients[0] = lane.prediction &* quant[0]
        var k = 1
        let ac = lane.ac
        while k < 64 {
            reader.ensure(32)
            let rs = ac.decodeSymbol(&reader)
            if rs < 0 {
                throw CodecError(.corrupt, "invalid AC Huffman code near offset \(reader.position)")
            }
            let size = rs & 15
            let run = rs >> 4
            if size == 0 {
                if run == 15 { k += 16; continue }
                break // end of block
            }
            k += run
            let raw = reader.peek(size)
            reader.skip(size)
            let index = natural[min(k, 64)]
            coefficients[index] = extend(raw, size) &* quant[min(index, 63)]
            k += 1
        }
        coefficients[64] = 0
    }

    /// Upsamples every plane to the frame size, rounds away the fractional bits, clamps to
    /// the precision and writes the samples (still in the stream's colour space).
    func writeSequentialOutput(_ f: JPEGFrame) {
        let writer = JPEGSampleWriter(output: output, descriptor: descriptor)
        let maxValue = Int32((1 << f.precision) - 1)
        let width = f.width
        let row = UnsafeMutablePointer<Int32>.allocate(capacity: width)
        defer { row.deallocate() }
        let vertical = UnsafeMutablePointer<Int32>.allocate(capacity: width + 2)
        defer { vertical.deallocate() }
        let half = Int32(1 << (JPEGIDCT.fractionBits - 1))
        for (slot, component) in f.components.enumerated() {
            let plane = planes[slot]
            let sx = f.hMax / component.h, sy = f.vMax / component.v
            for y in 0..<f.height {
                JPEGUpsampler.row(plane, y: y, sx: sx, sy: sy, width: width, componentWidth: component.width,
                                  componentHeight: component.height, vertical: vertical, into: row)
                for x in 0..<width {
                    let v = (row[x] + half) >> Int32(JPEGIDCT.fractionBits)
                    row[x] = min(max(v, 0), maxValue)
                }
                writer.writeRow(row, count: width, firstPixel: y * width, slot: slot, shift: 0)
            }
        }
    }
}

/// Chroma upsampling as the reference decoder does it (its "co-sited" triangle filter on
/// fixed-point samples, with its alternating rounding offsets): factors 1, 2 and 4, plus 3
/// by sample replication (rare; the reference filters it, so 3× subsampled streams may
/// differ by a little more).
enum JPEGUpsampler {
    static func row(_ plane: JPEGPlane, y: Int, sx: Int, sy: Int, width: Int, componentWidth: Int, componentHeight: Int,
                    vertical: UnsafeMutablePointer<Int32>, into out: UnsafeMutablePointer<Int32>) {
        let inputWidth = min(componentWidth, plane.width)
        let lastRow = min(componentHeight, plane.height) - 1
        let iy = min(y / sy, lastRow)
        let centre = plane.samples + iy * plane.width
        // vertical[i + 1] = vertically filtered input column i (i = -1 ... inputWidth).
        let inputs = ceilDiv(width, sx)
        @inline(__always) func column(_ i: Int) -> Int { min(max(i, 0), inputWidth - 1) }
        switch sy {
        case 2:
            let up = y % 2 == 0
            let other = plane.samples + min(max(iy + (up ? -1 : 1), 0), lastRow) * plane.width
            for i in -1...inputs {
                let c = column(i)
                // Rounding alternates with the column's position in its filter buffer.
                let evenSlot = sx > 1 ? (i + 1) & 1 == 0 : i & 1 == 0
                let r: Int32 = (evenSlot == up) ? 2 : 1
                vertical[i + 1] = (other[c] + 3 * centre[c] + r) >> 2
            }
        case 4:
            let phase = y % 4
            let other = plane.samples + min(max(iy + (phase < 2 ? -1 : 1), 0), lastRow) * plane.width
            let (wo, wc): (Int32, Int32) = phase == 0 || phase == 3 ? (3, 5) : (1, 7)
            for i in -1...inputs {
                let c = column(i)
                let evenSlot = sx > 1 ? (i + 1) & 1 == 0 : i & 1 == 0
                let r: Int32 = (evenSlot == (phase == 0 || phase == 2)) ? 4 : 3
                vertical[i + 1] = (wo * other[c] + wc * centre[c] + r) >> 3
            }
        default:
            for i in -1...inputs { vertical[i + 1] = centre[column(i)] }
        }
        let v = vertical + 1
        switch sx {
        case 1:
            out.update(from: v, count: width)
        case 2:
            for x in 0..<width {
                let i = x >> 1
                if x & 1 == 0 {
                    out[x] = (v[i - 1] + 3 * v[i] + 2) >> 2
                } else if x & 7 == 1 {
                    // The reference filters 8 outputs in place and this one reads its already
                    // filtered right-hand neighbour.
                    let next = (v[i] + 3 * v[i + 1] + 2) >> 2
                    out[x] = (next + 3 * v[i] + 1) >> 2
                } else {
                    out[x] = (v[i + 1] + 3 * v[i] + 1) >> 2
                }
            }
        case 4:
            for x in 0..<width {
                let i = x >> 2
                switch x & 3 {
                case 0: out[x] = (3 * v[i - 1] + 5 * v[i] + 2) >> 3
                case 1: out[x] = (v[i - 1] + 7 * v[i] + 1) >> 3
                case 2: out[x] = (v[i + 1] + 7 * v[i] + 2) >> 3
                default: out[x] = (3 * v[i + 1] + 5 * v[i] + 1) >> 3
                }
            }
        default:
            for x in 0..<width { out[x] = v[x / sx] }
        }
    }
}
