import DICOMCodecs
import Testing

/// Hostile and broken streams: every one must end in a `CodecError` (typed throws make any
/// other error impossible; these tests are about never crashing, hanging or reading outside
/// the input) — or decode, when the damage happens to leave a valid stream.
@Suite struct JPEGMalformedInputTests {
    /// Offsets of every marker of a stream (walking segments; entropy-coded data is skipped
    /// up to its next marker).
    static func markerOffsets(_ s: [UInt8]) -> [Int] {
        var offsets: [Int] = []
        var i = 0
        while i + 1 < s.count {
            guard s[i] == 0xFF else { i += 1; continue }
            let m = s[i + 1]
            if m == 0x00 || m == 0xFF { i += 1; continue }
            offsets.append(i)
            if m == 0xD8 || m == 0xD9 || (0xD0...0xD7).contains(m) { i += 2; continue }
            guard i + 3 < s.count else { break }
            let length = Int(s[i + 2]) << 8 | Int(s[i + 3])
            i += 2 + length
        }
        return offsets
    }

    static let smallFixtures = ["lossless-p4-mr", "lossless-sv1-rgb", "extended8-422-rgb", "extended12-q50-ct12",
                                "edge-restart-rows-mr", "edge-dct-420-restart", "edge-dct12-q16-restart", "edge-ssss16",
                                "edge-dct-noninterleaved", "edge-lossless-rgb-restart"]

    @Test(arguments: smallFixtures)
    func truncatedAtEveryMarkerIsRefused(_ name: String) throws {
        let f = JPEGFixtures.named(name)
        let stream = f.stream
        let markers = Self.markerOffsets(stream)
        #expect(markers.first == 0 && markers.last == stream.count - 2)
        // Any cut before the final EOI loses a table, a header or scan data.
        for cut in markers.dropLast() {
            let truncated = Array(stream[0..<cut])
            #expect(throws: CodecError.self, "\(name) cut at marker offset \(cut)") {
                _ = try decodeJPEG(truncated, f.descriptor)
            }
        }
        // Cuts inside the entropy-coded data (and inside headers) are refused too.
        let lastScan = markers.last { stream[$0 + 1] == 0xDA }!
        for fraction in [0.1, 0.5, 0.9, 0.99] {
            let cut = lastScan + 4 + Int(Double(stream.count - 2 - lastScan - 4) * fraction)
            #expect(throws: CodecError.self, "\(name) cut at \(cut)") {
                _ = try decodeJPEG(Array(stream[0..<cut]), f.descriptor)
            }
        }
        for cut in [1, 2, 3, 5, 9, 20] where cut < stream.count {
            #expect(throws: CodecError.self) { _ = try decodeJPEG(Array(stream[0..<cut]), f.descriptor) }
        }
    }

    /// Deterministic random damage (SplitMix64): flipped bits, bytes set to 0x00 / 0xFF /
    /// random, rewritten segment lengths, dropped and duplicated spans.
    @Test func thousandsOfMutationsNeverCrash() {
        var rng = SplitMix64(seed: 0x5EED_1E55)
        var decoded = 0, refused = 0
        let fixtures = Self.smallFixtures.map(JPEGFixtures.named)
        for round in 0..<3000 {
            let f = fixtures[round % fixtures.count]
            var s = f.stream
            let edits = 1 + Int(rng.next() % 4)
            for _ in 0..<edits {
                let at = Int(rng.next() % UInt64(s.count))
                switch rng.next() % 7 {
                case 0: s[at] ^= UInt8(1 << (rng.next() % 8))
                case 1: s[at] = 0xFF
                case 2: s[at] = 0
                case 3: s[at] = UInt8(truncatingIfNeeded: rng.next())
                case 4: // a segment length that lies
                    let markers = Self.markerOffsets(s).filter { $0 + 3 < s.count }
                    if let m = markers.randomElement(using: &rng) {
                        s[m + 2] = UInt8(truncatingIfNeeded: rng.next())
                        s[m + 3] = UInt8(truncatingIfNeeded: rng.next())
                    }
                case 5: s.removeSubrange(at..<min(s.count, at + 1 + Int(rng.next() % 16)))
                default: s.insert(contentsOf: s[at..<min(s.count, at + 1 + Int(rng.next() % 16))], at: at)
                }
                if s.isEmpty { s = [0] }
            }
            do {
                _ = try decodeJPEG(s, f.descriptor)
                decoded += 1
            } catch let error as CodecError {
                refused += 1
                #expect(!error.message.isEmpty)
            } catch {
                Issue.record("not a CodecError: \(error)")
            }
        }
        #expect(decoded + refused == 3000)
        #expect(refused > 1000, "most damage must be detected (refused \(refused), decoded \(decoded))")
    }

    // MARK: Hostile headers

    /// A minimal lossless stream: SOI, SOF3, DHT, SOS, data, EOI (1 component).
    static func lossless(width: Int, height: Int, precision: Int = 8, dht: [UInt8]? = nil, sof: UInt8 = 0xC3,
                         data: [UInt8] = [0x00, 0x00, 0x00, 0x00]) -> [UInt8] {
        var s: [UInt8] = [0xFF, 0xD8]
        s += [0xFF, sof, 0x00, 0x0B, UInt8(precision), UInt8(height >> 8), UInt8(height & 255), UInt8(width >> 8), UInt8(width & 255), 1, 1, 0x11, 0]
        // One code of length 1 for category 0: every sample repeats its prediction.
        let table = dht ?? ([0x00] + [1] + [UInt8](repeating: 0, count: 15) + [0])
        s += [0xFF, 0xC4, 0x00, UInt8(2 + table.count)] + table
        s += [0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 1, 0, 0]
        s += data + [0xFF, 0xD9]
        return s
    }

    static func grey(_ width: Int, _ height: Int, bits: Int = 8) -> FrameDescriptor {
        FrameDescriptor(rows: height, columns: width, samplesPerPixel: 1, bitsAllocated: bits, bitsStored: bits, isSigned: false,
                        photometricInterpretation: "MONOCHROME2")
    }

    /// The code of the error `body` throws (nil when it succeeds; "not a CodecError" otherwise).
    static func code(of body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return (error as? CodecError)?.code ?? "not a CodecError" }
    }

    @Test func minimalStreamDecodes() throws {
        // Category 0 everywhere: every sample is the initial prediction 2^(P-1) = 128.
        let (pixels, _) = try decodeJPEG(Self.lossless(width: 5, height: 3), Self.grey(5, 3))
        #expect(pixels == [UInt8](repeating: 128, count: 15))
    }

    @Test func hugeDimensionsAreRefusedBeforeAnyAllocation() {
        // The stream claims 65535×65535; the data set says 4×4: refused as a mismatch.
        #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 65535, height: 65535), Self.grey(4, 4)) } == "codec.mismatch")
    }

    @Test func mismatchingDescriptorsAreRefused() {
        let f = JPEGFixtures.named("lossless-p4-mr") // 64×64, 1 sample, 16-bit precision
        var d = f.descriptor
        d.rows = 63
        #expect(Self.code { _ = try decodeJPEG(f.stream, d) } == "codec.mismatch")
        d = f.descriptor; d.columns = 65
        #expect(Self.code { _ = try decodeJPEG(f.stream, d) } == "codec.mismatch")
        d = f.descriptor; d.samplesPerPixel = 3
        #expect(Self.code { _ = try decodeJPEG(f.stream, d) } == "codec.mismatch")
        d = f.descriptor; d.bitsAllocated = 8; d.bitsStored = 8 // 16-bit samples do not fit
        #expect(Self.code { _ = try decodeJPEG(f.stream, d) } == "codec.mismatch")
        d = f.descriptor; d.bitsAllocated = 32; d.bitsStored = 32
        #expect(Self.code { _ = try decodeJPEG(f.stream, d) } == "codec.mismatch")
        // An output buffer smaller than the frame.
        let short = Self.code {
            var out = [UInt8](repeating: 0, count: f.descriptor.frameBytes - 1)
            _ = try f.stream.withUnsafeBytes { i in
                try out.withUnsafeMutableBytes { o in try SwiftJPEGCodec().decode(i, into: o, descriptor: f.descriptor) }
            }
        }
        #expect(short == "codec.mismatch")
    }

    @Test func unsupportedProcessesAreNamed() {
        for (sof, code) in [(UInt8(0xC2), "codec.unsupported"), (0xC9, "codec.unsupported"), (0xCB, "codec.unsupported"),
                            (0xC5, "codec.unsupported"), (0xC7, "codec.unsupported"), (0xCF, "codec.unsupported")] {
            #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 4, height: 4, sof: sof), Self.grey(4, 4)) } == code, "SOF \(sof)")
        }
    }

    @Test func badHuffmanTablesAreRefused() {
        // Three codes of length 1 cannot exist.
        let overfull: [UInt8] = [0x00, 3] + [UInt8](repeating: 0, count: 15) + [0, 1, 2]
        #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 4, height: 4, dht: overfull), Self.grey(4, 4)) } == "codec.corrupt")
        // Category 17 does not exist in lossless JPEG.
        let badSymbol: [UInt8] = [0x00, 1] + [UInt8](repeating: 0, count: 15) + [17]
        #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 4, height: 4, dht: badSymbol), Self.grey(4, 4)) } == "codec.corrupt")
        // More symbols declared than the segment holds.
        let short: [UInt8] = [0x00, 0, 200] + [UInt8](repeating: 0, count: 14) + [0]
        #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 4, height: 4, dht: short), Self.grey(4, 4)) } == "codec.corrupt")
        // The scan uses table 1, never defined.
        var missing = Self.lossless(width: 4, height: 4)
        let sos = missing.indices.first { missing[$0] == 0xFF && missing[$0 + 1] == 0xDA }!
        missing[sos + 6] = 0x10
        #expect(Self.code { _ = try decodeJPEG(missing, Self.grey(4, 4)) } == "codec.corrupt")
        // A code the table does not contain: only "0" is defined, the data is all ones.
        #expect(Self.code { _ = try decodeJPEG(Self.lossless(width: 4, height: 4, data: [0xFF, 0x00, 0xFF, 0x00]), Self.grey(4, 4)) } == "codec.corrupt")
    }

    @Test func missingQuantisationTableIsRefused() {
        var s = JPEGFixtures.named("extended8-q85-mr8").stream
        let dqt = s.indices.first { s[$0] == 0xFF && s[$0 + 1] == 0xDB }!
        let length = Int(s[dqt + 2]) << 8 | Int(s[dqt + 3])
        s.removeSubrange(dqt..<(dqt + 2 + length))
        #expect(Self.code { _ = try decodeJPEG(s, JPEGFixtures.named("extended8-q85-mr8").descriptor) } == "codec.corrupt")
    }

    @Test func garbageAndEmptyInputAreRefused() {
        #expect(Self.code { _ = try decodeJPEG([], Self.grey(4, 4)) } == "codec.corrupt")
        #expect(Self.code { _ = try decodeJPEG([0xFF, 0xD8], Self.grey(4, 4)) } == "codec.corrupt")
        #expect(Self.code { _ = try decodeJPEG([UInt8](repeating: 0xFF, count: 100), Self.grey(4, 4)) } == "codec.corrupt")
        #expect(Self.code { _ = try decodeJPEG([0xFF, 0xD8, 0xFF, 0xD9], Self.grey(4, 4)) } == "codec.corrupt")
        #expect(Self.code { _ = try decodeJPEG(Array("not a jpeg at all".utf8), Self.grey(4, 4)) } == "codec.corrupt")
    }
}

/// SplitMix64: a tiny deterministic generator so the mutation test is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
