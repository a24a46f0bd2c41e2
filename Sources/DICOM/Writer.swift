#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: Building data sets

extension DataSet {
    private func vrFor(_ tag: Tag, _ vr: VR?) -> VR {
        if let vr { return vr }
        if tag.isPrivateCreator { return .LO }
        return DataDictionary.implicitVR(for: tag)
    }

    /// Sets raw value bytes (in this data set's byte order).
    public mutating func set(_ tag: Tag, vr: VR, bytes: [UInt8]) {
        insert(DataElement(tag: tag, vr: vr, value: .bytes(bytes)))
    }

    /// Sets a string value; the VR defaults to the dictionary's. Multiple values: use `strings:`.
    public mutating func set(_ tag: Tag, _ string: String, vr: VR? = nil) {
        let v = vrFor(tag, vr)
        let utf8 = Array(string.utf8)
        insert(DataElement(tag: tag, vr: v.isString ? v : .LO, value: .bytes(utf8)))
    }

    public mutating func set(_ tag: Tag, strings: [String], vr: VR? = nil) {
        set(tag, strings.joined(separator: "\\"), vr: vr)
    }

    /// Integer values: binary for US/SS/UL/SL/SV/UV, text for IS (the VR defaults to the dictionary's).
    public mutating func set(_ tag: Tag, ints: [Int], vr: VR? = nil) throws {
        let v = vrFor(tag, vr)
        var out: [UInt8] = []
        func put(_ x: UInt64, _ width: Int) {
            for k in 0..<width {
                let shift = isBigEndian ? 8 * (width - 1 - k) : 8 * k
                out.append(UInt8(truncatingIfNeeded: x >> UInt64(shift)))
            }
        }
        for i in ints {
            switch v {
            case .US: guard (0...65535).contains(i) else { throw DataSet.range(tag, i) }; put(UInt64(i), 2)
            case .SS: guard (-32768...32767).contains(i) else { throw DataSet.range(tag, i) }; put(UInt64(bitPattern: Int64(i)), 2)
            case .UL: guard (0...Int(UInt32.max)).contains(i) else { throw DataSet.range(tag, i) }; put(UInt64(i), 4)
            case .SL: guard (Int(Int32.min)...Int(Int32.max)).contains(i) else { throw DataSet.range(tag, i) }; put(UInt64(bitPattern: Int64(i)), 4)
            case .SV: put(UInt64(bitPattern: Int64(i)), 8)
            case .UV: guard i >= 0 else { throw DataSet.range(tag, i) }; put(UInt64(i), 8)
            case .IS, .DS:
                set(tag, strings: ints.map(String.init), vr: v)
                return
            default:
                throw DICOMError(code: DICOMError.invalidValueCode, message: "cannot store integers in a \(v.rawValue) element", tag: tag)
            }
        }
        insert(DataElement(tag: tag, vr: v, value: .bytes(out)))
    }

    public mutating func set(_ tag: Tag, int: Int, vr: VR? = nil) throws { try set(tag, ints: [int], vr: vr) }

    /// Real values: FL/FD binary, DS text (at most 16 characters per value, rounded to fit).
    public mutating func set(_ tag: Tag, doubles: [Double], vr: VR? = nil) throws {
        let v = vrFor(tag, vr)
        switch v {
        case .DS:
            set(tag, strings: try doubles.map { try DataSet.formatDS($0, tag: tag) }, vr: .DS)
        case .FL, .FD:
            var out: [UInt8] = []
            for d in doubles {
                let bits: UInt64 = v == .FL ? UInt64(Float(d).bitPattern) : d.bitPattern
                let width = v == .FL ? 4 : 8
                for k in 0..<width {
                    let shift = isBigEndian ? 8 * (width - 1 - k) : 8 * k
                    out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
                }
            }
            insert(DataElement(tag: tag, vr: v, value: .bytes(out)))
        default:
            throw DICOMError(code: DICOMError.invalidValueCode, message: "cannot store reals in a \(v.rawValue) element", tag: tag)
        }
    }

    public mutating func set(_ tag: Tag, double: Double, vr: VR? = nil) throws { try set(tag, doubles: [double], vr: vr) }

    public mutating func set(_ tag: Tag, sequence items: [DataSet]) {
        insert(DataElement(tag: tag, vr: .SQ, value: .sequence(items)))
    }

    /// Native pixel data plus the Image Pixel attributes that describe it. Values are
    /// frame-major, samples interleaved. Bits Stored defaults to the full width.
    public mutating func setPixelData(_ storage: PixelStorage, rows: Int, columns: Int, frames: Int = 1,
                                      samplesPerPixel: Int = 1, photometricInterpretation: String = "MONOCHROME2",
                                      bitsStored: Int? = nil) throws {
        let width: Int, signed: Bool
        var raw: [UInt8]
        func pack<T: FixedWidthInteger>(_ a: [T]) -> [UInt8] {
            let w = MemoryLayout<T>.size
            var out = [UInt8](repeating: 0, count: a.count * w)
            for (i, v) in a.enumerated() {
                let u = UInt64(truncatingIfNeeded: v)
                for k in 0..<w { out[i * w + (isBigEndian ? w - 1 - k : k)] = UInt8(truncatingIfNeeded: u >> UInt64(8 * k)) }
            }
            return out
        }
        switch storage {
        case .uint8(let a): width = 1; signed = false; raw = a
        case .int8(let a): width = 1; signed = true; raw = a.map { UInt8(bitPattern: $0) }
        case .uint16(let a): width = 2; signed = false; raw = pack(a)
        case .int16(let a): width = 2; signed = true; raw = pack(a)
        case .uint32(let a): width = 4; signed = false; raw = pack(a)
        case .int32(let a): width = 4; signed = true; raw = pack(a)
        }
        guard rows > 0, columns > 0, frames > 0, samplesPerPixel > 0, rows * columns * frames * samplesPerPixel == storage.count else {
            throw DICOMError(code: DICOMError.invalidValueCode,
                             message: "pixel count \(storage.count) does not match \(frames) x \(rows) x \(columns) x \(samplesPerPixel)", tag: .pixelData)
        }
        let stored = bitsStored ?? width * 8
        try set(.samplesPerPixel, int: samplesPerPixel)
        set(.photometricInterpretation, photometricInterpretation)
        if samplesPerPixel > 1 { try set(.planarConfiguration, int: 0) }
        if frames > 1 { try set(.numberOfFrames, int: frames) }
        try set(.rows, int: rows)
        try set(.columns, int: columns)
        try set(.bitsAllocated, int: width * 8)
        try set(.bitsStored, int: stored)
        try set(.highBit, int: stored - 1)
        try set(.pixelRepresentation, int: signed ? 1 : 0)
        if raw.count % 2 == 1 { raw.append(0) }
        insert(DataElement(tag: .pixelData, vr: width == 1 ? .OB : .OW, value: .bytes(raw)))
    }

    static func range(_ tag: Tag, _ v: Int) -> DICOMError {
        DICOMError(code: DICOMError.invalidValueCode, message: "integer out of range for the element's VR", tag: tag)
    }

    /// A decimal string of at most 16 characters (PS3.5 6.2 DS).
    static func formatDS(_ d: Double, tag: Tag) throws -> String {
        guard d.isFinite else { throw DICOMError(code: DICOMError.invalidValueCode, message: "DS cannot hold NaN or infinity", tag: tag) }
        if d.rounded() == d, abs(d) < 1e15 { return String(Int64(d)) }
        var s = String(d)
        if s.count <= 16 { return s }
        let magnitude = Int(floor(log10(abs(d))))
        for digits in stride(from: 15, through: 1, by: -1) {
            let scale = pow(10.0, Double(digits - 1 - magnitude))
            let r = (d * scale).rounded() / scale
            s = String(r)
            if s.hasSuffix(".0") { s.removeLast(2) }
            if s.count <= 16 { return s }
        }
        throw DICOMError(code: DICOMError.invalidValueCode, message: "value does not fit a 16-character DS", tag: tag)
    }
}

// MARK: Serialising

/// Writes Part 10 files: preamble, "DICM", file meta group, data set in Explicit VR Little Endian.
public enum DICOMWriter {
    /// This implementation's class UID (a UUID-derived 2.25 UID) and version name.
    public static let implementationClassUID = "2.25.329800735698586629295641978511506172918"
    public static let implementationVersionName = "RADGRID_DICOM_1"

    /// Serialises `dataSet`. The meta header's SOP class/instance UIDs come from the data set.
    /// Data sets holding encapsulated (compressed) pixel data need the syntax of that data
    /// in `encapsulatedTransferSyntaxUID`; everything else is written as Explicit VR Little Endian.
    public static func write(_ dataSet: DataSet, encapsulatedTransferSyntaxUID: String? = nil) throws -> [UInt8] {
        var syntaxUID = TransferSyntax.explicitVRLittleEndian.uid
        if dataSet[.pixelData]?.encapsulated != nil {
            guard let uid = encapsulatedTransferSyntaxUID else {
                throw DICOMError(code: DICOMError.invalidValueCode,
                                 message: "encapsulated pixel data needs its transfer syntax UID", tag: .pixelData)
            }
            syntaxUID = uid
        }
        var meta = DataSet()
        meta.set(.fileMetaInformationVersion, vr: .OB, bytes: [0x00, 0x01])
        meta.set(.mediaStorageSOPClassUID, dataSet.string(.sopClassUID) ?? "", vr: .UI)
        meta.set(.mediaStorageSOPInstanceUID, dataSet.string(.sopInstanceUID) ?? "", vr: .UI)
        meta.set(.transferSyntaxUID, syntaxUID, vr: .UI)
        meta.set(.implementationClassUID, implementationClassUID, vr: .UI)
        meta.set(.implementationVersionName, implementationVersionName, vr: .SH)

        var metaBody: [UInt8] = []
        for e in meta.elements { try encode(e, bigEndianSource: false, into: &metaBody, depth: 0) }
        var out = [UInt8](repeating: 0, count: 128)
        out += Array("DICM".utf8)
        var groupLength = DataSet()
        try groupLength.set(.fileMetaInformationGroupLength, int: metaBody.count, vr: .UL)
        try encode(groupLength.elements[0], bigEndianSource: false, into: &out, depth: 0)
        out += metaBody
        for e in dataSet.elements where e.tag.group != 0x0002 {
            try encode(e, bigEndianSource: dataSet.isBigEndian, into: &out, depth: 0)
        }
        return out
    }

    /// Re-encodes a file read from any supported syntax as Explicit VR Little Endian;
    /// encapsulated pixel data keeps its original transfer syntax UID.
    public static func write(_ file: DICOMFile) throws -> [UInt8] {
        try write(file.dataSet, encapsulatedTransferSyntaxUID: file.transferSyntax.isEncapsulated ? file.transferSyntax.uid : nil)
    }

    static func appendLE16(_ v: UInt16, _ out: inout [UInt8]) { out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8)) }
    static func appendLE32(_ v: UInt32, _ out: inout [UInt8]) { for k in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> UInt32(8 * k))) } }

    static func header(_ tag: Tag, _ vr: VR, length: UInt32, into out: inout [UInt8]) throws {
        appendLE16(tag.group, &out)
        appendLE16(tag.element, &out)
        out += Array(vr.rawValue.utf8)
        if vr.hasLongLength {
            out += [0, 0]
            appendLE32(length, &out)
        } else {
            guard length <= 0xFFFF else {
                throw DICOMError(code: DICOMError.invalidValueCode, message: "value of \(length) bytes is too long for VR \(vr.rawValue)", tag: tag)
            }
            appendLE16(UInt16(length), &out)
        }
    }

    static func encode(_ e: DataElement, bigEndianSource: Bool, into out: inout [UInt8], depth: Int) throws {
        guard depth < 64 else { throw DICOMError.limit("sequences nested deeper than 64", tag: e.tag) }
        switch e.value {
        case .bytes(var b):
            if bigEndianSource && e.vr.binaryWidth > 1 { Native.swapInPlace(&b, width: e.vr.binaryWidth) }
            if b.count % 2 == 1 { b.append(e.vr == .UI || !e.vr.isString ? 0 : 0x20) }
            guard b.count < Int(UInt32.max) else { throw DICOMError(code: DICOMError.invalidValueCode, message: "value too long", tag: e.tag) }
            try header(e.tag, e.vr, length: UInt32(b.count), into: &out)
            out += b
        case .sequence(let items):
            try header(e.tag, .SQ, length: 0xFFFF_FFFF, into: &out)
            for item in items {
                appendLE16(0xFFFE, &out); appendLE16(0xE000, &out); appendLE32(0xFFFF_FFFF, &out)
                for ie in item.elements { try encode(ie, bigEndianSource: item.isBigEndian, into: &out, depth: depth + 1) }
                appendLE16(0xFFFE, &out); appendLE16(0xE00D, &out); appendLE32(0, &out)
            }
            appendLE16(0xFFFE, &out); appendLE16(0xE0DD, &out); appendLE32(0, &out)
        case .encapsulated(let enc):
            try header(e.tag, .OB, length: 0xFFFF_FFFF, into: &out)
            appendLE16(0xFFFE, &out); appendLE16(0xE000, &out); appendLE32(UInt32(enc.basicOffsetTable.count * 4), &out)
            for o in enc.basicOffsetTable { appendLE32(o, &out) }
            for f in enc.fragments {
                var frag = f
                if frag.count % 2 == 1 { frag.append(0) }
                appendLE16(0xFFFE, &out); appendLE16(0xE000, &out); appendLE32(UInt32(frag.count), &out)
                out += frag
            }
            appendLE16(0xFFFE, &out); appendLE16(0xE0DD, &out); appendLE32(0, &out)
        }
    }
}
