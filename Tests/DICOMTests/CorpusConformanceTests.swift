import Foundation
import Testing
@testable import DICOM

/// Conformance against the pydicom 3.0.2 reference results in ../shared/corpus.
@Suite("Corpus conformance", .enabled(if: Corpus.isAvailable, "reference corpus not found (../shared/corpus)"))
struct CorpusConformanceTests {
    static let lossless: Set<String> = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5"]

    @Test("corpus has all 32 reference files")
    func corpusComplete() {
        #expect(Corpus.fileNames.count == 32)
    }

    @Test("tags, element counts and transfer syntax match pydicom", arguments: Corpus.fileNames)
    func tagsMatch(name: String) throws {
        let expected = try #require(Corpus.expected[name])
        let bytes = try Corpus.bytes(name)
        let (report, readable) = InspectReport.json(for: bytes, digest: sha256Hex)
        if expected["read_error"] != nil {
            // pydicom refuses these; we must not crash: either a clear error or a fuller read.
            if !readable {
                let code = report["error"]?["code"]
                #expect(code == .string(DICOMError.malformedCode) || code == .string(DICOMError.truncatedCode))
            } else {
                #expect(report["top_level_elements"] != nil)
            }
            return
        }
        #expect(readable, "\(name): \(report.serialized())")
        let ours = try #require(foundationValue(report) as? [String: Any])
        // The corpus's expected.json has the structural keywords; pydicom's reading of the
        // text keywords (PatientName, StudyDescription) for the same files is in our fixture
        // Resources/charset/corpus-text.json (scripts/make-charset-expected.py).
        let text = try #require(CharsetFixtures.corpusText[name], "\(name) missing from corpus-text.json: run scripts/make-charset-expected.py")
        func reference(_ key: String) -> Any? {
            let v = InspectReport.textKeywords.contains(key) ? text[key] : expected[key]
            return v is NSNull ? nil : v
        }
        for key in InspectReport.keywords + ["transfer_syntax", "top_level_elements"] {
            let want = reference(key)
            #expect(jsonEqual(ours[key], want), "\(name) \(key): ours \(String(describing: ours[key])) expected \(String(describing: want))")
        }
        // No keyword we report that pydicom does not.
        for key in InspectReport.keywords where ours[key] != nil {
            #expect(reference(key) != nil, "\(name): extra \(key)")
        }
    }

    /// Syntaxes decoded bit-exactly by any conforming decoder (JPEG-LS near-lossless too:
    /// its decoding process is fully specified), compared by sha256.
    static let exact: Set<String> = lossless.union(["1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                                                    "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201",
                                                    "1.2.840.10008.1.2.4.202"])

    @Test("pixel data matches pydicom (sha256 where decoding is exact, stats within tolerance for lossy JPEG/JPEG 2000)",
          arguments: Corpus.fileNames)
    func pixelsMatch(name: String) throws {
        let expected = try #require(Corpus.expected[name])
        guard expected["read_error"] == nil else { return }
        let file = try DICOMFile.read(try Corpus.bytes(name), options: InspectReport.readOptions)
        let ts = expected["transfer_syntax"] as? String ?? ""
        if let pixel = expected["pixel"] as? [String: Any] {
            let image: DecodedImage
            do {
                image = try file.decodePixels()
            } catch let error as DICOMError where CodecFixtures.awaitingSwiftJPEG.contains(ts) {
                // 12-bit JPEG Extended and JPEG Lossless wait for the Swift JPEG codec.
                #expect(error.code == DICOMError.unsupportedTransferSyntaxCode, "\(name): \(error)")
                #expect(error.message.contains(ts))
                return
            }
            let summary = try #require(foundationValue(InspectReport.pixelSummary(image, file: file, digest: sha256Hex)) as? [String: Any])
            #expect(summary["shape"] as? [Int] == pixel["shape"] as? [Int], "\(name) shape")
            #expect(summary["dtype"] as? String == pixel["dtype"] as? String, "\(name) dtype")
            if Self.exact.contains(ts) {
                #expect(summary["sha256"] as? String == pixel["sha256"] as? String, "\(name) sha256")
                for k in ["min", "max", "mean"] { #expect(jsonEqual(summary[k], pixel[k]), "\(name) \(k)") }
            } else {
                // Lossy: decoders may differ by a grey level or two per sample (IDCT, wavelet rounding).
                for k in ["min", "max"] {
                    let ours = try #require(summary[k] as? Double), theirs = try #require((pixel[k] as? NSNumber)?.doubleValue)
                    #expect(abs(ours - theirs) <= 2, "\(name) \(k): \(ours) vs \(theirs)")
                }
                let ours = try #require(summary["mean"] as? Double), theirs = try #require((pixel["mean"] as? NSNumber)?.doubleValue)
                #expect(abs(ours - theirs) <= 1, "\(name) mean: \(ours) vs \(theirs)")
            }
        } else if expected["pixel_error"] != nil {
            // pydicom could not decode these; we give a typed error or decode more.
            do {
                let image = try file.decodePixels()
                #expect(image.storage.count == image.rows * image.columns * image.frames * image.samplesPerPixel)
            } catch let e as DICOMError {
                #expect(e.code.hasPrefix("dicom.") || e.code.hasPrefix("codec."))
            }
        } else {
            #expect(!file.dataSet.contains(.pixelData))
        }
    }

    @Test("inspect's JSON pixel object for compressed corpus files equals expected.json's",
          arguments: ["MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPEGLSNearLossless_16.dcm"])
    func inspectCompressed(name: String) throws {
        let (report, readable) = InspectReport.json(for: try Corpus.bytes(name), digest: sha256Hex)
        #expect(readable)
        let pixelValue = try #require(report["pixel"], "\(name): \(report.serialized())")
        let ours = try #require(foundationValue(pixelValue) as? [String: Any])
        let theirs = try #require(Corpus.expected[name]?["pixel"] as? [String: Any])
        #expect(Set(ours.keys) == Set(theirs.keys))
        for (key, value) in theirs { #expect(jsonEqual(ours[key], value), "\(name) \(key)") }
    }

    @Test("deflated image_dfl.dcm: we decode what pydicom 3.0.2 could not (hash cross-checked against pydicom's raw PixelData)")
    func deflatedPixels() throws {
        let file = try DICOMFile.read(try Corpus.bytes("image_dfl.dcm"))
        #expect(file.transferSyntax.isDeflated)
        let image = try file.decodePixels()
        #expect(image.shape == [512, 512])
        #expect(sha256Hex(image.littleEndianBytes()) == "1f5f1b1c1a57606a55d7e4212ee2655c8205b45e264bd55057f7388c258deef8")
    }

    @Test("truncated corpus files: strict read is dicom.truncated, lenient read matches pydicom", arguments: ["MR_truncated.dcm", "rtplan_truncated.dcm"])
    func truncatedFiles(name: String) throws {
        let bytes = try Corpus.bytes(name)
        let error = #expect(throws: DICOMError.self) { try DICOMFile.read(bytes) }
        #expect(error?.code == DICOMError.truncatedCode)
        let lenient = try DICOMFile.read(bytes, options: ReadOptions(allowTruncated: true))
        #expect(lenient.truncation?.code == DICOMError.truncatedCode)
        #expect(lenient.dataSet.count == Corpus.expected[name]?["top_level_elements"] as? Int)
    }

    @Test("header-only read of CT_small.dcm gives the routing attributes without pixel data")
    func headerOnlyCorpus() throws {
        let file = try DICOMFile.read(try Corpus.bytes("CT_small.dcm"), options: .headerOnly)
        #expect(file.dataSet.string(.studyInstanceUID) == "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322")
        #expect(file.dataSet.string(.modality) == "CT")
        // 258 minus Pixel Data and the trailing (FFFC,FFFC) padding: pydicom stop_before_pixels also gives 256.
        #expect(file.dataSet.count == 256)
        #expect(!file.dataSet.contains(.pixelData))
    }
}
