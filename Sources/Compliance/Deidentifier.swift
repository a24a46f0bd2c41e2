import Crypto
import DICOM
import RadGridCore

/// De-identifies DICOM data sets with the Basic Application Level Confidentiality Profile of
/// PS3.15 Annex E (Table E.1-1, `AnnexETable`), optionally with the Retain Longitudinal
/// Temporal Information with Full Dates and the Retain Patient Characteristics options.
///
/// Replacement identifiers are keyed HMAC-SHA256 values of the originals under a per-site
/// secret: the same study, series, instance and patient get the same pseudonyms in every file
/// and every run with that secret, and nobody without it can map them back or across sites.
///
/// Without the IOD module tables a combined code is resolved to the alternative that keeps
/// every attribute Type conformant: a value under Z/D, X/D or X/Z/D gets a dummy, under X/Z it
/// is emptied; a sequence under X/Z or X/Z/D is emptied (zero items), under X/D removed, under
/// X/Z/U* kept with its instance UIDs replaced. C (under an option) falls back to the basic
/// action: free text cannot be proven clean.
public struct Deidentifier: Sendable {
    public struct Options: Sendable, Hashable, CustomStringConvertible {
        public var retainLongitudinalFullDates: Bool
        public var retainPatientCharacteristics: Bool

        public init(retainLongitudinalFullDates: Bool = false, retainPatientCharacteristics: Bool = false) {
            self.retainLongitudinalFullDates = retainLongitudinalFullDates
            self.retainPatientCharacteristics = retainPatientCharacteristics
        }

        /// `basic`, `retain-dates`, `retain-patient-chars` or both options joined by a comma.
        public init(profile: String) throws(DeidentificationError) {
            self.init()
            for part in profile.split(separator: ",").map({ $0.trimmingSpaces }) {
                switch part {
                case "basic": break
                case "retain-dates": retainLongitudinalFullDates = true
                case "retain-patient-chars": retainPatientCharacteristics = true
                default:
                    throw DeidentificationError(code: DeidentificationError.profileCode,
                                                message: "unknown profile option '\(part)' (basic, retain-dates, retain-patient-chars)")
                }
            }
        }

        /// The `--profile` spelling of these options.
        public var description: String {
            var parts: [String] = []
            if retainLongitudinalFullDates { parts.append("retain-dates") }
            if retainPatientCharacteristics { parts.append("retain-patient-chars") }
            return parts.isEmpty ? "basic" : parts.joined(separator: ",")
        }

        public static let all: [Options] = [
            Options(), Options(retainLongitudinalFullDates: true), Options(retainPatientCharacteristics: true),
            Options(retainLongitudinalFullDates: true, retainPatientCharacteristics: true),
        ]
    }

    /// What happens to one attribute, once its action code is resolved.
    public enum Treatment: String, Sendable {
        case remove, empty, dummy, keep, newUID, pseudonym
        /// A sequence kept with its items de-identified.
        case items
        /// A sequence kept with its items de-identified and their remaining text and dates dummied.
        case dummyItems
    }

    /// Codes of the DCM coding scheme for the profile and its options (PS3.16 CID 7050).
    public static let basicProfileCode = "113100"
    public static let retainFullDatesCode = "113106"
    public static let retainPatientCharacteristicsCode = "113108"

    public static let minimumSecretBytes = 16

    public let options: Options
    private let secret: [UInt8]

    public init(secret: [UInt8], options: Options = Options()) throws(DeidentificationError) {
        guard secret.count >= Self.minimumSecretBytes else {
            throw DeidentificationError(code: DeidentificationError.secretCode,
                                        message: "the site secret has \(secret.count) bytes; at least \(Self.minimumSecretBytes) are needed")
        }
        self.secret = secret
        self.options = options
    }

    // MARK: The table under the options

    /// The row's action under this de-identifier's options (C falls back to the basic action).
    public func action(for row: ProfileAttribute) -> ProfileAction {
        var action = row.basic
        if options.retainLongitudinalFullDates, let a = row.retainFullDates { action = a }
        if options.retainPatientCharacteristics, let a = row.retainPatientCharacteristics { action = a }
        return action == .C ? row.basic : action
    }

    /// What happens to a listed attribute of this VR; nil for attributes the table does not list.
    public func treatment(for tag: Tag, vr: VR) -> Treatment? {
        guard let row = AnnexETable.row(for: tag) else { return nil }
        let sequence = vr == .SQ
        switch action(for: row) {
        case .K, .C: return sequence ? .items : .keep
        case .U: return .newUID
        case .X: return .remove
        case .Z, .XZ:
            if tag == .patientName { return .pseudonym }
            return .empty
        case .D, .ZD:
            if tag == .patientID || tag == .patientName { return .pseudonym }
            return sequence ? .dummyItems : (vr == .UI ? .newUID : .dummy)
        case .XD: return sequence ? .remove : (vr == .UI ? .newUID : .dummy)
        case .XZD: return sequence ? .empty : (vr == .UI ? .newUID : .dummy)
        case .XZUStar: return sequence ? .items : .empty
        }
    }

    // MARK: Pseudonyms

    private func mac(_ text: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: secret)))
    }

    /// `2.25.` and the decimal of the first 16 bytes of HMAC-SHA256(secret, uid): at most 44
    /// characters, the same for the same UID and secret.
    public func pseudonymousUID(_ uid: String) -> String {
        "2.25." + Self.decimal(Array(mac(uid).prefix(16)))
    }

    /// The patient's pseudonymous ID: `ANON` and 16 hex digits of HMAC(secret, "patient:" + key),
    /// where the key is the original Patient ID (else the original name).
    public func pseudonymousPatientID(_ key: String) -> String { "ANON" + patientToken(key) }

    /// The patient's pseudonymous name, from the same key as the ID.
    public func pseudonymousPatientName(_ key: String) -> String { "ANON^" + patientToken(key) }

    private func patientToken(_ key: String) -> String {
        let digits: [Character] = Array("0123456789ABCDEF")
        var out = ""
        for byte in mac("patient:" + key).prefix(8) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return out
    }

    /// Big-endian unsigned bytes in decimal, by repeated division (no 128-bit integer needed).
    static func decimal(_ bytes: [UInt8]) -> String {
        var number = bytes
        var digits: [Character] = []
        while number.contains(where: { $0 != 0 }) {
            var remainder: UInt16 = 0
            for i in number.indices {
                let current = remainder << 8 | UInt16(number[i])
                number[i] = UInt8(current / 10)
                remainder = current % 10
            }
            digits.append(Character(Unicode.Scalar(UInt8(48 + remainder))))
        }
        return digits.isEmpty ? "0" : String(digits.reversed())
    }

    /// A non-empty value of the VR that identifies nobody (D).
    public static func dummyValue(for vr: VR) -> [UInt8] {
        switch vr {
        case .AE, .CS, .SH, .LO, .ST, .LT, .UT, .UC, .PN: return Array("ANONYMOUS".utf8)
        case .AS: return Array("000Y".utf8)
        case .DA: return Array("19000101".utf8)
        case .TM: return Array("000000".utf8)
        case .DT: return Array("19000101000000".utf8)
        case .DS, .IS: return Array("0".utf8)
        case .UR: return Array("urn:x-anonymous".utf8)
        case .UI: return Array("2.25.0".utf8)
        case .US, .SS, .OB, .OW, .UN: return [0, 0]
        case .UL, .SL, .FL, .AT, .OF, .OL: return [0, 0, 0, 0]
        case .FD, .SV, .UV, .OD, .OV: return [UInt8](repeating: 0, count: 8)
        case .SQ: return []
        }
    }

    // MARK: Data sets

    /// The de-identified data set: every listed attribute gets its action, private tags, curves
    /// and overlays go, and the markers of PS3.15 E.1.1 are added. Pixel data is not touched.
    public func deidentify(_ dataSet: DataSet) -> DataSet {
        var out = process(dataSet, mode: .normal)
        out.set(Tag(0x0012, 0x0062), "YES", vr: .CS)
        var methods = ["DICOM PS3.15 E.1 Basic Application Confidentiality Profile"]
        var codes: [(String, String)] = [(Self.basicProfileCode, "Basic Application Confidentiality Profile")]
        if options.retainLongitudinalFullDates {
            methods.append("Retain Longitudinal Temporal Information Full Dates Option")
            codes.append((Self.retainFullDatesCode, "Retain Longitudinal Temporal Information Full Dates Option"))
        }
        if options.retainPatientCharacteristics {
            methods.append("Retain Patient Characteristics Option")
            codes.append((Self.retainPatientCharacteristicsCode, "Retain Patient Characteristics Option"))
        }
        out.set(Tag(0x0012, 0x0063), strings: methods, vr: .LO)
        out.set(Tag(0x0012, 0x0064), sequence: codes.map { code, meaning in
            var item = DataSet()
            item.set(Tag(0x0008, 0x0100), code, vr: .SH)
            item.set(Tag(0x0008, 0x0102), "DCM", vr: .SH)
            item.set(Tag(0x0008, 0x0104), meaning, vr: .LO)
            return item
        })
        // Longitudinal Temporal Information Modified: what became of the dates.
        out.set(Tag(0x0028, 0x0303), options.retainLongitudinalFullDates ? "UNMODIFIED" : "REMOVED", vr: .CS)
        return out
    }

    /// The de-identified file with a file meta group that matches it (Media Storage SOP
    /// Instance UID = the new SOP Instance UID; no source or sending AE titles).
    public func deidentify(_ file: DICOMFile) -> DICOMFile {
        let dataSet = deidentify(file.dataSet)
        let syntax: TransferSyntax = file.transferSyntax.isEncapsulated ? file.transferSyntax : .explicitVRLittleEndian
        var meta = DataSet()
        meta.set(.fileMetaInformationVersion, vr: .OB, bytes: [0x00, 0x01])
        let sopClass = dataSet.string(.sopClassUID) ?? file.meta.string(.mediaStorageSOPClassUID) ?? ""
        let sopInstance = dataSet.string(.sopInstanceUID) ?? file.meta.string(.mediaStorageSOPInstanceUID).map(replaceUIDs) ?? ""
        meta.set(.mediaStorageSOPClassUID, sopClass, vr: .UI)
        meta.set(.mediaStorageSOPInstanceUID, sopInstance, vr: .UI)
        meta.set(.transferSyntaxUID, syntax.uid, vr: .UI)
        meta.set(.implementationClassUID, DICOMWriter.implementationClassUID, vr: .UI)
        meta.set(.implementationVersionName, DICOMWriter.implementationVersionName, vr: .SH)
        return DICOMFile(meta: meta, dataSet: dataSet, transferSyntax: syntax)
    }

    /// Reads a Part 10 file, de-identifies it and writes it back (Explicit VR Little Endian, or
    /// the original syntax for compressed pixel data).
    public func deidentifyPart10(_ bytes: [UInt8]) throws(DeidentificationError) -> [UInt8] {
        let file: DICOMFile
        do {
            file = try DICOMFile.read(bytes)
        } catch let error as DICOMError {
            // The code and offset only: on a file that is not DICOM the "tag" would be its content.
            throw .unreadable("not a readable DICOM file (\(error.code)\(error.offset.map { " at byte \($0)" } ?? ""))")
        } catch {
            throw .unreadable("not a readable DICOM file")
        }
        // Without a meta header the reader accepts anything that parses; a DICOM instance has a SOP class.
        guard !file.meta.isEmpty || file.dataSet.string(.sopClassUID)?.isEmpty == false else {
            throw .unreadable("no file meta header and no SOP Class UID: not a DICOM instance")
        }
        do {
            return try DICOMWriter.write(deidentify(file))
        } catch let error as DICOMError {
            throw .unwritable("cannot encode the de-identified data set (\(error.code): \(error.message))")
        } catch {
            throw .unwritable("cannot encode the de-identified data set")
        }
    }

    // MARK: Walking

    private enum Mode {
        case normal
        /// Inside a sequence under D: free text and dates left by the table are dummied too;
        /// code values are kept as vocabulary unless the sequence's own items are the codes.
        case dummy(codesIdentify: Bool)

        var nested: Mode {
            if case .dummy = self { return .dummy(codesIdentify: false) }
            return .normal
        }
    }

    /// Code items: vocabulary, not identifiers, when nested in structured content.
    private static let codeTags: Set<Tag> = [
        Tag(0x0008, 0x0100), Tag(0x0008, 0x0102), Tag(0x0008, 0x0103), Tag(0x0008, 0x0104),
        Tag(0x0008, 0x0105), Tag(0x0008, 0x010F), Tag(0x0008, 0x0119), Tag(0x0008, 0x0120),
    ]

    private static let freeTextVRs: Set<VR> = [.PN, .LO, .SH, .ST, .LT, .UT, .UC, .AE, .UR, .AS]
    private static let dateVRs: Set<VR> = [.DA, .DT, .TM]

    private static func effectiveVR(_ element: DataElement) -> VR {
        element.vr == .UN ? DataDictionary.implicitVR(for: element.tag) : element.vr
    }

    /// Group lengths (stale once values change), private groups, curves and overlay planes
    /// (the table removes Overlay Data and Comments; the rest of the plane goes with them so
    /// no Overlay Plane module is left half).
    private static func dropsWholesale(_ tag: Tag) -> Bool {
        if tag.isGroupLength && tag.group != 0x0002 { return true }
        if ProfileTagRange.privateAttributes.contains(tag) || ProfileTagRange.curveData.contains(tag) { return true }
        return tag.group & 0xFF00 == 0x6000 && !tag.isPrivate
    }

    private func process(_ input: DataSet, mode: Mode) -> DataSet {
        var out = input
        let patientID = input.string(.patientID) ?? ""
        let patientKey = patientID.isEmpty ? (input.string(.patientName) ?? "") : patientID
        for element in input.elements {
            let tag = element.tag
            if Self.dropsWholesale(tag) {
                out.remove(tag)
                continue
            }
            let vr = Self.effectiveVR(element)
            let items = element.items != nil ? (input.sequence(tag) ?? []) : nil
            if let treatment = treatment(for: tag, vr: vr) {
                apply(treatment, to: element, vr: vr, items: items, mode: mode, patientKey: patientKey, into: &out)
            } else {
                applyUnlisted(element, vr: vr, items: items, mode: mode, into: &out)
            }
        }
        return out
    }

    private func apply(_ treatment: Treatment, to element: DataElement, vr: VR, items: [DataSet]?, mode: Mode,
                       patientKey: String, into out: inout DataSet) {
        let tag = element.tag
        switch treatment {
        case .remove:
            out.remove(tag)
        case .keep:
            break
        case .empty:
            out.insert(DataElement(tag: tag, vr: vr, value: items != nil || vr == .SQ ? .sequence([]) : .bytes([])))
        case .dummy:
            out.insert(DataElement(tag: tag, vr: vr, value: .bytes(Self.dummyValue(for: vr))))
        case .newUID:
            let original = element.bytes.map { Self.text($0) } ?? ""
            out.insert(DataElement(tag: tag, vr: .UI, value: .bytes(Array(replaceUIDs(original).utf8))))
        case .pseudonym:
            let value = tag == .patientID ? pseudonymousPatientID(patientKey) : pseudonymousPatientName(patientKey)
            out.insert(DataElement(tag: tag, vr: vr, value: .bytes(Array(value.utf8))))
        case .items:
            out.insert(DataElement(tag: tag, vr: .SQ, value: .sequence((items ?? []).map { process($0, mode: mode.nested) })))
        case .dummyItems:
            let list = items ?? []
            let codesIdentify = list.contains { $0.contains(Tag(0x0008, 0x0100)) }
            var inner = Mode.dummy(codesIdentify: codesIdentify)
            if case .dummy = mode { inner = .dummy(codesIdentify: false) }
            out.insert(DataElement(tag: tag, vr: .SQ, value: .sequence(list.map { process($0, mode: inner) })))
        }
    }

    /// Attributes the table does not list are kept, with three safeguards beyond it: names
    /// (PN) are emptied, dates and times are emptied unless full dates are retained, and
    /// sequences are walked so listed attributes inside them are caught.
    private func applyUnlisted(_ element: DataElement, vr: VR, items: [DataSet]?, mode: Mode, into out: inout DataSet) {
        let tag = element.tag
        if let items {
            out.insert(DataElement(tag: tag, vr: .SQ, value: .sequence(items.map { process($0, mode: mode.nested) })))
            return
        }
        guard let bytes = element.bytes, !bytes.isEmpty else { return }
        if Self.dateVRs.contains(vr) {
            if options.retainLongitudinalFullDates { return }
            if case .dummy = mode {
                out.insert(DataElement(tag: tag, vr: vr, value: .bytes(Self.dummyValue(for: vr))))
            } else {
                out.insert(DataElement(tag: tag, vr: vr, value: .bytes([])))
            }
            return
        }
        if case .dummy(let codesIdentify) = mode, Self.freeTextVRs.contains(vr) {
            if Self.codeTags.contains(tag) && !codesIdentify { return }
            out.insert(DataElement(tag: tag, vr: vr, value: .bytes(Self.dummyValue(for: vr))))
            return
        }
        if vr == .PN {
            out.insert(DataElement(tag: tag, vr: vr, value: .bytes([])))
        }
    }

    /// Each UID of a (possibly multi-valued) UI value replaced; DICOM's own well-known UIDs
    /// (1.2.840.10008.…) identify nobody and are kept.
    private func replaceUIDs(_ value: String) -> String {
        value.split(separator: "\\", omittingEmptySubsequences: false).map { part -> String in
            let uid = String(part).trimmingSpaces
            if uid.isEmpty || uid.hasPrefix("1.2.840.10008.") { return uid }
            return pseudonymousUID(uid)
        }.joined(separator: "\\")
    }

    private static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self).trimmingSpaces
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and NULs (DICOM padding).
    var trimmingSpaces: String {
        var sub = Substring(self)
        while let last = sub.last, last == " " || last == "\0" { sub.removeLast() }
        while let first = sub.first, first == " " || first == "\0" { sub.removeFirst() }
        return String(sub)
    }
}
