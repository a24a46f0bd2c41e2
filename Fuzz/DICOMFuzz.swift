// libFuzzer harness for the DICOM module. Built by scripts/fuzz-dicom.sh, which compiles
// this file together with Sources/DICOM/*.swift as one module (hence no `import DICOM`).
#if canImport(Glibc)
import Glibc
#endif

/// Writes writer-made seed files into $RADGRID_FUZZ_SEED_DIR before fuzzing starts.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let dir = getenv("RADGRID_FUZZ_SEED_DIR").map({ String(cString: $0) }) else { return 0 }
    var seeds: [[UInt8]] = []
    var ds = DataSet()
    ds.set(.sopInstanceUID, "2.25.1")
    ds.set(.modality, "CT")
    ds.set(.patientName, "Fuzz^Seed")
    try? ds.set(.imagePositionPatient, doubles: [1.5, -2, 3])
    var item = DataSet()
    item.set(Tag(0x0008, 0x1155), "2.25.2")
    ds.set(Tag(0x0008, 0x1140), sequence: [item, item])
    try? ds.setPixelData(.int16([-1000, 0, 1000, 2000, 3000, 4000]), rows: 2, columns: 3, bitsStored: 12)
    if let b = try? DICOMWriter.write(ds) { seeds.append(b) }
    var rgb = DataSet()
    try? rgb.setPixelData(.uint8(Array(0..<24)), rows: 2, columns: 2, frames: 2, samplesPerPixel: 3, photometricInterpretation: "YBR_FULL")
    if let b = try? DICOMWriter.write(rgb) { seeds.append(b) }
    var rle = DataSet()
    try? rle.setPixelData(.uint8([0, 0, 0, 0]), rows: 2, columns: 2)
    var header = [UInt8](repeating: 0, count: 64)
    header[0] = 1; header[4] = 64
    rle.insert(DataElement(tag: .pixelData, vr: .OB, value: .encapsulated(EncapsulatedPixelData(fragments: [header + [0xFD, 7]]))))
    if let b = try? DICOMWriter.write(rle, encapsulatedTransferSyntaxUID: TransferSyntax.rleLossless.uid) { seeds.append(b) }
    for (i, s) in seeds.enumerated() {
        guard let fp = fopen("\(dir)/writer-seed-\(i).dcm", "wb") else { continue }
        _ = s.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, fp) }
        fclose(fp)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let decode = DecodeOptions(maxOutputBytes: 32 << 20)
    let optionSets = [
        ReadOptions(maxInflatedBytes: 16 << 20),
        ReadOptions(allowTruncated: true, maxInflatedBytes: 16 << 20),
        ReadOptions(stopBeforePixelData: true, maxInflatedBytes: 16 << 20),
    ]
    for options in optionSets {
        guard let file = try? DICOMFile.read(bytes, options: options) else { continue }
        if let image = try? file.decodePixels(options: decode) {
            _ = image.statistics()
            _ = image.littleEndianBytes().count
        }
        _ = InspectReport.json(for: file, digest: { String($0.count) }).serialized()
        for e in file.dataSet.elements {
            _ = file.dataSet.string(e.tag)
            _ = file.dataSet.strings(e.tag)
            _ = file.dataSet.doubles(e.tag)
            _ = file.dataSet.ints(e.tag)
            _ = file.dataSet.personName(e.tag)
            _ = file.dataSet.date(e.tag)
        }
        // What we read, we can write and read back.
        if let written = try? DICOMWriter.write(file) {
            _ = try? DICOMFile.read(written, options: options)
        }
    }
    return 0
}
