/// A minimal JSON value with deterministic output (object keys sorted, like Python's
/// `json.dumps(sort_keys=True)`).
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public func serialized(pretty: Bool = false) -> String {
        var out = ""
        write(&out, pretty: pretty, indent: 0)
        return out
    }

    private func write(_ out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d):
            if d.isFinite { out += d.rounded() == d && abs(d) < 1e16 ? String(format1: d) : String(d) } else { out += "null" }
        case .string(let s): JSONValue.quote(s, into: &out)
        case .array(let a):
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += pretty ? ", " : "," }
                v.write(&out, pretty: pretty, indent: indent)
            }
            out += "]"
        case .object(let o):
            out += "{"
            let pad = pretty ? "\n" + String(repeating: " ", count: indent + 2) : ""
            for (i, key) in o.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                out += pad
                JSONValue.quote(key, into: &out)
                out += pretty ? ": " : ":"
                o[key]!.write(&out, pretty: pretty, indent: indent + 2)
            }
            if pretty && !o.isEmpty { out += "\n" + String(repeating: " ", count: indent) }
            out += "}"
        }
    }

    static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += "\\u00" + hex2(UInt8(u.value)).lowercased()
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

extension String {
    /// Integral doubles as Python prints them ("1024.0").
    fileprivate init(format1 d: Double) {
        self = String(Int64(d)) + ".0"
    }
}

/// What `radgridctl inspect` reports, in the field names and conventions of the reference
/// corpus's expected.json.
public enum InspectReport {
    /// The attributes reported by keyword (only those present in the data set).
    public static let keywords: [String] = [
        "BitsAllocated", "BitsStored", "Columns", "Modality", "NumberOfFrames", "PatientID",
        "PhotometricInterpretation", "PixelRepresentation", "RescaleIntercept", "RescaleSlope",
        "Rows", "SOPClassUID", "SOPInstanceUID", "SamplesPerPixel", "SeriesInstanceUID", "StudyInstanceUID",
    ] + textKeywords

    /// Free-text attributes reported as Unicode text decoded with the Specific Character Set
    /// (PN in pydicom's `str(PersonName)` form). The shared corpus's expected.json predates
    /// them; their reference values are in Tests/DICOMTests/Resources/charset.
    public static let textKeywords: [String] = ["PatientName", "StudyDescription"]

    /// Reads leniently (truncated files keep what was read, as pydicom does).
    public static let readOptions = ReadOptions(allowTruncated: true)

    /// Hex digest of the decoded pixels' little-endian bytes (SHA-256 in the CLI and tests).
    /// Passed in so the reader itself needs no crypto library.
    public typealias Digest = ([UInt8]) -> String

    /// The JSON report and whether the file could be read at all.
    public static func json(for bytes: [UInt8], digest: Digest) -> (report: JSONValue, readable: Bool) {
        let file: DICOMFile
        do {
            file = try DICOMFile.read(bytes, options: readOptions)
        } catch {
            let (code, message) = describe(error)
            return (.object([
                "error": .object(["code": .string(code), "message": .string(message)]),
                "read_error": .string("\(code): \(message)"),
            ]), false)
        }
        return (json(for: file, digest: digest), true)
    }

    public static func json(for file: DICOMFile, digest: Digest) -> JSONValue {
        var o: [String: JSONValue] = [:]
        o["transfer_syntax"] = file.transferSyntaxUID.map(JSONValue.string) ?? .null
        o["top_level_elements"] = .int(file.dataSet.count)
        for keyword in keywords {
            guard let tag = Tag(keyword: keyword), let e = file.dataSet[tag] else { continue }
            o[keyword] = value(e, in: file.dataSet)
        }
        if file.dataSet.contains(.pixelData) {
            do {
                o["pixel"] = pixelSummary(try file.decodePixels(), file: file, digest: digest)
            } catch {
                let (code, message) = describe(error)
                o["pixel_error"] = .string("\(code): \(message)")
            }
        }
        return o.isEmpty ? .null : .object(o)
    }

    public static func pixelSummary(_ image: DecodedImage, file: DICOMFile, digest: Digest) -> JSONValue {
        let stats = image.statistics()
        return .object([
            "shape": .array(image.shape.map(JSONValue.int)),
            "dtype": .string(numpyDtype(image, file: file)),
            "sha256": .string(digest(image.littleEndianBytes())),
            "min": .double(stats.min),
            "max": .double(stats.max),
            "mean": .double(stats.mean),
        ])
    }

    /// pydicom keeps native big-endian arrays big-endian: numpy names them ">i2", ">u4".
    static func numpyDtype(_ image: DecodedImage, file: DICOMFile) -> String {
        let width: Int
        switch image.storage {
        case .uint16, .int16: width = 2
        case .uint32, .int32: width = 4
        default: return image.dtype
        }
        if file.dataSet.isBigEndian && !file.transferSyntax.isEncapsulated {
            return ">" + (image.isSigned ? "i" : "u") + String(width)
        }
        return image.dtype
    }

    /// An element's value as pydicom renders it in expected.json: numbers as numbers,
    /// everything else as its string form.
    static func value(_ e: DataElement, in ds: DataSet) -> JSONValue {
        guard e.bytes != nil else {
            if let items = e.items { return .string("<sequence of \(items.count) items>") }
            return .null
        }
        let vr = ds.effectiveVR(e)
        func many<T>(_ xs: [T], _ f: (T) -> JSONValue) -> JSONValue {
            if xs.isEmpty { return .null }
            return xs.count == 1 ? f(xs[0]) : .array(xs.map(f))
        }
        switch vr {
        case .US, .SS, .UL, .SL, .SV, .UV, .IS:
            if vr == .IS, let s = ds.string(e.tag), s.isEmpty { return .string("") }
            return many(ds.ints(e.tag) ?? [], JSONValue.int)
        case .DS, .FL, .FD:
            if vr == .DS, let s = ds.string(e.tag), s.isEmpty { return .string("") }
            return many(ds.doubles(e.tag) ?? [], JSONValue.double)
        default:
            if vr == .PN {
                let names = (ds.personNames(e.tag) ?? []).map { JSONValue.string($0.description) }
                return names.count == 1 ? names[0] : names.isEmpty ? .string("") : .array(names)
            }
            if vr.isString {
                let parts = ds.strings(e.tag) ?? []
                if parts.count > 1 { return .array(parts.map(JSONValue.string)) }
                return .string(parts.first ?? "")
            }
            return .string("<\(e.bytes?.count ?? 0) bytes>")
        }
    }

    static func describe(_ error: Error) -> (String, String) {
        if let e = error as? DICOMError { return (e.code, e.message) }
        return ("dicom.error", String(describing: type(of: error)))
    }

    // MARK: text form

    /// Human-readable report: transfer syntax, elements (values truncated), counts, pixels.
    public static func text(for bytes: [UInt8], maxValueLength: Int = 64, digest: Digest) -> (text: String, readable: Bool) {
        let file: DICOMFile
        do {
            file = try DICOMFile.read(bytes, options: readOptions)
        } catch {
            let (code, message) = describe(error)
            return ("error: \(code): \(message)\n", false)
        }
        var out = ""
        if let ts = file.transferSyntaxUID {
            out += "Transfer syntax: \(TransferSyntax.forUID(ts).name) (\(ts))\n"
        } else {
            out += "Transfer syntax: none in file (no meta header); read as \(file.transferSyntax.name)\n"
        }
        if let t = file.truncation { out += "Warning: \(t.code): \(t.message)\n" }
        for w in file.dataSet.characterSet.warnings { out += "Warning: Specific Character Set: \(w)\n" }
        if !file.meta.isEmpty {
            out += "File meta information:\n"
            dump(file.meta, into: &out, depth: 1, max: maxValueLength)
        }
        out += "Data set:\n"
        dump(file.dataSet, into: &out, depth: 1, max: maxValueLength)
        out += "Top-level elements: \(file.dataSet.count)\n"
        if file.dataSet.contains(.pixelData) {
            do {
                let img = try file.decodePixels()
                let s = img.statistics()
                out += "Pixels: shape \(img.shape) \(numpyDtype(img, file: file)) \(img.photometricInterpretation) "
                out += "min \(s.min) max \(s.max) mean \(s.mean) sha256 \(digest(img.littleEndianBytes()))\n"
            } catch {
                let (code, message) = describe(error)
                out += "Pixels: error \(code): \(message)\n"
            }
        } else {
            out += "Pixels: none\n"
        }
        return (out, true)
    }

    static func dump(_ ds: DataSet, into out: inout String, depth: Int, max: Int) {
        let pad = String(repeating: "  ", count: depth)
        for e in ds.elements {
            let name = e.tag.keyword ?? (e.tag.isPrivate ? "Private" : "Unknown")
            var value: String
            switch e.value {
            case .sequence(let items): value = "<\(items.count) item\(items.count == 1 ? "" : "s")>"
            case .encapsulated(let enc): value = "<encapsulated: \(enc.fragments.count) fragments, \(enc.basicOffsetTable.count) offsets>"
            case .bytes(let b):
                let vr = ds.effectiveVR(e)
                if vr.isString || [.US, .SS, .UL, .SL, .FL, .FD, .AT, .SV, .UV].contains(vr) {
                    value = ds.string(e.tag) ?? ""
                } else {
                    value = "<\(b.count) bytes>"
                }
            }
            if value.count > max { value = String(value.prefix(max)) + "…" }
            out += "\(pad)\(e.tag) \(e.vr.rawValue) \(name): \(value)\n"
            if let items = ds.sequence(e.tag), depth < 8 {
                for (i, item) in items.enumerated() {
                    out += "\(pad)  item \(i + 1):\n"
                    dump(item, into: &out, depth: depth + 2, max: max)
                }
            }
        }
    }
}
