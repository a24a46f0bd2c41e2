import DICOMCodecs
import Foundation
import Testing
@testable import DICOM

/// Damaged compressed pixel data: every case is a typed error (or, for damage a lossy
/// decoder cannot see, an image of the declared size), never a crash or a hang.
@Suite("Malformed compressed pixel data")
struct CodecMalformedTests {
    /// A fixture rewritten with its data set changed by `edit`.
    static func rewritten(_ name: String, _ edit: (inout DataSet) throws -> Void) throws -> DICOMFile {
        let file = try CodecFixtures.file(name)
        var ds = file.dataSet
        try edit(&ds)
        return try DICOMFile.read(try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: file.transferSyntax.uid))
    }

    /// A fixture with the fragments of its pixel data changed by `edit`.
    static func withFragments(_ name: String, _ edit: (inout EncapsulatedPixelData) -> Void) throws -> DICOMFile {
        try rewritten(name) { ds in
            var enc = try #require(ds[.pixelData]?.encapsulated)
            edit(&enc)
            ds.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(enc)))
        }
    }

    static func decodeError(_ file: DICOMFile) -> DICOMError? {
        #expect(throws: DICOMError.self) { try file.decodePixels() }
    }

    static let oneOfEachCodec = ["jpeg50_rgb_ybr422.dcm", "jpeg51_grey8.dcm", "jls80_ct16.dcm", "jls81_grey8_odd.dcm", "jls80_rgb_none_odd.dcm",
                                 "j2k90_ct16.dcm", "j2k91_rgb_ict.dcm", "htj2k201_u12.dcm", "htj2k203_u12.dcm"]

    @Test("a stream cut in half is codec.corrupt", arguments: oneOfEachCodec)
    func truncatedStream(name: String) throws {
        let file = try Self.withFragments(name) { enc in
            let f = enc.fragments[0]
            enc.fragments[0] = Array(f[0..<(f.count / 2 & ~1)])
        }
        let start = ContinuousClock.now
        let error = Self.decodeError(file)
        // A damaged stream fails fast (CharLS alone took seconds before the EOI guard).
        #expect(ContinuousClock.now - start < .seconds(1), "\(name)")
        #expect(error?.code == CodecError.Code.corrupt.rawValue, "\(name): \(String(describing: error))")
        #expect(error?.message.contains("frame 0") == true)
    }

    @Test("a stream cut inside its header is codec.corrupt", arguments: oneOfEachCodec)
    func truncatedHeader(name: String) throws {
        let file = try Self.withFragments(name) { enc in enc.fragments[0] = Array(enc.fragments[0][0..<40]) }
        #expect(Self.decodeError(file)?.code == CodecError.Code.corrupt.rawValue)
    }

    @Test("garbage instead of a stream is codec.corrupt", arguments: oneOfEachCodec)
    func garbageStream(name: String) throws {
        var rng = SeededGenerator(seed: 7)
        let file = try Self.withFragments(name) { enc in
            enc.fragments[0] = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        #expect(Self.decodeError(file)?.code == CodecError.Code.corrupt.rawValue)
    }

    @Test("an empty frame is codec.corrupt")
    func emptyFrame() throws {
        let file = try Self.withFragments("jls80_ct16.dcm") { enc in enc.fragments[0] = [] }
        #expect(Self.decodeError(file)?.code == CodecError.Code.corrupt.rawValue)
    }

    @Test("JPEG: a frame marker overwritten is refused")
    func corruptedJPEGMarker() throws {
        let file = try Self.withFragments("jpeg50_grey8_odd.dcm") { enc in
            var f = enc.fragments[0]
            let sof = f.indices.first { f[$0] == 0xFF && f[$0 + 1] == 0xC0 }!
            f[sof + 1] = 0x00  // FF 00 is no marker at all
            enc.fragments[0] = f
        }
        let error = Self.decodeError(file)
        #expect(error?.code == CodecError.Code.corrupt.rawValue)
        #expect(error?.message.contains("offset") == true)
    }

    @Test("JPEG: a segment length running past the stream is refused")
    func lyingJPEGSegmentLength() throws {
        let file = try Self.withFragments("jpeg50_rgb_ybr444.dcm") { enc in
            var f = enc.fragments[0]
            let dqt = f.indices.first { f[$0] == 0xFF && f[$0 + 1] == 0xDB }!
            f[dqt + 2] = 0xFF; f[dqt + 3] = 0xF0
            enc.fragments[0] = f
        }
        #expect(Self.decodeError(file)?.code == CodecError.Code.corrupt.rawValue)
    }

    @Test("JPEG 2000: a missing SIZ marker is refused")
    func corruptedSIZ() throws {
        let file = try Self.withFragments("j2k90_ct16.dcm") { enc in enc.fragments[0][3] = 0x00 }
        let error = Self.decodeError(file)
        #expect(error?.code == CodecError.Code.corrupt.rawValue)
        #expect(error?.message.contains("SIZ") == true)
    }

    @Test("JPEG 2000: a stream declaring 1x1 tiles is refused before OpenJPEG allocates them")
    func tileBomb() throws {
        let file = try Self.withFragments("j2k90_ct16.dcm") { enc in
            // SIZ: FF4F FF51 Lsiz(2) Rsiz(2) Xsiz Ysiz XOsiz YOsiz XTsiz YTsiz ...: XTsiz at byte 24.
            for i in 24..<32 { enc.fragments[0][i] = 0 }
            enc.fragments[0][27] = 1
            enc.fragments[0][31] = 1
        }
        let error = Self.decodeError(file)
        #expect(error?.code == CodecError.Code.limit.rawValue)
        #expect(error?.message.contains("tiles") == true)
    }

    @Test("a stream whose size differs from the data set is codec.mismatch", arguments: oneOfEachCodec)
    func sizeMismatch(name: String) throws {
        let file = try Self.rewritten(name) { ds in try ds.set(.rows, int: (ds.int(.rows) ?? 0) + 1) }
        let error = Self.decodeError(file)
        #expect(error?.code == CodecError.Code.mismatch.rawValue, "\(name): \(String(describing: error))")
    }

    @Test("a huge declared image with a small stream is refused from the header, before allocating")
    func hugeDeclaredSize() throws {
        for name in ["j2k90_ct16.dcm", "jls80_ct16.dcm", "jpeg50_grey8_odd.dcm"] {
            let file = try Self.rewritten(name) { ds in
                try ds.set(.rows, int: 20000)
                try ds.set(.columns, int: 20000)
            }
            let start = ContinuousClock.now
            let error = Self.decodeError(file)
            #expect(error?.code == CodecError.Code.mismatch.rawValue, "\(name)")
            // 800 MB would take far longer than this to allocate and clear.
            #expect(ContinuousClock.now - start < .milliseconds(200), "\(name)")
        }
    }

    @Test("components or precision that disagree with the data set are codec.mismatch")
    func componentAndPrecisionMismatch() throws {
        let colour = try Self.rewritten("jls80_ct16.dcm") { ds in
            try ds.set(.samplesPerPixel, int: 3)
            ds.set(.photometricInterpretation, "RGB")
        }
        #expect(Self.decodeError(colour)?.code == CodecError.Code.mismatch.rawValue)
        for name in ["j2k90_ct16.dcm", "jls80_ct16.dcm", "htj2k201_u12.dcm"] {
            let narrow = try Self.rewritten(name) { ds in
                try ds.set(.bitsAllocated, int: 8)
                try ds.set(.bitsStored, int: 8)
                try ds.set(.highBit, int: 7)
            }
            #expect(Self.decodeError(narrow)?.code == CodecError.Code.mismatch.rawValue, "\(name)")
        }
        let wide = try Self.rewritten("jpeg50_grey8_odd.dcm") { ds in
            try ds.set(.bitsAllocated, int: 16)
            try ds.set(.bitsStored, int: 12)
        }
        #expect(Self.decodeError(wide)?.code == CodecError.Code.mismatch.rawValue)
    }

    @Test("Number of Frames disagreeing with the offset tables or fragments is dicom.malformed")
    func frameCountMismatch() throws {
        let cases: [(String, Int)] = [
            ("jpeg50_multi_bot.dcm", 4),          // basic offset table has 3 entries
            ("jpeg50_multi_bot.dcm", 2),
            ("jpeg50_multi_eot.dcm", 4),          // extended offset table has 3 entries
            ("jpeg50_multi_frag_nobot.dcm", 2),   // end-of-image markers find 3 frames
            ("jpeg50_multi_frag_nobot.dcm", 12),  // fewer fragments than frames
            ("jls80_ct16.dcm", 2),                // 1 fragment, 2 frames
        ]
        for (name, frames) in cases {
            let file = try Self.rewritten(name) { ds in try ds.set(.numberOfFrames, int: frames) }
            let error = Self.decodeError(file)
            #expect(error?.code == DICOMError.malformedCode, "\(name) with \(frames) frames: \(String(describing: error))")
        }
    }

    @Test("offset tables that point nowhere or exceed their fragments are dicom.malformed")
    func lyingOffsetTables() throws {
        let badBOT = try Self.withFragments("jpeg50_multi_frag_bot.dcm") { enc in enc.basicOffsetTable[2] = enc.basicOffsetTable[1] }
        #expect(Self.decodeError(badBOT)?.code == DICOMError.malformedCode)
        let beyond = try Self.withFragments("jpeg50_multi_frag_bot.dcm") { enc in enc.basicOffsetTable[2] = 1 << 30 }
        #expect(Self.decodeError(beyond)?.code == DICOMError.malformedCode)
        let eotOffset = try Self.rewritten("jpeg50_multi_eot.dcm") { ds in
            var table = try #require(ds[.extendedOffsetTable]?.bytes)
            table[8] &+= 2  // frame 1's offset no longer lands on an item
            ds.set(.extendedOffsetTable, vr: .OV, bytes: table)
        }
        #expect(Self.decodeError(eotOffset)?.code == DICOMError.malformedCode)
        let eotLength = try Self.rewritten("jpeg50_multi_eot.dcm") { ds in
            var lengths = try #require(ds[.extendedOffsetTableLengths]?.bytes)
            lengths[1] &+= 1  // frame 0 claims 256 bytes more than its fragment
            ds.set(.extendedOffsetTableLengths, vr: .OV, bytes: lengths)
        }
        #expect(Self.decodeError(eotLength)?.code == DICOMError.malformedCode)
    }

    @Test("a fragment item whose length runs past the file is a typed read error")
    func lyingFragmentLength() throws {
        var bytes = try CodecFixtures.bytes("jls80_ct16.dcm")
        // The second item after (7FE0,0010) is the first fragment: FE FF 00 E0 + length.
        let pixel = try #require(bytes.indices.first { i in
            i + 12 < bytes.count && bytes[i] == 0xE0 && bytes[i + 1] == 0x7F && bytes[i + 2] == 0x10 && bytes[i + 3] == 0x00
        })
        let bot = pixel + 12
        let botLength = Int(bytes[bot + 4]) | Int(bytes[bot + 5]) << 8
        let fragment = bot + 8 + botLength
        #expect(bytes[fragment] == 0xFE && bytes[fragment + 2] == 0x00 && bytes[fragment + 3] == 0xE0)
        bytes[fragment + 6] = 0x7F  // length + 8 MiB
        let strict = #expect(throws: DICOMError.self) { try DICOMFile.read(bytes) }
        #expect(strict?.code == DICOMError.truncatedCode)
        // Read leniently, the cut-off fragment is an empty frame: a typed decode error.
        let lenient = try DICOMFile.read(bytes, options: ReadOptions(allowTruncated: true))
        #expect(throws: DICOMError.self) { try lenient.decodePixels() }
    }

    @Test("random damage inside the coded data never crashes and fails fast",
          arguments: ["jpeg50_rgb_ybr422.dcm", "jls80_ct16.dcm", "jls81_rgb_odd.dcm", "j2k90_ct16.dcm", "j2k91_rgb_ict.dcm", "htj2k202_rgb_rct.dcm"])
    func randomDamage(name: String) throws {
        let original = try CodecFixtures.file(name)
        let enc = try #require(original.dataSet[.pixelData]?.encapsulated)
        let declared = try original.decodePixels().storage.count
        var rng = SeededGenerator(seed: UInt64(name.utf8.count))
        var slowest: Duration = .zero
        for _ in 0..<60 {
            var damaged = enc
            var f = damaged.fragments[0]
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                f[Int.random(in: 2..<f.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            damaged.fragments[0] = f
            var ds = original.dataSet
            ds.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(damaged)))
            let file = try DICOMFile.read(try DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: original.transferSyntax.uid))
            let start = ContinuousClock.now
            defer { slowest = max(slowest, ContinuousClock.now - start) }
            do {
                let image = try file.decodePixels()
                #expect(image.storage.count == declared)
            } catch let error as DICOMError {
                #expect(error.code.hasPrefix("codec.") || error.code.hasPrefix("dicom."), "\(error)")
            }
        }
        #expect(slowest < .seconds(1), "\(name): slowest damaged decode took \(slowest)")
    }
}

/// A small deterministic generator (SplitMix64) so damage is the same on every run.
struct SeededGenerator: RandomNumberGenerator {
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
