import DICOM
import Foundation
@testable import Portal
import Testing

typealias Tag = DICOM.Tag

/// QIDO-RS matching (PS3.18 8.3.4): wildcards, date ranges, UID lists, exact values.
@Suite struct QueryMatchingTests {
    func dataSet() throws -> DataSet {
        var ds = DataSet()
        ds.set(Tag(0x0008, 0x0005), "ISO_IR 192", vr: .CS)
        ds.set(.patientName, "王^小明=王小明", vr: .PN)
        ds.set(Tag(0x0010, 0x0020), "PID-0042", vr: .LO)
        ds.set(Tag(0x0008, 0x0020), "20261201", vr: .DA)
        ds.set(.studyInstanceUID, "1.2.3.4", vr: .UI)
        ds.set(.modality, "CT", vr: .CS)
        return try DICOMFile.read(DICOMWriter.write(ds)).dataSet
    }

    @Test func wildcardsAndExactValues() throws {
        let ds = try dataSet()
        #expect(DICOMweb.matches(ds, Tag(0x0010, 0x0020), "PID-0042"))
        #expect(!DICOMweb.matches(ds, Tag(0x0010, 0x0020), "PID-004"))
        #expect(DICOMweb.matches(ds, Tag(0x0010, 0x0020), "pid-00*"), "wildcard matching ignores case")
        #expect(DICOMweb.matches(ds, Tag(0x0010, 0x0020), "PID-00?2"))
        #expect(!DICOMweb.matches(ds, Tag(0x0010, 0x0020), "PID-00?"))
        #expect(DICOMweb.matches(ds, .patientName, "王*"))
        #expect(DICOMweb.matches(ds, .modality, ""), "an empty value matches everything")
        #expect(DICOMweb.wildcard("*a*b*", "xxaxxbxx") && !DICOMweb.wildcard("*a*b", "xxaxxbxx") && DICOMweb.wildcard("**", ""))
    }

    @Test func dateRangesAndUIDLists() throws {
        let ds = try dataSet()
        #expect(DICOMweb.matches(ds, Tag(0x0008, 0x0020), "20261101-20261231"))
        #expect(DICOMweb.matches(ds, Tag(0x0008, 0x0020), "20261201-"))
        #expect(DICOMweb.matches(ds, Tag(0x0008, 0x0020), "-20261201"))
        #expect(!DICOMweb.matches(ds, Tag(0x0008, 0x0020), "20261202-"))
        #expect(DICOMweb.matches(ds, .studyInstanceUID, "9.9,1.2.3.4"))
        #expect(DICOMweb.matches(ds, .studyInstanceUID, "9.9\\1.2.3.4"))
        #expect(!DICOMweb.matches(ds, .studyInstanceUID, "1.2.3"))
        #expect(DICOMweb.tag("PatientID") == Tag(0x0010, 0x0020) && DICOMweb.tag("00100020") == Tag(0x0010, 0x0020) && DICOMweb.tag("NoSuchKeyword") == nil)
    }

    @Test func gridMadeUIDsAreValidAndDistinct() {
        let uids = (0..<200).map { _ in UIDs.make() }
        #expect(Set(uids).count == 200)
        for uid in uids {
            #expect(uid.hasPrefix("2.25.") && uid.count <= 64 && !uid.dropFirst(5).hasPrefix("0"))
            #expect(uid.allSatisfy { $0.isNumber || $0 == "." })
        }
        #expect(UIDs.decimal(high: 0, low: 0) == "0")
        #expect(UIDs.decimal(high: UInt64.max, low: UInt64.max) == "340282366920938463463374607431768211455")
        #expect(UIDs.decimal(high: 1, low: 0) == "18446744073709551616")
    }
}
