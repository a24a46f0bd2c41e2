import Compliance
import DICOM

typealias DTag = DICOM.Tag

/// Data sets built in code: one with every attribute of Table E.1-1, and small CT instances.
enum Fixtures {
    static let secret: [UInt8] = Array(0..<32)
    static let otherSecret: [UInt8] = Array((0..<32).map { 255 - $0 })
    /// The root of every UID the fixtures make up; no de-identified output may contain it.
    static let uidRoot = "1.2.826.0.1.3680043.9.7133."

    static func hex(_ tag: DTag) -> String {
        let s = String(tag.rawValue, radix: 16, uppercase: true)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// The rows a data set can carry (the command group and the file meta group cannot).
    static var dataSetRows: [ProfileAttribute] {
        AnnexETable.rows.filter { $0.tag.group != 0x0000 && $0.tag.group != 0x0002 }
    }

    /// The dictionary's VR, or one read from the attribute's name for tags the dictionary lacks.
    static func vr(for row: ProfileAttribute) -> VR {
        if let vr = DataDictionary.entry(for: row.tag)?.vr, vr != .UN { return vr }
        let name = row.name
        if name.hasSuffix("Sequence") { return .SQ }
        if name.hasSuffix("UID") { return .UI }
        if name.hasSuffix("DateTime") { return .DT }
        if name.hasSuffix("Date") { return .DA }
        if name.hasSuffix("Time") { return .TM }
        return .LO
    }

    /// An item as sequences of this kind hold: a code and a reference to an instance.
    static func item(for tag: DTag) -> DataSet {
        var item = DataSet()
        item.set(DTag(0x0008, 0x0100), "CV" + hex(tag), vr: .SH)
        item.set(DTag(0x0008, 0x0102), "99RG", vr: .SH)
        item.set(DTag(0x0008, 0x0104), "Meaning " + hex(tag), vr: .LO)
        item.set(DTag(0x0008, 0x1150), "1.2.840.10008.5.1.4.1.1.2", vr: .UI)
        item.set(DTag(0x0008, 0x1155), referencedUID(tag), vr: .UI)
        return item
    }

    static func referencedUID(_ tag: DTag) -> String { uidRoot + "99." + String(tag.rawValue) }

    /// A realistic value of the VR, unique to the tag where the VR allows it.
    static func value(for vr: VR, tag: DTag) -> ElementValue {
        let h = hex(tag)
        func text(_ s: String) -> ElementValue { .bytes(Array(s.utf8)) }
        switch vr {
        case .PN: return text("Smith\(h)^Jane")
        case .LO, .LT, .ST, .UT, .UC: return text("Secret \(h)")
        case .SH: return text("S\(h)")
        case .CS: return text("C\(h)")
        case .AE: return text("AE\(h)")
        case .AS: return text("042Y")
        case .DA: return text("20240131")
        case .TM: return text("101530")
        case .DT: return text("20240131101530")
        case .DS: return text("72.5")
        case .IS: return text("7")
        case .UI: return text(uidRoot + String(tag.rawValue))
        case .UR: return text("http://hospital.example/\(h)")
        case .US, .SS: return .bytes([7, 0])
        case .UL, .SL, .FL, .AT: return .bytes([7, 0, 0, 0])
        case .FD, .SV, .UV: return .bytes([7, 0, 0, 0, 0, 0, 0, 0])
        case .OB, .OW, .OF, .OL, .OD, .OV, .UN: return .bytes([1, 2, 3, 4, 5, 6, 7, 8])
        case .SQ: return .sequence([item(for: tag)])
        }
    }

    /// Every attribute of the table with a value, plus what any image has, private groups,
    /// a curve, an overlay plane and a group length.
    static func everyAttribute() -> DataSet {
        var ds = DataSet()
        for row in dataSetRows {
            let vr = vr(for: row)
            ds.insert(DataElement(tag: row.tag, vr: vr, value: value(for: vr, tag: row.tag)))
        }
        ds.set(.specificCharacterSet, "ISO_IR 100", vr: .CS)
        ds.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2", vr: .UI)
        ds.set(.modality, "CT", vr: .CS)
        ds.set(.manufacturer, "ACME", vr: .LO)
        ds.set(DTag(0x0008, 0x0000), vr: .UL, bytes: [4, 0, 0, 0])
        addNonStandard(&ds)
        try? ds.setPixelData(.int16([1, -2, 3, -4, 5, -6]), rows: 2, columns: 3)
        return ds
    }

    static func addNonStandard(_ ds: inout DataSet) {
        ds.set(DTag(0x0009, 0x0010), "ACME PRIVATE", vr: .LO)
        ds.set(DTag(0x0009, 0x1001), "Jane Smith private copy", vr: .LO)
        var privateItem = DataSet()
        privateItem.set(DTag(0x0011, 0x1001), "nested private", vr: .LO)
        ds.set(DTag(0x0011, 0x0010), "ACME SEQ", vr: .LO)
        ds.set(DTag(0x0011, 0x1010), sequence: [privateItem])
        ds.set(DTag(0x5000, 0x0005), vr: .US, bytes: [2, 0])
        ds.set(DTag(0x5000, 0x3000), vr: .OW, bytes: [9, 9, 9, 9])
        ds.set(DTag(0x6000, 0x0010), vr: .US, bytes: [2, 0])
        ds.set(DTag(0x6000, 0x3000), vr: .OW, bytes: [1, 0, 1, 0])
        ds.set(DTag(0x6000, 0x4000), "overlay note by Dr Smith", vr: .LT)
    }

    /// One CT slice of a study; `references` names instances it was derived from.
    static func ctSlice(study: String, series: String, instance: String, references: [String] = [],
                        patientID: String = "PID-0001", patientName: String = "Doe^Jane") -> DataSet {
        var ds = DataSet()
        ds.set(.specificCharacterSet, "ISO_IR 100", vr: .CS)
        ds.set(.sopClassUID, "1.2.840.10008.5.1.4.1.1.2", vr: .UI)
        ds.set(.sopInstanceUID, instance, vr: .UI)
        ds.set(.studyDate, "20240131", vr: .DA)
        ds.set(.studyTime, "101530", vr: .TM)
        ds.set(.accessionNumber, "ACC-778899", vr: .SH)
        ds.set(.modality, "CT", vr: .CS)
        ds.set(DTag(0x0008, 0x0080), "St Elsewhere Hospital", vr: .LO)
        ds.set(DTag(0x0008, 0x0090), "House^Gregory", vr: .PN)
        ds.set(.patientName, patientName, vr: .PN)
        ds.set(.patientID, patientID, vr: .LO)
        ds.set(.patientBirthDate, "19700412", vr: .DA)
        ds.set(.patientSex, "F", vr: .CS)
        ds.set(DTag(0x0010, 0x1010), "053Y", vr: .AS)
        ds.set(.studyInstanceUID, study, vr: .UI)
        ds.set(.seriesInstanceUID, series, vr: .UI)
        ds.set(.frameOfReferenceUID, study + ".9", vr: .UI)
        if !references.isEmpty {
            let items = references.map { uid -> DataSet in
                var item = DataSet()
                item.set(DTag(0x0008, 0x1150), "1.2.840.10008.5.1.4.1.1.2", vr: .UI)
                item.set(DTag(0x0008, 0x1155), uid, vr: .UI)
                return item
            }
            ds.set(DTag(0x0008, 0x1140), sequence: items)
            ds.set(DTag(0x0008, 0x2112), sequence: items)
        }
        try? ds.setPixelData(.int16([10, 20, 30, 40]), rows: 2, columns: 2)
        return ds
    }

    static func contains(_ haystack: [UInt8], _ needle: String) -> Bool {
        let n = Array(needle.utf8)
        guard !n.isEmpty, haystack.count >= n.count else { return false }
        var i = 0
        while i <= haystack.count - n.count {
            if haystack[i] == n[0] && Array(haystack[i..<(i + n.count)]) == n { return true }
            i += 1
        }
        return false
    }
}
