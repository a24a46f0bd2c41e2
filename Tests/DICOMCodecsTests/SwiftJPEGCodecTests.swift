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
}
