import RadGridCore

/// Every failure of the DICOM module. Messages name a byte offset and/or a tag, never a value
/// (values may be patient data).
public struct DICOMError: CodedError, Equatable {
    public let code: String
    public let message: String
    /// Byte offset in the (possibly inflated) input where the problem was found.
    public let offset: Int?
    public let tag: Tag?

    public init(code: String, message: String, offset: Int? = nil, tag: Tag? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
        self.tag = tag
    }

    /// The input ends before a header or value it announces.
    public static let truncatedCode = "dicom.truncated"
    /// Structurally invalid (bad VR, bad delimiters, lying lengths, inconsistent attributes).
    public static let malformedCode = "dicom.malformed"
    public static let unsupportedTransferSyntaxCode = "dicom.unsupportedTransferSyntax"
    /// A configured limit (nesting depth, inflated size, pixel buffer size) would be exceeded.
    public static let limitExceededCode = "dicom.limitExceeded"
    /// An attribute needed for the operation is absent (e.g. Rows for pixel decoding).
    public static let missingElementCode = "dicom.missingElement"
    /// Pixel layout we do not decode (e.g. Bits Allocated 12).
    public static let unsupportedPixelFormatCode = "dicom.unsupportedPixelFormat"
    public static let noPixelDataCode = "dicom.noPixelData"
    /// The writer was asked to store something it cannot encode.
    public static let invalidValueCode = "dicom.invalidValue"

    static func place(_ offset: Int?, _ tag: Tag?) -> String {
        var parts: [String] = []
        if let tag { parts.append("tag \(tag)") }
        if let offset { parts.append("offset \(offset)") }
        return parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")"
    }

    static func truncated(_ what: String, offset: Int, tag: Tag? = nil) -> DICOMError {
        DICOMError(code: truncatedCode, message: what + place(offset, tag), offset: offset, tag: tag)
    }
    static func malformed(_ what: String, offset: Int? = nil, tag: Tag? = nil) -> DICOMError {
        DICOMError(code: malformedCode, message: what + place(offset, tag), offset: offset, tag: tag)
    }
    static func limit(_ what: String, offset: Int? = nil, tag: Tag? = nil) -> DICOMError {
        DICOMError(code: limitExceededCode, message: what + place(offset, tag), offset: offset, tag: tag)
    }
    static func missing(_ tag: Tag) -> DICOMError {
        let name = tag.keyword.map { " '\($0)'" } ?? ""
        return DICOMError(code: missingElementCode, message: "missing required element \(tag)\(name)", tag: tag)
    }
}
