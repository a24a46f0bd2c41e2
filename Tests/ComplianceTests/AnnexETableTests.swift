import Compliance
import DICOM
import Testing

@Suite("PS3.15 Table E.1-1 as data")
struct AnnexETableTests {
    @Test("the table is complete enough, one row per tag")
    func rowsAreUnique() {
        #expect(AnnexETable.rows.count >= 300)
        #expect(Set(AnnexETable.rows.map(\.tag)).count == AnnexETable.rows.count)
        #expect(AnnexETable.byTag.count == AnnexETable.rows.count)
    }

    /// What a CT, MR, CR, US or SR header carries, with the codes the standard gives.
    @Test("the attributes of everyday headers have the table's codes")
    func everydayHeaders() {
        let expected: [(UInt16, UInt16, ProfileAction, ProfileAction?, ProfileAction?)] = [
            (0x0010, 0x0010, .Z, nil, nil),      // Patient's Name
            (0x0010, 0x0020, .ZD, nil, nil),     // Patient ID
            (0x0010, 0x0030, .Z, nil, nil),      // Patient's Birth Date
            (0x0010, 0x0040, .Z, nil, .K),       // Patient's Sex
            (0x0010, 0x1010, .X, nil, .K),       // Patient's Age
            (0x0010, 0x1020, .X, nil, .K),       // Patient's Size
            (0x0010, 0x1030, .X, nil, .K),       // Patient's Weight
            (0x0008, 0x0050, .Z, nil, nil),      // Accession Number
            (0x0008, 0x0080, .XZD, nil, nil),    // Institution Name
            (0x0008, 0x0081, .X, nil, nil),      // Institution Address
            (0x0008, 0x0090, .Z, nil, nil),      // Referring Physician's Name
            (0x0008, 0x1050, .X, nil, nil),      // Performing Physician's Name
            (0x0008, 0x1060, .X, nil, nil),      // Name of Physician(s) Reading Study
            (0x0008, 0x1070, .XZD, nil, nil),    // Operators' Name
            (0x0008, 0x1010, .XZD, nil, nil),    // Station Name
            (0x0008, 0x0020, .Z, .K, nil),       // Study Date
            (0x0008, 0x0021, .XD, .K, nil),      // Series Date
            (0x0008, 0x0022, .XZ, .K, nil),      // Acquisition Date
            (0x0008, 0x0023, .ZD, .K, nil),      // Content Date
            (0x0008, 0x0030, .Z, .K, nil),       // Study Time
            (0x0020, 0x000D, .U, nil, nil),      // Study Instance UID
            (0x0020, 0x000E, .U, nil, nil),      // Series Instance UID
            (0x0008, 0x0018, .U, nil, nil),      // SOP Instance UID
            (0x0020, 0x0052, .U, nil, nil),      // Frame of Reference UID
            (0x0002, 0x0003, .U, nil, nil),      // Media Storage SOP Instance UID
            (0x0018, 0x1000, .XZD, nil, nil),    // Device Serial Number
            (0x0008, 0x1030, .X, nil, nil),      // Study Description
            (0x0008, 0x103E, .X, nil, nil),      // Series Description
            (0x0020, 0x4000, .X, nil, nil),      // Image Comments
            (0x0040, 0x0275, .X, nil, nil),      // Request Attributes Sequence
            (0x0008, 0x1155, .U, nil, nil),      // Referenced SOP Instance UID
            (0x0008, 0x1140, .XZUStar, nil, nil), // Referenced Image Sequence
            (0x0008, 0x2112, .XZUStar, nil, nil), // Source Image Sequence
            (0x0040, 0xA730, .D, nil, nil),      // Content Sequence
            (0x0040, 0xA124, .U, nil, nil),      // UID (SR)
            (0x0040, 0xA123, .D, nil, nil),      // Person Name (SR)
            (0x0020, 0x0010, .Z, nil, nil),      // Study ID
        ]
        for (group, element, basic, dates, chars) in expected {
            let tag = DTag(group, element)
            let row = AnnexETable.row(for: tag)
            #expect(row?.basic == basic, "\(tag)")
            #expect(row?.retainFullDates == dates, "\(tag)")
            #expect(row?.retainPatientCharacteristics == chars, "\(tag)")
        }
        #expect(ProfileTagRange.privateAttributes.contains(DTag(0x0009, 0x1001)))
        #expect(ProfileTagRange.curveData.contains(DTag(0x5002, 0x3000)))
        #expect(ProfileTagRange.overlayData.contains(DTag(0x6002, 0x3000)))
        #expect(ProfileTagRange.overlayComments.contains(DTag(0x6000, 0x4000)))
        #expect(!ProfileTagRange.overlayData.contains(DTag(0x6000, 0x0010)))
    }

    /// The Full Dates option keeps dates and times; the table's two exceptions are Timezone
    /// Offset From UTC (SH) and Frame Origin Timestamp (OB). Birth date and time stay protected.
    @Test("Full Dates keeps exactly the temporal attributes")
    func fullDatesColumn() {
        let exceptions: Set<DTag> = [DTag(0x0008, 0x0201), DTag(0x0034, 0x0007)]
        for row in AnnexETable.rows where row.retainFullDates != nil {
            #expect(row.retainFullDates == .K)
            guard let vr = DataDictionary.entry(for: row.tag)?.vr, vr != .UN, !exceptions.contains(row.tag) else { continue }
            #expect([VR.DA, .DT, .TM].contains(vr), "\(row.tag) \(row.name) is \(vr.rawValue)")
        }
        #expect(AnnexETable.row(for: .patientBirthDate)?.retainFullDates == nil)
        #expect(AnnexETable.row(for: DTag(0x0010, 0x0032))?.retainFullDates == nil)
        // Patient characteristics: K or C, only in group 0010, 0038 or 0040.
        for row in AnnexETable.rows where row.retainPatientCharacteristics != nil {
            #expect([DTag(0x0010, 0), DTag(0x0038, 0), DTag(0x0040, 0)].map(\.group).contains(row.tag.group), "\(row.tag)")
            #expect(row.retainPatientCharacteristics == .K || row.retainPatientCharacteristics == .C)
        }
    }
}
