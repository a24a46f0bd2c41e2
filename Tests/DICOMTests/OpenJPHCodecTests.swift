import DICOMCodecs
import Foundation
import Testing
@testable import DICOM

/// OpenJPH in front of OpenJPEG for HTJ2K: the same pixels as pydicom (whose plugin is
/// OpenJPEG), and every stream OpenJPH should not take handed to OpenJPEG.
@Suite("OpenJPH HTJ2K codec")
struct OpenJPHCodecTests {
    static let htFixtures = CodecFixtures.names.filter { $0.hasPrefix("htj2k") }
    static let openJPHOnly = DecodeOptions(codecs: CodecRegistry([OpenJPHCodec()]))
    static let openJPEGOnly = DecodeOptions(codecs: CodecRegistry([JPEG2000Codec(decodesHighThroughput: true)]))

    @Test("OpenJPH alone decodes every HTJ2K fixture as pydicom does", arguments: htFixtures)
    func decodesFixture(name: String) throws {
        let want = try #require(CodecFixtures.expected[name])
        let file = try CodecFixtures.file(name)
        // OpenJPH only: a refusal would be dicom.unsupportedTransferSyntax, not a fallback.
        let image = try file.decodePixels(options: Self.openJPHOnly)
        #expect(image.photometricInterpretation == want["photometric"] as? String)
        let bytes = image.littleEndianBytes()
        if want["lossy"] as? Bool == true {
            let reference = try CodecFixtures.reference(name)
            #expect(bytes.count == reference.count)
            if bytes.count == reference.count {
                #expect(maxAbsoluteDifference(bytes, reference, dtype: image.dtype) <= 1, "\(name) differs from pydicom by more than 1")
            }
        } else {
            #expect(sha256Hex(bytes) == want["sha256"] as? String, "\(name) sha256")
            #expect(image == (try file.decodePixels(options: Self.openJPEGOnly)), "\(name): OpenJPH and OpenJPEG disagree")
        }
    }

    static func firstFrame(_ name: String) throws -> (FrameDescriptor, [UInt8]) {
        let file = try CodecFixtures.file(name)
        let ds = file.dataSet
        let enc = try #require(ds[.pixelData]?.encapsulated)
        let d = FrameDescriptor(rows: ds.int(.rows)!, columns: ds.int(.columns)!, samplesPerPixel: ds.int(.samplesPerPixel)!,
                                bitsAllocated: ds.int(.bitsAllocated)!, bitsStored: ds.int(.bitsStored)!,
                                isSigned: ds.int(.pixelRepresentation) == 1,
                                photometricInterpretation: ds.string(.photometricInterpretation)!)
        let frames = (ds.int(.numberOfFrames) ?? 1) > 1 ? enc.fragments : [enc.fragments.flatMap { $0 }]
        return (d, frames[0])
    }

    @Test("a cut-off HTJ2K stream is corrupt, alone and through the registry")
    func truncatedStreamFallsBack() throws {
        let (d, stream) = try Self.firstFrame("htj2k201_u12.dcm")
        var output = [UInt8](repeating: 0, count: d.frameBytes)
        for cut in [stream.count - 2, stream.count / 2] {
            let head = Array(stream.prefix(cut))
            do {
                _ = try head.withUnsafeBytes { input in
                    try output.withUnsafeMutableBytes { out in try OpenJPHCodec().decode(input, into: out, descriptor: d) }
                }
                Issue.record("OpenJPH decoded a stream cut at \(cut) of \(stream.count) bytes")
            } catch let error as CodecError {
                #expect(error.codeValue == .corrupt, "cut at \(cut): \(error)")
            }
            do {
                _ = try head.withUnsafeBytes { input in
                    try output.withUnsafeMutableBytes { out in
                        try CodecRegistry.standard.decode(transferSyntax: JPEG2000Codec.htLossless, input, into: out, descriptor: d)
                    }
                }
                Issue.record("cut at \(cut) decoded")
            } catch let error as CodecError {
                #expect(error.codeValue == .corrupt, "cut at \(cut): \(error)")
            }
        }
    }

    @Test("a Part 1 codestream and a SIZ that disagrees with the data set")
    func refusals() throws {
        let (d, part1) = try Self.firstFrame("j2k90_u12.dcm")
        var output = [UInt8](repeating: 0, count: d.frameBytes)
        do {
            _ = try part1.withUnsafeBytes { input in
                try output.withUnsafeMutableBytes { out in try OpenJPHCodec().decode(input, into: out, descriptor: d) }
            }
            Issue.record("OpenJPH took a Part 1 codestream")
        } catch let error as CodecError {
            #expect(error.codeValue == .unsupported)
        }
        // Registered for the HTJ2K syntax anyway, the registry passes it to OpenJPEG.
        let viaRegistry = try part1.withUnsafeBytes { input in
            try output.withUnsafeMutableBytes { out in
                try CodecRegistry.standard.decode(transferSyntax: JPEG2000Codec.htLossless, input, into: out, descriptor: d)
            }
        }
        #expect(viaRegistry == .asDeclared)

        let (htD, ht) = try Self.firstFrame("htj2k201_u12.dcm")
        var wrong = htD
        wrong.rows *= 1000
        do {
            try ht.withUnsafeBytes { input in try OpenJPHCodec().validate(input, descriptor: wrong) }
            Issue.record("a SIZ of \(htD.rows) rows passed for \(wrong.rows)")
        } catch let error as CodecError {
            #expect(error.codeValue == .mismatch)
            #expect(error.message.contains("\(wrong.rows)"))
        }
    }
}
