import Foundation

/// The DICOM JSON model (PS3.18 F.2): what QIDO-RS and WADO-RS metadata return. Keys are the
/// tags as 8 upper-case hex digits, each with its `vr` and, when not empty, a `Value` array:
/// numbers for numeric VRs (IS and DS included), objects with `Alphabetic` / `Ideographic` /
/// `Phonetic` for person names, nested data sets for sequences. Bulk data (pixel data and
/// the other binary VRs) is named by a `BulkDataURI` when the caller gives one, else left out.
public enum DICOMJSON {
    /// Encodes `dataSet`. `include`, when given, keeps only those top-level tags (QIDO's
    /// `includefield`); `bulkDataURI` names where a binary element can be fetched.
    public static func encode(_ dataSet: DataSet, include: Set<Tag>? = nil, bulkDataURI: ((Tag) -> String?)? = nil) -> JSONValue {
        var object: [String: JSONValue] = [:]
        for element in dataSet.elements {
            if let include, !include.contains(element.tag) { continue }
            // Group lengths are not part of the model; group 2 belongs to the file, not the data set.
            if element.tag.element == 0 || element.tag.group == 0x0002 { continue }
            if let value = encode(element, in: dataSet, bulkDataURI: bulkDataURI) {
                object[hexKey(element.tag)] = value
            }
        }
        return .object(object)
    }

    /// `0020000D` for (0020,000D).
    public static func hexKey(_ tag: Tag) -> String {
        let digits = Array("0123456789ABCDEF")
        var out = ""
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int(tag.group >> UInt16(shift)) & 0xF]) }
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int(tag.element >> UInt16(shift)) & 0xF]) }
        return out
    }

    static func encode(_ element: DataElement, in dataSet: DataSet, bulkDataURI: ((Tag) -> String?)?) -> JSONValue? {
        let vr = dataSet.effectiveVR(element)
        var attribute: [String: JSONValue] = ["vr": .string(vr.rawValue)]
        switch element.value {
        case .sequence(let items):
            if !items.isEmpty { attribute["Value"] = .array(items.map { encode($0, bulkDataURI: bulkDataURI) }) }
            return .object(attribute)
        case .encapsulated:
            guard let uri = bulkDataURI?(element.tag) else { return nil }
            attribute["BulkDataURI"] = .string(uri)
            return .object(attribute)
        case .bytes:
            break
        }
        let tag = element.tag
        let values: [JSONValue]
        switch vr {
        case .PN:
            values = (dataSet.personNames(tag) ?? []).map { name in
                var groups: [String: JSONValue] = [:]
                if !name.alphabetic.isEmpty { groups["Alphabetic"] = .string(name.alphabetic) }
                if !name.ideographic.isEmpty { groups["Ideographic"] = .string(name.ideographic) }
                if !name.phonetic.isEmpty { groups["Phonetic"] = .string(name.phonetic) }
                return .object(groups)
            }
        case .IS, .SS, .US, .SL, .UL, .SV, .UV:
            values = (dataSet.strings(tag) ?? []).map { text in Int(text.trimmingCharacters(in: .whitespaces)).map(JSONValue.int) ?? .string(text) }
        case .DS, .FL, .FD:
            values = (dataSet.strings(tag) ?? []).map { text in
                guard let number = Double(text.trimmingCharacters(in: .whitespaces)), number.isFinite else { return .string(text) }
                return .double(number)
            }
        case .AT:
            values = (dataSet.tagValues(tag) ?? []).map { .string(hexKey($0)) }
        case .OB, .OD, .OF, .OL, .OV, .OW, .UN:
            guard let uri = bulkDataURI?(tag) else { return nil }
            attribute["BulkDataURI"] = .string(uri)
            return .object(attribute)
        default:
            values = (dataSet.strings(tag) ?? []).map { .string($0) }
        }
        if !values.isEmpty { attribute["Value"] = .array(values) }
        return .object(attribute)
    }
}
