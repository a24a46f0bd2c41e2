import NIOCore

/// The DICOM file format (PS3.10 7): a received data set becomes a file the intake reads, and
/// a file to send is split into the meta information the association needs and its data set.
public enum Part10 {
    public struct Meta: Sendable, Equatable {
        public var sopClassUID: String
        public var sopInstanceUID: String
        public var transferSyntaxUID: String
        /// Where the data set starts in the file.
        public var dataSetOffset: Int
    }

    /// Preamble, "DICM" and group 0002 in Explicit VR Little Endian, then the data set as received.
    public static func file(dataSet: ByteBuffer, sopClassUID: String, sopInstanceUID: String, transferSyntaxUID: String,
                            sourceAETitle: String, implementationClassUID: String, implementationVersionName: String) -> [UInt8] {
        var meta: [UInt8] = []
        meta.reserveCapacity(256)
        element(&meta, 0x0001, "OB", [0x00, 0x01])
        element(&meta, 0x0002, "UI", uid(sopClassUID))
        element(&meta, 0x0003, "UI", uid(sopInstanceUID))
        element(&meta, 0x0010, "UI", uid(transferSyntaxUID))
        element(&meta, 0x0012, "UI", uid(implementationClassUID))
        element(&meta, 0x0013, "SH", text(implementationVersionName))
        element(&meta, 0x0016, "AE", text(sourceAETitle))
        var out: [UInt8] = []
        out.reserveCapacity(132 + 12 + meta.count + dataSet.readableBytes)
        out.append(contentsOf: repeatElement(0, count: 128))
        out.append(contentsOf: Array("DICM".utf8))
        var groupLength: [UInt8] = []
        let length = UInt32(meta.count)
        element(&groupLength, 0x0000, "UL", [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)])
        out.append(contentsOf: groupLength)
        out.append(contentsOf: meta)
        dataSet.withUnsafeReadableBytes { out.append(contentsOf: $0) }
        return out
    }

    static func uid(_ value: String) -> [UInt8] {
        var bytes = Array(value.utf8)
        if bytes.count % 2 == 1 { bytes.append(0) }
        return bytes
    }

    static func text(_ value: String) -> [UInt8] {
        var bytes = Array(value.utf8)
        if bytes.count % 2 == 1 { bytes.append(0x20) }
        return bytes
    }

    static func element(_ out: inout [UInt8], _ element: UInt16, _ vr: String, _ value: [UInt8]) {
        out += [0x02, 0x00, UInt8(element & 0xff), UInt8(element >> 8)]
        out += Array(vr.utf8)
        if vr == "OB" {
            out += [0, 0]
            let length = UInt32(value.count)
            out += [UInt8(length & 0xff), UInt8(length >> 8 & 0xff), UInt8(length >> 16 & 0xff), UInt8(length >> 24)]
        } else {
            out += [UInt8(value.count & 0xff), UInt8(value.count >> 8)]
        }
        out += value
    }

    /// Reads a file's meta information (group 0002, Explicit VR Little Endian).
    public static func meta(of file: [UInt8]) throws(DIMSEError) -> Meta {
        guard file.count >= 132, file[128] == 0x44, file[129] == 0x49, file[130] == 0x43, file[131] == 0x4d else {
            throw DIMSEError(code: "dimse.notPart10", message: "not a DICOM file (no DICM prefix)", abort: nil)
        }
        var offset = 132
        var values: [UInt16: String] = [:]
        while offset + 8 <= file.count, file[offset] == 0x02, file[offset + 1] == 0x00 {
            let element = UInt16(file[offset + 2]) | UInt16(file[offset + 3]) << 8
            let vr = String(decoding: file[(offset + 4)..<(offset + 6)], as: UTF8.self)
            var length: Int
            var header = 8
            if ["OB", "OW", "OF", "SQ", "UT", "UN"].contains(vr) {
                guard offset + 12 <= file.count else { break }
                length = Int(file[offset + 8]) | Int(file[offset + 9]) << 8 | Int(file[offset + 10]) << 16 | Int(file[offset + 11]) << 24
                header = 12
            } else {
                length = Int(file[offset + 6]) | Int(file[offset + 7]) << 8
            }
            guard offset + header + length <= file.count else {
                throw DIMSEError(code: "dimse.notPart10", message: "the file meta information is truncated", abort: nil)
            }
            var bytes = Array(file[(offset + header)..<(offset + header + length)])
            while bytes.last == 0 || bytes.last == 0x20 { bytes.removeLast() }
            values[element] = String(decoding: bytes, as: UTF8.self)
            offset += header + length
        }
        guard let sopClass = values[0x0002], let sop = values[0x0003], let syntax = values[0x0010], !sopClass.isEmpty, !sop.isEmpty, !syntax.isEmpty else {
            throw DIMSEError(code: "dimse.notPart10", message: "the file meta information lacks the SOP class, SOP instance or transfer syntax", abort: nil)
        }
        return Meta(sopClassUID: sopClass, sopInstanceUID: sop, transferSyntaxUID: syntax, dataSetOffset: offset)
    }
}
