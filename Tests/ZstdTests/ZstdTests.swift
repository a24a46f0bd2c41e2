import Testing
import Zstd

@Suite struct ZstdTests {
    @Test(arguments: [1, 3, 19])
    func randomBytesRoundTrip(level: Int) throws {
        var generator = TestRandom(seed: UInt64(level))
        let input = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let compressed = try Zstd.compress(input, level: level)
        #expect(try Zstd.declaredSize(compressed) == UInt64(input.count))
        #expect(try Zstd.decompress(compressed) == input)
    }

    @Test func ctLikeSixteenBitDataCompressesAndRoundTrips() throws {
        // A 512×512 int16 slice: air at -1024 HU around a disc of soft tissue with noise.
        var generator = TestRandom(seed: 42)
        var slice = [UInt8]()
        slice.reserveCapacity(512 * 512 * 2)
        for y in 0..<512 {
            for x in 0..<512 {
                let dx = x - 256, dy = y - 256
                let inside = dx * dx + dy * dy < 200 * 200
                let noise = Int(generator.next() % 21) - 10
                let hu = (inside ? 40 : -1024) + noise
                let stored = UInt16(bitPattern: Int16(hu + 1024))
                slice.append(UInt8(stored & 0xff))
                slice.append(UInt8(stored >> 8))
            }
        }
        let compressed = try Zstd.compress(slice, level: 3)
        #expect(compressed.count < slice.count / 2)
        var reused = [UInt8](repeating: 7, count: 10)
        try Zstd.decompress(compressed, into: &reused)
        #expect(reused == slice)
    }

    @Test func streamingMatchesOneShot() throws {
        var generator = TestRandom(seed: 9)
        let input = (0..<1_000_000).map { _ in UInt8(truncatingIfNeeded: generator.next() % 7) }
        let stream = try ZstdCompressionStream(level: 5)
        var compressed: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let end = min(offset + 65_537, input.count)
            try stream.compress(Array(input[offset..<end]), into: &compressed)
            offset = end
        }
        try stream.finish(into: &compressed)
        // Streamed frames carry no content size: decompression takes the capped stream path.
        #expect(try Zstd.declaredSize(compressed) == nil)
        #expect(try Zstd.decompress(compressed) == input)

        let decoder = try ZstdDecompressionStream()
        var output: [UInt8] = []
        for start in stride(from: 0, to: compressed.count, by: 1000) {
            try decoder.decompress(Array(compressed[start..<min(start + 1000, compressed.count)]), into: &output)
        }
        try decoder.finish()
        #expect(output == input)
    }

    @Test func bombThatDeclaresHugeSizeIsRejectedBeforeAllocating() throws {
        // 64 MiB of zeros compresses to a few KB; the frame declares its real size.
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let bomb = try Zstd.compress(zeros, level: 1)
        #expect(bomb.count < 10_000)
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(bomb, maxOutputSize: 1 << 20) }
        #expect(error?.code == "zstd.tooLarge")
    }

    @Test func bombWithoutDeclaredSizeStopsAtTheLimit() throws {
        // A streamed frame does not declare its size: the cap must hold while decoding.
        let stream = try ZstdCompressionStream(level: 1)
        var bomb: [UInt8] = []
        let block = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<256 { try stream.compress(block, into: &bomb) }  // 256 MiB of zeros
        try stream.finish(into: &bomb)
        #expect(bomb.count < 100_000)
        let decoder = try ZstdDecompressionStream(maxOutputSize: 4 << 20)
        var output: [UInt8] = []
        let error = #expect(throws: ZstdError.self) { try decoder.decompress(bomb, into: &output) }
        #expect(error?.code == "zstd.tooLarge")
        #expect(output.count <= 4 << 20)
    }

    @Test func handCraftedFrameClaimingTenGigabytesIsRejected() throws {
        // Frame header: magic, descriptor with an 8-byte content size field, single segment.
        var frame: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD, 0xE0]
        let tenGB: UInt64 = 10 << 30
        for shift in stride(from: 0, to: 64, by: 8) { frame.append(UInt8(truncatingIfNeeded: tenGB >> UInt64(shift))) }
        frame += [UInt8](repeating: 0, count: 1000)
        #expect(try Zstd.declaredSize(frame) == tenGB)
        let error = #expect(throws: ZstdError.self) { try Zstd.decompress(frame) }
        #expect(error?.code == "zstd.tooLarge")
    }

    @Test func corruptAndTruncatedFramesGiveClearErrors() throws {
        let input = [UInt8]((0..<50_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let compressed = try Zstd.compress(input, checksum: true)

        var flipped = compressed
        flipped[compressed.count / 2] ^= 0x5A
        let corrupt = #expect(throws: ZstdError.self) { try Zstd.decompress(flipped) }
        #expect(corrupt?.code == "zstd.corrupt")

        let truncated = #expect(throws: ZstdError.self) { try Zstd.decompress(Array(compressed.prefix(compressed.count - 10))) }
        #expect(truncated?.code == "zstd.truncated")

        let notZstd = #expect(throws: ZstdError.self) { try Zstd.decompress(Array("DICM not a frame".utf8)) }
        #expect(notZstd?.code == "zstd.corrupt")

        // Damage only the 4-byte checksum: the data decodes but must not be accepted.
        var badChecksum = compressed
        badChecksum[badChecksum.count - 1] ^= 0xFF
        let checksum = #expect(throws: ZstdError.self) { try Zstd.decompress(badChecksum) }
        #expect(checksum?.code == "zstd.corrupt")
    }

    @Test func invalidLevelIsRejected() {
        #expect(throws: ZstdError.self) { try Zstd.compress([1, 2, 3], level: 1000) }
    }
}

struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x1234_5678 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
