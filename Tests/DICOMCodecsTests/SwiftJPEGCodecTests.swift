import DICOMCodecs
import Foundation
import Testing

/// Every fixture stream against the reference's decoding (pydicom 3.0.2 + pylibjpeg-libjpeg,
/// or dcmtk = GDCM where the reference is known wrong: see expected.json's reference_decoder).
@Suite struct SwiftJPEGCodecTests {
    static let decodable = JPEGFixtures.all.filter { $0.expect_error == nil }

    @Test func transferSyntaxes() {
        #expect(Set(SwiftJPEGCodec().transferSyntaxes) == ["1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"])
    }

    @Test func testHelpersAgreeWithKnownValues() throws {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Self.decodable.count >= 25)
    }

    @Test(arguments: SwiftJPEGCodecTests.decodable.filter { !$0.lossy })
    func losslessIsBitExact(_ fixture: JPEGFixture) throws {
        let (pixels, _) = try decodeJPEG(fixture.stream, fixture.descriptor)
        #expect(pixels.count == fixture.descriptor.frameBytes)
        #expect(SHA256.hex(pixels) == fixture.sha256, "\(fixture.name): decoded frame differs from the reference")
        let stats = sampleStatistics(pixels, dtype: fixture.dtype!)
        #expect(stats.min == fixture.min && stats.max == fixture.max)
        #expect(abs(stats.mean - fixture.mean!) < 1e-9)
    }

    @Test(arguments: SwiftJPEGCodecTests.decodable.filter { $0.lossy })
    func lossyIsWithinTwoGreyLevels(_ fixture: JPEGFixture) throws {
        let (pixels, _) = try decodeJPEG(fixture.stream, fixture.descriptor)
        let reference = try #require(fixture.referenceArray)
        #expect(SHA256.hex(reference) == fixture.sha256, "reference array of \(fixture.name) does not match its digest")
        let ours = samples(pixels, dtype: fixture.dtype!), theirs = samples(reference, dtype: fixture.dtype!)
        try #require(ours.count == theirs.count)
        var maxDifference = 0, differing = 0
        for i in ours.indices {
            let d = abs(ours[i] - theirs[i])
            maxDifference = max(maxDifference, d)
            if d != 0 { differing += 1 }
        }
        // The contract is ≤ 2; the fixed-point IDCT and upsampling follow the reference's
        // arithmetic and measure 0 on every fixture, so any difference is a regression.
        #expect(maxDifference <= 2, "\(fixture.name): max difference \(maxDifference)")
        #expect(differing == 0, "\(fixture.name): \(differing) samples differ (max \(maxDifference))")
    }

    @Test(arguments: JPEGFixtures.all.filter { $0.expect_error != nil })
    func refusedStreams(_ fixture: JPEGFixture) {
        #expect {
            _ = try decodeJPEG(fixture.stream, fixture.descriptor)
        } throws: { error in
            (error as? CodecError)?.code == fixture.expect_error
        }
    }

    @Test func colourFollowsPydicom() throws {
        // YCbCr streams declared YBR_FULL(_422): converted to RGB, as pydicom's pixel_array does.
        for name in ["extended8-422-rgb", "extended8-444-rgb", "extended8-411-rgb", "edge-dct-420-restart", "edge-dct-noninterleaved"] {
            let f = JPEGFixtures.named(name)
            #expect(try decodeJPEG(f.stream, f.descriptor).colour == .convertedToRGB, "\(name)")
        }
        // RGB streams declared RGB: untouched.
        for name in ["lossless-sv1-rgb", "extended8-rgbspace-rgb", "lossless-sv1-rgb16"] {
            let f = JPEGFixtures.named(name)
            #expect(try decodeJPEG(f.stream, f.descriptor).colour == .asDeclared, "\(name)")
        }
        // A stream whose component ids spell "RGB" is RGB whatever the data set says
        // (pydicom conforms the photometric interpretation the same way).
        let rgbIDs = JPEGFixtures.named("edge-lossless-rgb-restart")
        var ybr = rgbIDs.descriptor
        ybr.photometricInterpretation = "YBR_FULL"
        let asYBR = try decodeJPEG(rgbIDs.stream, ybr)
        #expect(asYBR.colour == .convertedToRGB)
        #expect(SHA256.hex(asYBR.pixels) == rgbIDs.sha256)
        // 16-bit colour is never converted (pydicom's conversion is 8-bit only).
        let rgb16 = JPEGFixtures.named("lossless-sv1-rgb16")
        var ybr16 = rgb16.descriptor
        ybr16.photometricInterpretation = "YBR_FULL"
        #expect(SHA256.hex(try decodeJPEG(rgb16.stream, ybr16).pixels) == rgb16.sha256)
    }

    @Test func signedOutputIsSignExtendedFromBitsStored() throws {
        // The 12-bit lossless stream read as signed 12-bit: values ≥ 2048 become negative in 16 bits.
        let f = JPEGFixtures.named("edge-lossless-12in16")
        var signed = f.descriptor
        signed.isSigned = true
        let unsignedValues = samples(try decodeJPEG(f.stream, f.descriptor).pixels, dtype: "uint16")
        let signedValues = samples(try decodeJPEG(f.stream, signed).pixels, dtype: "int16")
        #expect(unsignedValues.contains { $0 >= 2048 })
        for (u, s) in zip(unsignedValues, signedValues) {
            #expect(s == (u >= 2048 ? u - 4096 : u))
        }
    }

    @Test func missingEOIStillDecodes() throws {
        let f = JPEGFixtures.named("lossless-p4-mr")
        var stream = f.stream
        #expect(stream.suffix(2) == [0xFF, 0xD9])
        stream.removeLast(2)
        #expect(SHA256.hex(try decodeJPEG(stream, f.descriptor).pixels) == f.sha256)
        // Trailing padding after EOI (DICOM fragments are even-length) is ignored.
        #expect(SHA256.hex(try decodeJPEG(f.stream + [0], f.descriptor).pixels) == f.sha256)
    }

    /// A frame height of 0 with the line count in a DNL segment. The reference decoder
    /// refuses DNL in lossless scans (and IJG has no DNL), so the check is that the DNL form
    /// of a reference-validated stream decodes to the same frame.
    @Test func heightFromDNL() throws {
        let f = JPEGFixtures.named("edge-precision2")
        var s = f.stream
        let sof = s.indices.first { s[$0] == 0xFF && s[$0 + 1] == 0xC3 }!
        s[sof + 5] = 0
        s[sof + 6] = 0
        let dnl: [UInt8] = [0xFF, 0xDC, 0x00, 0x04, 0x00, UInt8(f.rows)]
        s.insert(contentsOf: dnl, at: s.count - 2)
        #expect(SHA256.hex(try decodeJPEG(s, f.descriptor).pixels) == f.sha256)
        // A DNL that disagrees with the data set's Rows is refused.
        var lying = s
        lying[lying.count - 3] = UInt8(f.rows + 1)
        #expect(throws: CodecError.self) { _ = try decodeJPEG(lying, f.descriptor) }
    }

    /// The committed JPGExtended codestream decodes to the digest the shared corpus records
    /// for JPGExtended.dcm (when ../shared/corpus is present).
    @Test(.enabled(if: SwiftJPEGCodecTests.corpusJPGExtended != nil))
    func corpusJPGExtendedMatchesCorpusDigest() throws {
        let corpus = try #require(Self.corpusJPGExtended)
        let f = JPEGFixtures.named("real-extended12")
        #expect(corpus.rows == f.rows && corpus.columns == f.columns)
        #expect(SHA256.hex(try decodeJPEG(f.stream, f.descriptor).pixels) == corpus.sha256)
    }

    struct CorpusEntry: Sendable { let rows: Int, columns: Int, sha256: String }

    static let corpusJPGExtended: CorpusEntry? = {
        // Tests/DICOMCodecsTests/<file> -> package root -> ../shared/corpus
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = ProcessInfo.processInfo.environment["RADGRID_CORPUS_DIR"].map { URL(fileURLWithPath: $0) }
            ?? root.deletingLastPathComponent().appendingPathComponent("shared/corpus")
        guard let data = try? Data(contentsOf: dir.appendingPathComponent("dicom/expected.json")),
              let all = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let entry = all["JPGExtended.dcm"] as? [String: Any], let pixel = entry["pixel"] as? [String: Any],
              let rows = entry["Rows"] as? Int, let columns = entry["Columns"] as? Int, let sha = pixel["sha256"] as? String
        else { return nil }
        return CorpusEntry(rows: rows, columns: columns, sha256: sha)
    }()
}
