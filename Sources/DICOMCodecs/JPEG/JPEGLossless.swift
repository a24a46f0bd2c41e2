// Lossless (process 14) scans: DPCM with predictors 1-7 over Huffman-coded differences
// (ITU T.81 Annex H). Two rows per component are kept (the one being decoded and the one
// above); every finished row is written to the output at once, so the working memory is
// a few rows whatever the image size.

protocol LosslessPredictor {
    /// Prediction from the left (a), above (b) and above-left (c) samples (T.81 Table H.1).
    static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int
}

enum PredictLeft: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { a } }
enum PredictAbove: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { b } }
enum PredictAboveLeft: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { c } }
enum PredictPlane: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { a + b - c } }
enum PredictLeftHalf: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { a + ((b - c) >> 1) } }
enum PredictAboveHalf: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { b + ((a - c) >> 1) } }
enum PredictAverage: LosslessPredictor { @inline(__always) static func predict(_ a: Int, _ b: Int, _ c: Int) -> Int { (a + b) >> 1 } }

/// One component of a lossless scan: its table and its two rows.
struct LosslessLane {
    var table: JPEGHuffmanTable.View
    var current: UnsafeMutablePointer<Int32>
    var above: UnsafeMutablePointer<Int32>
    /// Index of the component in the frame (its slot in an output pixel).
    var slot: Int
}

/// Writes decoded samples the way pydicom leaves them: shifted back by the point transform,
/// then kept to Bits Stored (masked, or sign-extended when signed) in the output width.
struct JPEGSampleWriter {
    let output: UnsafeMutableRawPointer
    let bytesPerSample: Int
    let samplesPerPixel: Int
    let mask: Int
    let signBit: Int
    let signed: Bool

    init(output: UnsafeMutableRawPointer, descriptor: FrameDescriptor) {
        self.output = output
        bytesPerSample = descriptor.bytesPerSample
        samplesPerPixel = descriptor.samplesPerPixel
        let bits = max(1, min(descriptor.bitsStored, descriptor.bitsAllocated))
        mask = (1 << bits) - 1
        signBit = 1 << (bits - 1)
        signed = descriptor.isSigned
    }

    @inline(__always) func finalize(_ v: Int) -> Int {
        let m = v & mask
        return signed ? (m ^ signBit) - signBit : m
    }

    /// Writes `count` samples of one component starting at pixel `firstPixel`. The work is
    /// done in Int32 with wrapping shifts: only the low `bits` (≤ 16 written) bits survive the
    /// mask, so the result is the same as in Int; the plain loops of one-sample images
    /// (CT, MR) then vectorise.
    func writeRow(_ row: UnsafePointer<Int32>, count: Int, firstPixel: Int, slot: Int, shift: Int) {
        let stride = samplesPerPixel
        let m = Int32(truncatingIfNeeded: mask), sb = Int32(truncatingIfNeeded: signBit), sh = Int32(truncatingIfNeeded: shift)
        if bytesPerSample == 1 {
            let out = output.assumingMemoryBound(to: UInt8.self) + (firstPixel * stride + slot)
            if stride == 1 {
                if signed {
                    for x in 0..<count { out[x] = UInt8(truncatingIfNeeded: (((row[x] &<< sh) & m) ^ sb) &- sb) }
                } else {
                    for x in 0..<count { out[x] = UInt8(truncatingIfNeeded: (row[x] &<< sh) & m) }
                }
                return
            }
            for x in 0..<count {
                out[x * stride] = UInt8(truncatingIfNeeded: finalize(Int(row[x]) << shift))
            }
        } else {
            let out = output + (firstPixel * stride + slot) * 2
            if stride == 1 {
                if signed {
                    for x in 0..<count {
                        let v = UInt16(truncatingIfNeeded: (((row[x] &<< sh) & m) ^ sb) &- sb)
                        out.storeBytes(of: v.littleEndian, toByteOffset: 2 * x, as: UInt16.self)
                    }
                } else {
                    for x in 0..<count {
                        out.storeBytes(of: UInt16(truncatingIfNeeded: (row[x] &<< sh) & m).littleEndian, toByteOffset: 2 * x, as: UInt16.self)
                    }
                }
                return
            }
            let bytes = out.assumingMemoryBound(to: UInt8.self)
            for x in 0..<count {
                let v = UInt16(truncatingIfNeeded: finalize(Int(row[x]) << shift))
                bytes[x * stride * 2] = UInt8(truncatingIfNeeded: v)
                bytes[x * stride * 2 + 1] = UInt8(truncatingIfNeeded: v >> 8)
            }
        }
    }
}

extension JPEGDecoder {
    mutating func decodeLosslessScan(_ scan: JPEGScan, frame f: JPEGFrame, dataStart: Int) throws(CodecError) -> Int {
        var tables: [JPEGHuffmanTable] = []
        for c in scan.components {
            tables.append(try huffmanTable(tableClass: 0, id: c.dcTable, use: .category(maxCategory: 16)))
        }
        let n = scan.components.count
        // T.81 H.1.2.1 resets prediction at restarts by lines; an interval ending inside a
        // line has no agreed meaning (the reference warns "expect corrupt results", IJG refuses).
        if restartInterval > 0 && restartInterval % f.width != 0 {
            throw CodecError(.unsupported, "lossless restart interval \(restartInterval) is not a whole number of \(f.width)-sample lines")
        }
        // A non-interleaved scan of one component covers that component's own size; with
        // equal sampling factors (required for lossless here) every component is full size.
        let width = f.width, height = f.height
        let rowLength = width + 1 // index -1 of a row is never read; the extra slot keeps x-1 in bounds
        let rows = UnsafeMutablePointer<Int32>.allocate(capacity: n * 2 * rowLength)
        rows.initialize(repeating: 0, count: n * 2 * rowLength)
        defer { rows.deallocate() }
        let lanes = UnsafeMutablePointer<LosslessLane>.allocate(capacity: n)
        defer { lanes.deallocate() }
        for i in 0..<n {
            (lanes + i).initialize(to: LosslessLane(table: tables[i].view, current: rows + (2 * i) * rowLength + 1,
                                                    above: rows + (2 * i + 1) * rowLength + 1, slot: scan.components[i].index))
        }
        let context = LosslessScanContext(width: width, height: height, lanes: lanes, laneCount: n,
                                          initial: 1 << (f.precision - scan.approximationLow - 1),
                                          pointTransform: scan.approximationLow,
                                          writer: JPEGSampleWriter(output: output, descriptor: descriptor))
        var reader = JPEGBitReader(base: base, start: dataStart, end: count)
        switch scan.spectralStart {
        case 1: try decodeLossless(PredictLeft.self, context, &reader)
        case 2: try decodeLossless(PredictAbove.self, context, &reader)
        case 3: try decodeLossless(PredictAboveLeft.self, context, &reader)
        case 4: try decodeLossless(PredictPlane.self, context, &reader)
        case 5: try decodeLossless(PredictLeftHalf.self, context, &reader)
        case 6: try decodeLossless(PredictAboveHalf.self, context, &reader)
        default: try decodeLossless(PredictAverage.self, context, &reader)
        }
        withExtendedLifetime(tables) {}
        return try finishScan(reader)
    }

    /// Rows of the scan, with the prediction rules of T.81 H.1.2.1: the first sample of the
    /// scan and of each restart interval is predicted by 2^(P-Pt-1), the rest of that line by
    /// the sample to the left, the first sample of every other line by the one above.
    private func decodeLossless<P: LosslessPredictor>(_ predictor: P.Type, _ context: LosslessScanContext,
                                                      _ reader: inout JPEGBitReader) throws(CodecError) {
        let width = context.width
        let interval = restartInterval
        var untilRestart = interval
        var restartIndex = 0
        for y in 0..<context.height {
            for i in 0..<context.laneCount {
                swap(&context.lanes[i].current, &context.lanes[i].above)
            }
            var x = 0
            var leftOnly = y == 0
            var reset = y == 0
            while x < width {
                if interval > 0 && untilRestart == 0 {
                    try processRestart(&reader, index: restartIndex)
                    restartIndex += 1
                    untilRestart = interval
                    reset = true
                    leftOnly = true
                }
                let end = interval > 0 ? min(width, x + untilRestart) : width
                if context.laneCount == 1 {
                    try decodeSingleSegment(P.self, context.lanes[0], from: x, to: end, leftOnly: leftOnly, reset: reset, initial: context.initial, &reader)
                } else {
                    try decodeInterleavedSegment(P.self, context, from: x, to: end, leftOnly: leftOnly, reset: reset, &reader)
                }
                if interval > 0 { untilRestart -= end - x }
                x = end
                reset = false
            }
            if reader.overran {
                throw CodecError(.corrupt, "entropy-coded data ends at line \(y) of \(context.height) (offset \(reader.position))")
            }
            for i in 0..<context.laneCount {
                let lane = context.lanes[i]
                context.writer.writeRow(lane.current, count: width, firstPixel: y * width, slot: lane.slot, shift: context.pointTransform)
            }
        }
    }

    @inline(__always)
    private func nextDifference(_ table: JPEGHuffmanTable.View, _ reader: inout JPEGBitReader) throws(CodecError) -> Int {
        reader.ensure(32)
        guard let d = table.decodeDifference(&reader) else {
            throw CodecError(.corrupt, "invalid Huffman code in lossless data near offset \(reader.position)")
        }
        return d
    }

    /// One component: the hot loop of a monochrome CT or MR frame.
    private func decodeSingleSegment<P: LosslessPredictor>(_ predictor: P.Type, _ lane: LosslessLane, from: Int, to: Int,
                                                           leftOnly: Bool, reset: Bool, initial: Int,
                                                           _ readerOut: inout JPEGBitReader) throws(CodecError) {
        // The reader's state in locals (registers) for the loop, not behind the inout pointer:
        // every sample's code depends on the previous one's shift.
        var reader = readerOut
        defer { readerOut = reader }
        let cur = lane.current, above = lane.above, table = lane.table
        var x = from
        // The first sample of the segment has its own rule.
        let first: Int
        if reset { first = initial }
        else if leftOnly { first = Int(cur[x - 1]) }
        else if x == 0 { first = Int(above[0]) }
        else { first = P.predict(Int(cur[x - 1]), Int(above[x]), Int(above[x - 1])) }
        var left = (first + (try nextDifference(table, &reader))) & 0xFFFF
        cur[x] = Int32(left)
        x += 1
        if leftOnly {
            while x < to {
                left = (left + (try nextDifference(table, &reader))) & 0xFFFF
                cur[x] = Int32(left)
                x += 1
            }
        } else {
            while x < to {
                let d = try nextDifference(table, &reader)
                left = (P.predict(left, Int(above[x]), Int(above[x - 1])) + d) & 0xFFFF
                cur[x] = Int32(left)
                x += 1
            }
        }
    }

    /// Several components, one sample of each per MCU (all sampled 1×1).
    private func decodeInterleavedSegment<P: LosslessPredictor>(_ predictor: P.Type, _ context: LosslessScanContext, from: Int, to: Int,
                                                                leftOnly: Bool, reset: Bool,
                                                                _ readerOut: inout JPEGBitReader) throws(CodecError) {
        var reader = readerOut // in registers for the loop (see decodeSingleSegment)
        defer { readerOut = reader }
        let lanes = context.lanes
        for x in from..<to {
            for i in 0..<context.laneCount {
                let lane = lanes[i]
                let cur = lane.current, above = lane.above
                let d = try nextDifference(lane.table, &reader)
                let prediction: Int
                if x == from && reset { prediction = context.initial }
                else if leftOnly { prediction = Int(cur[x - 1]) }
                else if x == 0 { prediction = Int(above[0]) }
                else { prediction = P.predict(Int(cur[x - 1]), Int(above[x]), Int(above[x - 1])) }
                cur[x] = Int32((prediction + d) & 0xFFFF)
            }
        }
    }
}

struct LosslessScanContext {
    let width: Int
    let height: Int
    let lanes: UnsafeMutablePointer<LosslessLane>
    let laneCount: Int
    let initial: Int
    let pointTransform: Int
    let writer: JPEGSampleWriter
}
