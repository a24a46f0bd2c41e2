import Compliance
import DICOM
import RadGridCore
import Testing

@Suite("De-identification, attribute by attribute")
struct DeidentifierTests {
    /// The documented resolution of a row's code under the options, stated here on its own so
    /// the test checks the implementation against the table, not against itself.
    static func expectedTreatment(_ row: ProfileAttribute, vr: VR, options: Deidentifier.Options) -> Deidentifier.Treatment {
        var code = row.basic
        if options.retainLongitudinalFullDates, let a = row.retainFullDates { code = a }
        if options.retainPatientCharacteristics, let a = row.retainPatientCharacteristics { code = a }
        if code == .C { code = row.basic }
        if row.tag == .patientID || row.tag == .patientName { return .pseudonym }
        let sequence = vr == .SQ
        switch code {
        case .K, .C: return sequence ? .items : .keep
        case .U: return .newUID
        case .X: return .remove
        case .Z, .XZ: return .empty
        case .D, .ZD: return sequence ? .dummyItems : (vr == .UI ? .newUID : .dummy)
        case .XD: return sequence ? .remove : (vr == .UI ? .newUID : .dummy)
        case .XZD: return sequence ? .empty : (vr == .UI ? .newUID : .dummy)
        case .XZUStar: return sequence ? .items : .empty
        }
    }

    @Test("every attribute of the table gets its action, under each option combination",
          arguments: Deidentifier.Options.all)
    func everyAttribute(options: Deidentifier.Options) throws {
        let deid = try Deidentifier(secret: Fixtures.secret, options: options)
        let input = Fixtures.everyAttribute()
        let output = deid.deidentify(input)
        let patientKey = input.string(.patientID) ?? ""
        var counts: [Deidentifier.Treatment: Int] = [:]

        for row in Fixtures.dataSetRows {
            let vr = Fixtures.vr(for: row)
            let expected = Self.expectedTreatment(row, vr: vr, options: options)
            #expect(deid.treatment(for: row.tag, vr: vr) == expected, "\(row.tag) \(row.name)")
            counts[expected, default: 0] += 1
            let before = try #require(input[row.tag])
            let after = output[row.tag]
            let label = "\(row.tag) \(row.name) [\(row.basic.rawValue)] under \(options): expected \(expected.rawValue)"
            switch expected {
            case .remove:
                #expect(after == nil, "\(label)")
            case .empty:
                if let items = after?.items { #expect(items.isEmpty, "\(label)") } else { #expect(after?.bytes == [], "\(label)") }
            case .dummy:
                let bytes = after?.bytes ?? []
                #expect(!bytes.isEmpty && bytes != before.bytes, "\(label)")
                #expect(bytes == Deidentifier.dummyValue(for: vr), "\(label)")
            case .keep:
                #expect(after == before, "\(label)")
            case .newUID:
                let original = String(decoding: before.bytes ?? [], as: UTF8.self)
                let uid = output.string(row.tag) ?? ""
                #expect(uid == deid.pseudonymousUID(original), "\(label)")
                #expect(uid.hasPrefix("2.25.") && uid.count <= 64 && uid != original, "\(label)")
            case .pseudonym:
                let value = output.string(row.tag) ?? ""
                let want = row.tag == .patientID ? deid.pseudonymousPatientID(patientKey) : deid.pseudonymousPatientName(patientKey)
                #expect(value == want && value.hasPrefix("ANON"), "\(label)")
            case .items, .dummyItems:
                let items = output.sequence(row.tag) ?? []
                #expect(items.count == 1, "\(label)")
                // References inside sequences map like the attributes they point to.
                #expect(items.first?.string(DTag(0x0008, 0x1155)) == deid.pseudonymousUID(Fixtures.referencedUID(row.tag)), "\(label)")
                #expect(items.first?.string(DTag(0x0008, 0x1150)) == "1.2.840.10008.5.1.4.1.1.2", "\(label)")
                let code = items.first?.string(DTag(0x0008, 0x0100))
                // Under D the items' own codes are the identifying content; elsewhere they are kept.
                #expect(code == (expected == .dummyItems ? "ANONYMOUS" : "CV" + Fixtures.hex(row.tag)), "\(label)")
            }
        }
        // The fixture exercises every kind of outcome.
        for kind in [Deidentifier.Treatment.remove, .empty, .dummy, .newUID, .pseudonym, .items, .dummyItems] {
            #expect(counts[kind, default: 0] > 0, "no attribute ends \(kind.rawValue) under \(options)")
        }
        if options.retainLongitudinalFullDates {
            #expect(output.string(.studyDate) == "20240131" && output.string(DTag(0x0008, 0x0021)) == "20240131")
        }
        if options.retainPatientCharacteristics {
            #expect(output.string(DTag(0x0010, 0x1010)) == "042Y" && output.string(.patientSex) == "C00100040")
            // C (Allergies, Patient State, …) falls back to the basic action: removed.
            #expect(output[DTag(0x0010, 0x2110)] == nil)
        } else {
            #expect(output[DTag(0x0010, 0x1010)] == nil && output.string(.patientSex) == "")
        }
    }

    @Test("no original identifier, name or (unless retained) date survives in the written file",
          arguments: Deidentifier.Options.all)
    func nothingLeaks(options: Deidentifier.Options) throws {
        let deid = try Deidentifier(secret: Fixtures.secret, options: options)
        let input = Fixtures.everyAttribute()
        let bytes = try deid.deidentifyPart10(try DICOMWriter.write(input))
        #expect(!Fixtures.contains(bytes, Fixtures.uidRoot))
        #expect(!Fixtures.contains(bytes, "Smith"))
        #expect(!Fixtures.contains(bytes, "ACME PRIVATE") && !Fixtures.contains(bytes, "nested private"))
        #expect(Fixtures.contains(bytes, "20240131") == options.retainLongitudinalFullDates)
        for row in Fixtures.dataSetRows {
            let vr = Fixtures.vr(for: row)
            let kept = [Deidentifier.Treatment.keep, .items].contains(Self.expectedTreatment(row, vr: vr, options: options))
            guard !kept, [VR.LO, .LT, .ST, .UT, .UC, .SH, .CS, .AE, .UR].contains(vr), let original = input[row.tag]?.bytes else { continue }
            #expect(!Fixtures.contains(bytes, String(decoding: original, as: UTF8.self)), "\(row.tag) \(row.name) survives under \(options)")
        }
    }

    @Test("private groups, curves, overlay planes and group lengths are gone; pixels are untouched")
    func structuralRemovals() throws {
        let deid = try Deidentifier(secret: Fixtures.secret)
        let input = Fixtures.everyAttribute()
        let output = deid.deidentify(input)
        #expect(!output.tags.contains { $0.isPrivate })
        #expect(!output.tags.contains { $0.group & 0xFF00 == 0x5000 || $0.group & 0xFF00 == 0x6000 })
        #expect(!output.tags.contains { $0.isGroupLength })
        #expect(output[.pixelData] == input[.pixelData])
        #expect(output.string(.modality) == "CT" && output.string(.manufacturer) == "ACME")
        #expect(output.string(.sopClassUID) == "1.2.840.10008.5.1.4.1.1.2")
    }

    @Test("PatientIdentityRemoved, DeidentificationMethod and its code sequence name the profile and options",
          arguments: Deidentifier.Options.all)
    func markers(options: Deidentifier.Options) throws {
        let output = try Deidentifier(secret: Fixtures.secret, options: options).deidentify(Fixtures.ctSlice(study: "1.2.3", series: "1.2.3.4", instance: "1.2.3.4.5"))
        #expect(output.string(DTag(0x0012, 0x0062)) == "YES")
        let methods = output.strings(DTag(0x0012, 0x0063)) ?? []
        #expect(methods.first?.contains("Basic Application Confidentiality Profile") == true)
        #expect(methods.contains { $0.contains("Full Dates") } == options.retainLongitudinalFullDates)
        #expect(methods.contains { $0.contains("Patient Characteristics") } == options.retainPatientCharacteristics)
        #expect(methods.allSatisfy { $0.count <= 64 })
        let items = output.sequence(DTag(0x0012, 0x0064)) ?? []
        var want = ["113100"]
        if options.retainLongitudinalFullDates { want.append("113106") }
        if options.retainPatientCharacteristics { want.append("113108") }
        #expect(items.map { $0.string(DTag(0x0008, 0x0100)) ?? "" } == want)
        #expect(items.allSatisfy { $0.string(DTag(0x0008, 0x0102)) == "DCM" && !($0.string(DTag(0x0008, 0x0104)) ?? "").isEmpty })
        #expect(output.string(DTag(0x0028, 0x0303)) == (options.retainLongitudinalFullDates ? "UNMODIFIED" : "REMOVED"))
    }

    @Test("one study gets the same new UIDs in every file, references follow, another secret gives others")
    func consistentUIDs() throws {
        let study = "1.2.826.0.1.3680043.9.7133.5", series = study + ".1"
        let first = Fixtures.ctSlice(study: study, series: series, instance: series + ".1")
        let second = Fixtures.ctSlice(study: study, series: series, instance: series + ".2", references: [series + ".1"])
        let deid = try Deidentifier(secret: Fixtures.secret)
        let a = deid.deidentify(first), b = deid.deidentify(second)
        #expect(a.string(.studyInstanceUID) == b.string(.studyInstanceUID))
        #expect(a.string(.seriesInstanceUID) == b.string(.seriesInstanceUID))
        #expect(a.string(.frameOfReferenceUID) == b.string(.frameOfReferenceUID))
        #expect(a.string(.sopInstanceUID) != b.string(.sopInstanceUID))
        #expect(a.string(.studyInstanceUID) != study)
        for sequence in [DTag(0x0008, 0x1140), DTag(0x0008, 0x2112)] {
            #expect(b.sequence(sequence)?.first?.string(DTag(0x0008, 0x1155)) == a.string(.sopInstanceUID))
        }
        #expect(a.string(.patientID) == b.string(.patientID) && a.string(.patientName) == b.string(.patientName))

        // Across runs: a new de-identifier with the same secret maps identically.
        let again = try Deidentifier(secret: Fixtures.secret).deidentify(first)
        #expect(again == a)
        // Another site's secret: other UIDs and pseudonyms.
        let other = try Deidentifier(secret: Fixtures.otherSecret).deidentify(first)
        #expect(other.string(.studyInstanceUID) != a.string(.studyInstanceUID))
        #expect(other.string(.sopInstanceUID) != a.string(.sopInstanceUID))
        #expect(other.string(.patientID) != a.string(.patientID))

        for uid in [a.string(.studyInstanceUID), a.string(.seriesInstanceUID), a.string(.sopInstanceUID), other.string(.studyInstanceUID)] {
            let u = uid ?? ""
            let digits = u.dropFirst(5)
            #expect(u.hasPrefix("2.25.") && u.count <= 64 && !digits.isEmpty && digits.allSatisfy(\.isNumber) && digits.first != "0", "\(u)")
        }
        // Another patient gets another pseudonym.
        let stranger = deid.deidentify(Fixtures.ctSlice(study: study, series: series, instance: series + ".3", patientID: "PID-0002"))
        #expect(stranger.string(.patientID) != a.string(.patientID))
    }

    @Test("the UID's number is the decimal of the HMAC's first 16 bytes")
    func uidScheme() throws {
        let deid = try Deidentifier(secret: Fixtures.secret)
        // HMAC-SHA256 with the key 00 01 … 1F, computed independently (Python's hmac module).
        #expect(deid.pseudonymousUID("1.2.3") == "2.25.145089691861183396231624889591323225565")
        #expect(deid.pseudonymousPatientID("PID-0001") == "ANON10C8BA4D50682DFD")
        #expect(deid.pseudonymousPatientName("PID-0001") == "ANON^10C8BA4D50682DFD")
        #expect(deid.pseudonymousUID("1.2.4") != deid.pseudonymousUID("1.2.3"))
    }

    @Test("the written file re-reads with the project's reader; the meta header carries the new SOP Instance UID")
    func part10RoundTrip() throws {
        let deid = try Deidentifier(secret: Fixtures.secret)
        let input = Fixtures.ctSlice(study: "1.2.826.0.1.3680043.9.7133.6", series: "1.2.826.0.1.3680043.9.7133.6.1", instance: "1.2.826.0.1.3680043.9.7133.6.1.1")
        let bytes = try deid.deidentifyPart10(try DICOMWriter.write(input))
        let file = try DICOMFile.read(bytes)
        let newUID = deid.pseudonymousUID("1.2.826.0.1.3680043.9.7133.6.1.1")
        #expect(file.dataSet.string(.sopInstanceUID) == newUID)
        #expect(file.meta.string(.mediaStorageSOPInstanceUID) == newUID)
        #expect(file.meta.string(.mediaStorageSOPClassUID) == "1.2.840.10008.5.1.4.1.1.2")
        #expect(file.transferSyntaxUID == TransferSyntax.explicitVRLittleEndian.uid)
        #expect(file.dataSet[.pixelData]?.bytes == input[.pixelData]?.bytes)
        #expect(file.dataSet.string(DTag(0x0012, 0x0062)) == "YES")
        // The whole every-attribute data set, too.
        let all = try DICOMFile.read(try deid.deidentifyPart10(try DICOMWriter.write(Fixtures.everyAttribute())))
        #expect(all.dataSet.count > 100)
        // And the file-level API gives the same meta.
        let viaFile = deid.deidentify(try DICOMFile.read(try DICOMWriter.write(input)))
        #expect(viaFile.meta.string(.mediaStorageSOPInstanceUID) == newUID)
    }

    @Test("unreadable input, a short secret and an unknown option fail with codes and no patient data")
    func errors() throws {
        let deid = try Deidentifier(secret: Fixtures.secret)
        let full = try DICOMWriter.write(Fixtures.ctSlice(study: "1.2.3", series: "1.2.3.4", instance: "1.2.3.4.5", patientName: "Zebedee^Quentin"))
        for broken in [Array(full.prefix(full.count - 5)), Array("not a DICOM file at all, just text".utf8), []] {
            do throws(DeidentificationError) {
                _ = try deid.deidentifyPart10(broken)
                Issue.record("input of \(broken.count) bytes was accepted")
            } catch {
                #expect(error.code == DeidentificationError.unreadableCode)
                #expect(!error.message.contains("Zebedee") && !error.description.contains("Zebedee"))
            }
        }
        do throws(DeidentificationError) {
            _ = try Deidentifier(secret: [1, 2, 3])
            Issue.record("a 3-byte secret was accepted")
        } catch {
            #expect(error.code == DeidentificationError.secretCode)
        }
        do throws(DeidentificationError) {
            _ = try Deidentifier.Options(profile: "retain-everything")
            Issue.record("an unknown option was accepted")
        } catch {
            #expect(error.code == DeidentificationError.profileCode)
        }
        for (text, dates, chars) in [("basic", false, false), ("retain-dates", true, false), ("retain-patient-chars", false, true),
                                     ("retain-dates,retain-patient-chars", true, true)] {
            let options = try Deidentifier.Options(profile: text)
            #expect(options.retainLongitudinalFullDates == dates && options.retainPatientCharacteristics == chars)
            #expect(options.description == text)
        }
    }
}
