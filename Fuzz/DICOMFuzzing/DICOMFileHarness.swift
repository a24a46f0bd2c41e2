#if canImport(Glibc)
import Glibc
#endif
import DICOM
import DICOMCodecs

// Harness 1: whole files through the reader, the character-set decoders, the inspect report
// and the pixel decoder (native, RLE and every codec), as the gateway and the workers use them.
// Linked as `fuzz-dicom` (scripts/fuzz-dicom.sh); the input is a DICOM file.

/// The harness's cap on a decoded array. Codec working memory is at most a few times the
/// frame (e.g. 32-bit sample planes), so with libFuzzer's -malloc_limit_mb above that, any
/// allocation the declared image size does not bound shows up as a crash.
let fuzzMaxOutputBytes = 16 << 20
let fuzzDecodeOptions = DecodeOptions(maxOutputBytes: fuzzMaxOutputBytes)

@_cdecl("radgrid_fuzz_dicom_file")
public func fuzzDICOMFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    let inflateLimit = fuzzMaxOutputBytes
    let lenient = ReadOptions(allowTruncated: true, maxInflatedBytes: inflateLimit)

    // The lenient read keeps the most; its person names are what no message may repeat.
    var probes = PatientDataProbes()
    var lenientFile: DICOMFile?
    do {
        let file = try DICOMFile.read(bytes, options: lenient)
        probes = PatientDataProbes(from: file.dataSet)
        lenientFile = file
    } catch {
        checkDICOMFailure(error, "lenient read", probes)
    }

    // A strict read that succeeds met no truncation: the lenient read got the same data set.
    do {
        let strict = try DICOMFile.read(bytes, options: ReadOptions(maxInflatedBytes: inflateLimit))
        guard let lenientFile, lenientFile.truncation == nil, lenientFile.dataSet == strict.dataSet else {
            propertyFailed("strict read succeeded where the lenient read failed, truncated or differs")
        }
    } catch {
        checkDICOMFailure(error, "strict read", probes)
    }

    do {
        let header = try DICOMFile.read(bytes, options: ReadOptions(stopBeforePixelData: true, maxInflatedBytes: inflateLimit))
        if header.dataSet.contains(.pixelData) { propertyFailed("header-only read returned pixel data") }
    } catch {
        checkDICOMFailure(error, "header-only read", probes)
    }

    guard let file = lenientFile else { return 0 }
    exerciseText(file.dataSet, depth: 0)
    exercisePixels(file, probes)
    return 0
}

/// Every value through the character-set and number decoders, items included.
func exerciseText(_ ds: DataSet, depth: Int) {
    for e in ds.elements {
        _ = ds.string(e.tag)
        _ = ds.strings(e.tag)
        _ = ds.personNames(e.tag)
        _ = ds.doubles(e.tag)
        _ = ds.ints(e.tag)
        _ = ds.date(e.tag)
        if depth < 8, let items = ds.sequence(e.tag) {
            for item in items.prefix(16) { exerciseText(item, depth: depth + 1) }
        }
    }
}

/// The Image Pixel module as the decoder reads it, when it is complete.
struct DeclaredImage {
    let rows: Int, columns: Int, samples: Int, frames: Int, bitsAllocated: Int

    init?(_ ds: DataSet) {
        guard let rows = ds.int(.rows), let columns = ds.int(.columns), let samples = ds.int(.samplesPerPixel),
              let bitsAllocated = ds.int(.bitsAllocated) else { return nil }
        self.rows = rows
        self.columns = columns
        self.samples = samples
        self.bitsAllocated = bitsAllocated
        frames = max(1, ds.int(.numberOfFrames) ?? 1)
    }

    /// Values of the decoded array, nil when out of range or overflowing.
    var values: Int? {
        guard rows >= 0, columns >= 0, samples >= 0 else { return nil }
        let (a, o1) = rows.multipliedReportingOverflow(by: columns)
        let (b, o2) = a.multipliedReportingOverflow(by: samples)
        let (c, o3) = b.multipliedReportingOverflow(by: frames)
        return o1 || o2 || o3 ? nil : c
    }
}

func exercisePixels(_ file: DICOMFile, _ probes: PatientDataProbes) {
    var checked = true
    do {
        try file.checkPixelsDecodable(options: fuzzDecodeOptions)
    } catch {
        checked = false
        checkDICOMFailure(error, "checkPixelsDecodable", probes)
    }

    guard file.dataSet.contains(.pixelData) else { return }
    do {
        let image = try file.decodePixels(options: fuzzDecodeOptions)
        // The gateway's door check must not refuse what decodes.
        if !checked { propertyFailed("decodePixels succeeded where checkPixelsDecodable refused") }
        guard let declared = DeclaredImage(file.dataSet), let values = declared.values else {
            propertyFailed("decodePixels succeeded without a complete Image Pixel module")
        }
        guard image.rows == declared.rows, image.columns == declared.columns, image.samplesPerPixel == declared.samples,
              image.frames == declared.frames, image.bitsAllocated == declared.bitsAllocated else {
            propertyFailed("decoded image \(image.shape) x \(image.bitsAllocated) bits differs from the declared "
                + "\(declared.frames) x \(declared.rows) x \(declared.columns) x \(declared.samples) x \(declared.bitsAllocated) bits")
        }
        guard image.storage.count == values else {
            propertyFailed("decoded array has \(image.storage.count) values, the data set declares \(values)")
        }
        let width: Int
        switch image.storage {
        case .uint8, .int8: width = 1
        case .uint16, .int16: width = 2
        case .uint32, .int32: width = 4
        }
        let expectedWidth = declared.bitsAllocated == 1 ? 1 : declared.bitsAllocated / 8
        guard width == expectedWidth, image.littleEndianBytes().count == values * width else {
            propertyFailed("decoded \(image.dtype) for Bits Allocated \(declared.bitsAllocated)")
        }
        _ = image.statistics()
    } catch {
        checkDICOMFailure(error, "decodePixels", probes)
    }

    // The inspect report decodes with the default (1 GiB) cap: only for images the harness's cap allows.
    if let declared = DeclaredImage(file.dataSet), let values = declared.values,
       values <= fuzzMaxOutputBytes / max(1, declared.bitsAllocated / 8) {
        let report = InspectReport.json(for: file, digest: { String($0.count) })
        if case .string(let message)? = report["pixel_error"] { checkMessage(message, "InspectReport pixel_error", probes) }
        _ = report.serialized()
    }
}

/// Writes seeds into $RADGRID_FUZZ_SEED_DIR: data sets made with the writer (native, RLE,
/// multi-frame, text in several character sets), and each file of the seed sources as it is
/// and with planted patient data.
@_cdecl("radgrid_fuzz_dicom_init")
public func fuzzDICOMInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let dir = FuzzFiles.environment("RADGRID_FUZZ_SEED_DIR") else { return 0 }
    var written = 0
    for (name, bytes) in DICOMSeeds.writerMade() {
        FuzzFiles.write(bytes, to: "\(dir)/writer-\(name).dcm")
        written += 1
    }
    for source in FuzzFiles.seedSources {
        for path in FuzzFiles.list(source, suffixes: [".dcm", ".DCM"]) {
            guard let bytes = FuzzFiles.read(path, limit: FuzzFiles.maxSeedBytes) else { continue }
            let name = FuzzFiles.baseName(path)
            FuzzFiles.write(bytes, to: "\(dir)/\(name)")
            written += 1
            if let planted = DICOMSeeds.withPlantedPatientData(bytes) {
                FuzzFiles.write(planted, to: "\(dir)/phi-\(name)")
                written += 1
            }
        }
    }
    printToStderr("DICOMFuzzing: \(written) DICOM seeds in \(dir)\n")
    return 0
}

enum DICOMSeeds {
    static func planted(_ ds: inout DataSet) {
        ds.set(.patientName, seededPatientData[0])
        ds.set(.patientID, seededPatientData[1])
        ds.set(.studyDescription, seededPatientData[2])
    }

    /// `bytes` rewritten (Explicit VR Little Endian, compressed pixel data kept) with the
    /// planted patient data, nil when it does not read.
    static func withPlantedPatientData(_ bytes: [UInt8]) -> [UInt8]? {
        guard let file = try? DICOMFile.read(bytes, options: ReadOptions(allowTruncated: true)) else { return nil }
        var ds = file.dataSet
        planted(&ds)
        return try? DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: file.transferSyntax.isEncapsulated ? file.transferSyntax.uid : nil)
    }

    static func writerMade() -> [(String, [UInt8])] {
        var seeds: [(String, [UInt8])] = []
        func add(_ name: String, _ ds: DataSet, syntax: String? = nil) {
            if let bytes = try? DICOMWriter.write(ds, encapsulatedTransferSyntaxUID: syntax) { seeds.append((name, bytes)) }
        }

        var ct = DataSet()
        ct.set(.sopInstanceUID, "2.25.1")
        ct.set(.modality, "CT")
        planted(&ct)
        try? ct.set(.imagePositionPatient, doubles: [1.5, -2, 3])
        var item = DataSet()
        item.set(Tag(0x0008, 0x1155), "2.25.2")
        item.set(.patientName, "Fuzz^Seed^Item")
        ct.set(Tag(0x0008, 0x1140), sequence: [item, item])
        try? ct.setPixelData(.int16([-1000, 0, 1000, 2000, 3000, 4000]), rows: 2, columns: 3, bitsStored: 12)
        add("ct-int16", ct)

        var rgb = DataSet()
        planted(&rgb)
        try? rgb.setPixelData(.uint8(Array(0..<24)), rows: 2, columns: 2, frames: 2, samplesPerPixel: 3, photometricInterpretation: "YBR_FULL")
        add("ybr-2frames", rgb)

        var planar = DataSet()
        try? planar.setPixelData(.uint16(Array(0..<12)), rows: 2, columns: 2, samplesPerPixel: 3, photometricInterpretation: "RGB")
        try? planar.set(.planarConfiguration, int: 1)
        add("rgb16-planar", planar)

        var ybr422 = DataSet()
        try? ybr422.setPixelData(.uint8(Array(0..<24)), rows: 2, columns: 4, samplesPerPixel: 3, photometricInterpretation: "YBR_FULL_422")
        add("ybr422", ybr422)

        var bits = DataSet()
        try? bits.setPixelData(.uint8([0b1010_0101, 0xFF]), rows: 4, columns: 4)
        try? bits.set(.bitsAllocated, int: 1)
        try? bits.set(.bitsStored, int: 1)
        try? bits.set(.highBit, int: 0)
        add("bits1", bits)

        var int32 = DataSet()
        try? int32.setPixelData(.int32([-70000, 5, 70000, 1 << 30]), rows: 2, columns: 2, bitsStored: 24)
        add("int32", int32)

        // RLE: one frame of two segments (16-bit), and two frames with a Basic Offset Table.
        func rleFrame(segments: [[UInt8]]) -> [UInt8] {
            var header = [UInt8](repeating: 0, count: 64)
            header[0] = UInt8(segments.count)
            var offset = 64
            for (i, s) in segments.enumerated() {
                for k in 0..<4 { header[4 + 4 * i + k] = UInt8(truncatingIfNeeded: offset >> (8 * k)) }
                offset += s.count
            }
            return header + segments.flatMap { $0 }
        }
        var rle16 = DataSet()
        planted(&rle16)
        try? rle16.setPixelData(.uint16([0, 0, 0, 0]), rows: 2, columns: 2)
        rle16.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(EncapsulatedPixelData(
            fragments: [rleFrame(segments: [[0xFD, 0x01], [0x03, 1, 2, 3, 4]])]))))
        add("rle16", rle16, syntax: TransferSyntax.rleLossless.uid)

        var rleMulti = DataSet()
        try? rleMulti.setPixelData(.uint8(Array(repeating: 0, count: 8)), rows: 2, columns: 2, frames: 2)
        let f0 = rleFrame(segments: [[0xFD, 0x07]]), f1 = rleFrame(segments: [[0x03, 9, 8, 7, 6]])
        rleMulti.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(EncapsulatedPixelData(
            basicOffsetTable: [0, UInt32(8 + f0.count + f0.count % 2)], fragments: [f0, f1]))))
        add("rle-2frames-bot", rleMulti, syntax: TransferSyntax.rleLossless.uid)

        // Text in character sets with escapes and multi-byte encodings (the bytes as PS3.5
        // examples write them: ISO 2022 Japanese and Korean, UTF-8, GB 18030, Latin-1).
        let texts: [(String, [UInt8], [UInt8])] = [
            ("jis", Array("\\ISO 2022 IR 87".utf8),
             Array("Yamada^Tarou=".utf8) + [0x1B, 0x24, 0x42, 0x3B, 0x33, 0x45, 0x44, 0x1B, 0x28, 0x42, 0x5E, 0x1B, 0x24, 0x42, 0x42, 0x40, 0x4F, 0x3A, 0x1B, 0x28, 0x42]),
            ("korean", Array("\\ISO 2022 IR 149".utf8),
             Array("Hong^Gildong=".utf8) + [0x1B, 0x24, 0x29, 0x43, 0xFB, 0xF3, 0x5E, 0x1B, 0x24, 0x29, 0x43, 0xD1, 0xCE, 0xD4, 0xD7]),
            ("utf8", Array("ISO_IR 192".utf8), Array("Wang^XiaoDong=王^小东".utf8)),
            ("gb18030", Array("GB18030".utf8), Array("Wang^XiaoDong=".utf8) + [0xCD, 0xF5, 0x5E, 0xD0, 0xA1, 0xB6, 0xAB]),
            ("latin1", Array("ISO_IR 100".utf8), Array("Buc^J".utf8) + [0xE9, 0x72, 0xF4, 0x6D, 0x65]),
        ]
        for (name, charset, pn) in texts {
            var ds = DataSet()
            ds.set(.specificCharacterSet, vr: .CS, bytes: charset)
            ds.set(.patientName, vr: .PN, bytes: pn)
            ds.set(.patientID, seededPatientData[1])
            ds.set(.studyDescription, vr: .LO, bytes: pn)
            var nested = DataSet()
            nested.set(.patientName, vr: .PN, bytes: pn)
            ds.set(Tag(0x0008, 0x1110), sequence: [nested])
            add("charset-\(name)", ds)
        }
        return seeds
    }
}
