import DICOMCodecs
import Foundation
import Testing
@testable import DICOM

/// The committed codec fixtures (scripts/make-codec-fixtures.sh) and pydicom 3.0.2's reading
/// of each (Resources/codecs/expected.json).
enum CodecFixtures {
    static let directory: URL = Bundle.module.url(forResource: "codecs", withExtension: nil)!

    nonisolated(unsafe) static let expected: [String: [String: Any]] = {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent("expected.json")),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]] else { return [:] }
        return obj
    }()

    static var names: [String] { expected.keys.sorted() }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(name)))
    }

    static func file(_ name: String) throws -> DICOMFile {
        try DICOMFile.read(try bytes(name))
    }

    /// pydicom's decoded array of a lossy fixture (little-endian bytes).
    static func reference(_ name: String) throws -> [UInt8] {
        let ref = try #require(expected[name]?["reference"] as? String)
        return try Inflate.raw(try bytes(ref), limit: 64 << 20, offset: 0)
    }

    /// Syntaxes whose decoder is the pure-Swift JPEG codec, registered by the lead; until then
    /// their fixtures must give `dicom.unsupportedTransferSyntax`.
    static let awaitingSwiftJPEG: Set<String> = ["1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"]
}

/// Largest absolute per-sample difference between two little-endian arrays of one dtype.
func maxAbsoluteDifference(_ a: [UInt8], _ b: [UInt8], dtype: String) -> Int {
    precondition(a.count == b.count)
    let width = dtype.hasSuffix("8") ? 1 : (dtype.hasSuffix("16") ? 2 : 4)
    let signed = dtype.hasPrefix("int")
    var worst = 0
    var i = 0
    while i < a.count {
        var x = 0, y = 0
        for k in 0..<width { x |= Int(a[i + k]) << (8 * k); y |= Int(b[i + k]) << (8 * k) }
        if signed {
            let bits = 8 * width
            if x >= 1 << (bits - 1) { x -= 1 << bits }
            if y >= 1 << (bits - 1) { y -= 1 << bits }
        }
        worst = max(worst, abs(x - y))
        i += width
    }
    return worst
}

@Suite("Codec fixtures against pydicom")
struct CodecFixtureTests {
    @Test("fixtures are present with pydicom's reading")
    func fixturesPresent() {
        #expect(CodecFixtures.names.count >= 40)
        let syntaxes = Set(CodecFixtures.expected.values.compactMap { $0["transfer_syntax"] as? String })
        for uid in ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90",
                    "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203"] {
            #expect(syntaxes.contains(uid), "no fixture for \(uid)")
        }
    }

    @Test("decoded pixels equal pydicom's (lossless: sha256; lossy: within 2 per sample)", arguments: CodecFixtures.names)
    func decodeMatchesPydicom(name: String) throws {
        let want = try #require(CodecFixtures.expected[name])
        let uid = try #require(want["transfer_syntax"] as? String)
        let file = try CodecFixtures.file(name)
        #expect(file.transferSyntax.uid == uid)
        let image: DecodedImage
        do {
            image = try file.decodePixels()
        } catch let error as DICOMError where CodecFixtures.awaitingSwiftJPEG.contains(uid) {
            // No codec for this stream yet: a typed refusal naming the syntax.
            #expect(error.code == DICOMError.unsupportedTransferSyntaxCode, "\(name): \(error)")
            #expect(error.message.contains(uid))
            return
        }
        #expect(image.shape == want["shape"] as? [Int], "\(name) shape")
        #expect(image.dtype == want["dtype"] as? String, "\(name) dtype")
        #expect(image.photometricInterpretation == want["photometric"] as? String, "\(name) photometric")
        let bytes = image.littleEndianBytes()
        let stats = image.statistics()
        if want["lossy"] as? Bool == true {
            let reference = try CodecFixtures.reference(name)
            #expect(bytes.count == reference.count, "\(name) size")
            guard bytes.count == reference.count else { return }
            let diff = maxAbsoluteDifference(bytes, reference, dtype: image.dtype)
            if let coded = want["coded_reference"] as? String {
                // The decoder's output (YCbCr) is within 2 of pydicom's decoder; the YCbCr -> RGB
                // conversion turns a 1-level difference in Y plus one in Cb/Cr into up to 3.
                let ours = try file.decodePixels(options: DecodeOptions(convertYBRToRGB: false)).littleEndianBytes()
                let theirs = try Inflate.raw(try CodecFixtures.bytes(coded), limit: 64 << 20, offset: 0)
                #expect(ours.count == theirs.count)
                if ours.count == theirs.count {
                    let codedDiff = maxAbsoluteDifference(ours, theirs, dtype: image.dtype)
                    #expect(codedDiff <= 2, "\(name): max difference \(codedDiff) from pydicom before colour conversion")
                }
                #expect(diff <= 3, "\(name): max difference \(diff) from pydicom after colour conversion")
            } else {
                #expect(diff <= 2, "\(name): max difference \(diff) from pydicom")
            }
            #expect(abs(stats.mean - (want["mean"] as? Double ?? .nan)) <= 1, "\(name) mean")
        } else {
            #expect(sha256Hex(bytes) == want["sha256"] as? String, "\(name) sha256")
            #expect(stats.min == want["min"] as? Double && stats.max == want["max"] as? Double, "\(name) min/max")
            #expect(jsonEqual(stats.mean, want["mean"]), "\(name) mean")
        }
    }

    @Test("one stream in every encapsulation decodes to the same pixels",
          arguments: [["jpeg50_multi_bot.dcm", "jpeg50_multi_frag_nobot.dcm", "jpeg50_multi_frag_bot.dcm", "jpeg50_multi_eot.dcm"],
                      ["j2k90_ct16_multi_bot.dcm", "j2k90_ct16_multi_frag_nobot.dcm", "j2k90_ct16_multi_eot.dcm"],
                      ["rle_rgb_multi.dcm", "rle_rgb_multi_eot.dcm"]])
    func encapsulationVariants(names: [String]) throws {
        let images = try names.map { try CodecFixtures.file($0).decodePixels() }
        for (name, image) in zip(names.dropFirst(), images.dropFirst()) {
            #expect(image == images[0], "\(name) differs from \(names[0])")
        }
        #expect(images[0].frames > 1)
    }

    @Test("the fragment variants are what they claim (tables, fragments per frame)")
    func variantsHaveTheirStructure() throws {
        let nobot = try #require(try CodecFixtures.file("jpeg50_multi_frag_nobot.dcm").dataSet[.pixelData]?.encapsulated)
        #expect(nobot.basicOffsetTable.isEmpty && nobot.fragments.count == 9)
        let bot = try #require(try CodecFixtures.file("jpeg50_multi_frag_bot.dcm").dataSet[.pixelData]?.encapsulated)
        #expect(bot.basicOffsetTable.count == 3 && bot.fragments.count == 9)
        let eotFile = try CodecFixtures.file("jpeg50_multi_eot.dcm")
        #expect(eotFile.dataSet[.extendedOffsetTable]?.bytes?.count == 24)
        #expect(eotFile.dataSet[.pixelData]?.encapsulated?.basicOffsetTable.isEmpty == true)
    }

    @Test("radgridctl inspect's pixel summary of a compressed file equals pydicom's")
    func inspectReportsCompressedPixels() throws {
        let name = "jls80_ct16.dcm"
        let want = try #require(CodecFixtures.expected[name])
        let (report, readable) = InspectReport.json(for: try CodecFixtures.bytes(name), digest: sha256Hex)
        #expect(readable)
        let pixelValue = try #require(report["pixel"])
        let pixel = try #require(foundationValue(pixelValue) as? [String: Any])
        for key in ["shape", "dtype", "sha256", "min", "max", "mean"] {
            #expect(jsonEqual(pixel[key], want[key]), "\(key): \(String(describing: pixel[key]))")
        }
    }

    @Test("the standard registry decodes the C-library syntaxes and leaves video undecodable")
    func registryCoverage() {
        let registry = CodecRegistry.standard
        for uid in ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                    "1.2.840.10008.1.2.4.203"] {
            #expect(registry.canDecode(uid), "\(uid)")
        }
        #expect(!registry.canDecode("1.2.840.10008.1.2.4.100"))
        #expect(!registry.canDecode("1.2.840.10008.1.2.4.107"))
    }
}
