#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Sequential DCT scans (processes 1, 2, 4 with Huffman coding): coefficient decoding,
// dequantisation and an accurate floating-point IDCT into per-component planes; after the
// last scan the planes are upsampled, rounded once and written out.

/// The 8×8 inverse DCT of T.81 A.3.3, computed separably in Float from a cosine table:
/// accurate to well under one grey level at 8 and 12 bits (the reference decoder keeps
/// fractional bits too, so both round the same real value).
enum JPEGIDCT {
    /// basis[x * 8 + u] = C(u)/2 · cos((2x+1)uπ/16).
    static let basis: [Float] = {
        var b = [Float](repeating: 0, count: 64)
        for x in 0..<8 {
            for u in 0..<8 {
                let cu = u == 0 ? 1.0 / 2.0.squareRoot() : 1.0
                b[x * 8 + u] = Float(cu / 2 * cos(Double((2 * x + 1) * u) * Double.pi / 16))
            }
        }
        return b
    }()

    /// `coefficients` row-major (v·8 + u), dequantised; writes 64 samples plus `offset`
    /// into `target` rows `stride` apart.
    @inline(__always)
    static func inverse(_ coefficients: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                        basis: UnsafePointer<Float>, offset: Float, target: UnsafeMutablePointer<Float>, stride: Int) {
        // Rows: scratch[v][x] = Σu F[v][u]·basis[x][u]; all-zero rows are common and skipped.
        for v in 0..<8 {
            let row = coefficients + v * 8
            let out = scratch + v * 8
            var anyAC = false
            for u in 1..<8 where row[u] != 0 { anyAC = true; break }
            if !anyAC {
                let dc = row[0] * basis[0]
                for x in 0..<8 { out[x] = dc }
                continue
            }
            for x in 0..<8 {
                let b = basis + x * 8
                var sum: Float = row[0] * b[0]
                sum += row[1] * b[1]; sum += row[2] * b[2]; sum += row[3] * b[3]
                sum += row[4] * b[4]; sum += row[5] * b[5]; sum += row[6] * b[6]; sum += row[7] * b[7]
                out[x] = sum
            }
        }
        // Columns: target[y][x] = Σv basis[y][v]·scratch[v][x] + offset.
        for y in 0..<8 {
            let b = basis + y * 8
            let out = target + y * stride
            for x in 0..<8 {
                var sum: Float = scratch[x] * b[0]
                sum += scratch[8 + x] * b[1]; sum += scratch[16 + x] * b[2]; sum += scratch[24 + x] * b[3]
                sum += scratch[32 + x] * b[4]; sum += scratch[40 + x] * b[5]; sum += scratch[48 + x] * b[6]
                sum += scratch[56 + x] * b[7]
                out[x] = sum + offset
            }
        }
    }
}

/// One component of a sequential scan.
struct SequentialLane {
    var dc: JPEGHuffmanTable.View
    var ac: JPEGHuffmanTable.View
    var quant: UnsafeMutablePointer<Float>
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
        let work = UnsafeMutablePointer<Float>.allocate(capacity: n * 64 + 65 + 64)
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
            for k in 0..<64 { quant[k] = Float(q[k]) }
            lanes.append(SequentialLane(dc: dc.view, ac: ac.view, quant: quant, plane: planes[c.index], h: component.h, v: component.v))
        }
        let coefficients = work + n * 64
        let scratch = coefficients + 65
        let offset = Float(1 << (f.precision - 1))
        var reader = JPEGBitReader(base: base, start: dataStart, end: count)
        let interval = restartInterval
        var untilRestart = interval
        var restartIndex = 0

        try JPEGIDCT.basis.withUnsafeBufferPointer { (basisBuffer) throws(CodecError) in
            try JPEGZigZag.natural.withUnsafeBufferPointer { (zigzagBuffer) throws(CodecError) in
                let basis = basisBuffer.baseAddress!, natural = zigzagBuffer.baseAddress!
                func block(_ lane: inout SequentialLane, column: Int, row: Int) throws(CodecError) {
                    try decodeBlock(&lane, &reader, coefficients: coefficients, natural: natural)
                    let plane = lane.plane
                    JPEGIDCT.inverse(coefficients, scratch: scratch, basis: basis, offset: offset,
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
        }
        withExtendedLifetime(tables) {}
        return try finishScan(reader)
    }

    /// Huffman-decodes one block's coefficients and dequantises them into `coefficients`
    /// (row-major; index 64 takes the writes of a corrupt run past the end).
    @inline(__always)
    private func decodeBlock(_ lane: inout SequentialLane, _ reader: inout JPEGBitReader,
                             coefficients: UnsafeMutablePointer<Float>, natural: UnsafePointer<Int>) throws(CodecError) {
        coefficients.update(repeating: 0, count: 64)
        reader.ensure(32)
        guard let diff = lane.dc.decodeDifference(&reader) else {
            throw CodecError(.corrupt, "invalid DC Huffman code near offset \(reader.position)")
        }
        lane.prediction &+= diff
        let quant = lane.quant
        coefficients[0] = Float(lane.prediction) * quant[0]
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
            coefficients[index] = Float(extend(raw, size)) * quant[min(index, 63)]
            k += 1
        }
        coefficients[64] = 0
    }

    /// Upsamples every plane to the frame size, rounds and clamps to the precision and
    /// writes the samples (still in the stream's colour space).
    func writeSequentialOutput(_ f: JPEGFrame) {
        let writer = JPEGSampleWriter(output: output, descriptor: descriptor)
        let maxValue = (1 << f.precision) - 1
        let width = f.width
        let row = UnsafeMutablePointer<Float>.allocate(capacity: width)
        defer { row.deallocate() }
        let ints = UnsafeMutablePointer<Int32>.allocate(capacity: width)
        defer { ints.deallocate() }
        for (slot, component) in f.components.enumerated() {
            let plane = planes[slot]
            let sx = f.hMax / component.h, sy = f.vMax / component.v
            let lastColumn = component.width - 1, lastRow = component.height - 1
            for y in 0..<f.height {
                upsampledRow(plane, y: y, sx: sx, sy: sy, width: width, lastColumn: lastColumn, lastRow: lastRow, into: row)
                for x in 0..<width {
                    let v = Int((row[x] + 0.5).rounded(.down))
                    ints[x] = Int32(min(max(v, 0), maxValue))
                }
                writer.writeRow(ints, count: width, firstPixel: y * width, slot: slot, shift: 0)
            }
        }
    }

    /// Triangle-filter weights of the reference decoder's upsampler for a factor of 1-4:
    /// output phase p of an input sample takes (neighbour offset, neighbour weight).
    private static func upsamplingTap(factor: Int, phase: Int) -> (Int, Float) {
        switch (factor, phase) {
        case (2, 0): return (-1, 0.25)
        case (2, _): return (1, 0.25)
        case (3, 0): return (-1, 0.25)
        case (3, 1): return (0, 0)
        case (3, _): return (1, 0.25)
        case (4, 0): return (-1, 0.375)
        case (4, 1): return (-1, 0.125)
        case (4, 2): return (1, 0.125)
        case (4, _): return (1, 0.375)
        default: return (0, 0)
        }
    }

    private func upsampledRow(_ plane: JPEGPlane, y: Int, sx: Int, sy: Int, width: Int, lastColumn: Int, lastRow: Int,
                              into row: UnsafeMutablePointer<Float>) {
        let iy = y / sy
        let (dy, wy) = Self.upsamplingTap(factor: sy, phase: y % sy)
        let centre = plane.samples + min(iy, lastRow) * plane.width
        let neighbour = plane.samples + min(max(iy + dy, 0), lastRow) * plane.width
        if sx == 1 {
            if wy == 0 {
                row.update(from: centre, count: width)
            } else {
                for x in 0..<width { row[x] = centre[x] * (1 - wy) + neighbour[x] * wy }
            }
            return
        }
        @inline(__always) func vertical(_ ix: Int) -> Float {
            let c = min(max(ix, 0), lastColumn)
            return wy == 0 ? centre[c] : centre[c] * (1 - wy) + neighbour[c] * wy
        }
        for x in 0..<width {
            let ix = x / sx
            let (dx, wx) = Self.upsamplingTap(factor: sx, phase: x % sx)
            let c = vertical(ix)
            row[x] = wx == 0 ? c : c * (1 - wx) + vertical(ix + dx) * wx
        }
    }
}
