/// A signed radiology report as a DICOM Basic Text SR document (SOP Class
/// 1.2.840.10008.5.1.4.1.1.88.11, PS3.3 A.35.1), its content tree laid out after template
/// TID 2000 "Basic Diagnostic Imaging Report" (PS3.16). `encode()` gives the Part 10 file a
/// hospital fetches or the grid sends back with C-STORE.
///
/// Content tree (root first; `>` is one level down):
///
///     CONTAINER title (CID 7000), SEPARATE, Content Template TID 2000 / DCMR
///     > HAS CONCEPT MOD  CODE  (121049, DCM, "Language of Content Item and Descendants") = language   [TID 1204]
///     > HAS OBS CONTEXT  CODE  (121005, DCM, "Observer Type") = (121006, DCM, "Person")              [TID 1002]
///     > HAS OBS CONTEXT  PNAME (121008, DCM, "Person Observer Name") = author
///     > HAS OBS CONTEXT  TEXT  (121009, DCM, "Person Observer's Organization Name")  (if given)
///     > CONTAINS CONTAINER section heading (CID 7001), one per section, in order
///       >> CONTAINS TEXT  section item concept (CID 7002) = section text                        [TID 2002]
///     > CONTAINS CONTAINER (73568-8, LN, "Communication of Critical Results")   (if flagged)
///       >> CONTAINS TEXT  (121071, DCM, "Finding") = what was flagged
///     > CONTAINS CONTAINER (55107-7, LN, "Addendum"), one per addendum, Observation DateTime = its time
///       >> HAS OBS CONTEXT  observer type / name / organization of the addendum's author
///       >> CONTAINS TEXT  (ADDENDUM-REASON, 99RADGRID, "Reason for Addendum") = reason
///       >> CONTAINS TEXT  (55107-7, LN, "Addendum") = text
///
/// Critical results use the heading CID 7001 has for them; addenda use its "Addendum" heading
/// with the author as the heading's own observer context (TID 2000 allows one per heading).
/// The reason has no standard concept, so it carries a local code (a "99" scheme, PS3.16 8;
/// dciodvfy notes it as an unrecognized designator, which is all it says about the document).
/// A report amended after sign-off is a new instance: new SOP Instance UID, the earlier
/// report in `predecessors` (Predecessor Documents Sequence), all content repeated.
///
/// Times the document creates (content, verification, addenda, critical flag) are instants
/// rendered at `timeZoneOffsetMinutes`, which is also written as Timezone Offset From UTC
/// (0008,0201). That attribute labels every DA, TM and DT of the instance, including the
/// study date and time copied from the hospital, so the offset should be the hospital's
/// (copy it from the source study's (0008,0201) when it has one). DT values carry no suffix
/// of their own: (0008,0201) covers them, and dcmtk 3.6.7's VR checker rejects a "+0000"
/// suffix (its DT grammar has no zero-hour offsets).
///
/// Every failure is a `DICOMError` with code `dicom.invalidValue` whose message names the
/// field (`BasicTextSR.sections[1].text: ...`) and the problem, never the value.
public struct BasicTextSR: Sendable, Equatable {
    public static let sopClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    /// RadGrid's cap on one TEXT value in UTF-8 bytes. UT itself allows 2^32-2 bytes; a report
    /// section past 64 KiB (some 30 times a long report) is an error upstream, and the cap
    /// bounds what one document costs to build, store and send.
    public static let maxTextBytes = 64 * 1024

    /// A coded entry (PS3.3 8.8 Code Sequence Macro): Code Value, Coding Scheme Designator,
    /// Code Meaning.
    public struct CodedConcept: Sendable, Hashable {
        public var value: String
        public var scheme: String
        public var meaning: String

        public init(value: String, scheme: String, meaning: String) {
            self.value = value
            self.scheme = scheme
            self.meaning = meaning
        }
    }

    /// An instant, milliseconds since 1970-01-01T00:00:00Z.
    public struct Timestamp: Sendable, Hashable, Comparable {
        public var millisecondsSinceEpoch: Int64
        public init(millisecondsSinceEpoch: Int64) { self.millisecondsSinceEpoch = millisecondsSinceEpoch }
        public static func < (a: Timestamp, b: Timestamp) -> Bool { a.millisecondsSinceEpoch < b.millisecondsSinceEpoch }
    }

    /// One report section: a heading CONTAINER holding one TEXT item.
    public struct Section: Sendable, Equatable {
        /// Heading concept (CID 7001), e.g. `.findingsHeading`.
        public var heading: CodedConcept
        /// Concept of the TEXT item under the heading (CID 7002), e.g. `.finding`.
        public var item: CodedConcept
        public var text: String

        public init(heading: CodedConcept, item: CodedConcept, text: String) {
            self.heading = heading
            self.item = item
            self.text = text
        }

        public static func findings(_ text: String) -> Section { Section(heading: .findingsHeading, item: .finding, text: text) }
        public static func impressions(_ text: String) -> Section { Section(heading: .impressionsHeading, item: .impression, text: text) }
        public static func recommendations(_ text: String) -> Section { Section(heading: .recommendationsHeading, item: .recommendation, text: text) }
        public static func conclusions(_ text: String) -> Section { Section(heading: .conclusionsHeading, item: .conclusion, text: text) }
    }

    /// A person observer (TID 1002/1003): the name as DICOM Person Name (`Family^Given`,
    /// optional `=ideographic=phonetic` groups) and optionally their organization.
    public struct Person: Sendable, Equatable {
        public var name: String
        public var organization: String?

        public init(name: String, organization: String? = nil) {
            self.name = name
            self.organization = organization
        }
    }

    /// Sign-off: makes the document VERIFIED with one Verifying Observer Sequence item.
    public struct Verification: Sendable, Equatable {
        public var observerName: String
        public var organization: String
        public var dateTime: Timestamp

        public init(observerName: String, organization: String, dateTime: Timestamp) {
            self.observerName = observerName
            self.organization = organization
            self.dateTime = dateTime
        }
    }

    /// A critical result the reader flagged.
    public struct CriticalResult: Sendable, Equatable {
        /// What was flagged (and, if known, to whom it was communicated).
        public var text: String
        /// When it was flagged; written as the container's Observation DateTime.
        public var flaggedAt: Timestamp?

        public init(text: String, flaggedAt: Timestamp? = nil) {
            self.text = text
            self.flaggedAt = flaggedAt
        }
    }

    /// Text added after sign-off.
    public struct Addendum: Sendable, Equatable {
        public var text: String
        public var reason: String
        public var author: Person
        public var dateTime: Timestamp

        public init(text: String, reason: String, author: Person, dateTime: Timestamp) {
            self.text = text
            self.reason = reason
            self.author = author
            self.dateTime = dateTime
        }
    }

    /// A composite instance this document points at (an earlier report, or an image of the
    /// study it reports on).
    public struct InstanceReference: Sendable, Equatable {
        public var studyInstanceUID: String
        public var seriesInstanceUID: String
        public var sopClassUID: String
        public var sopInstanceUID: String

        public init(studyInstanceUID: String, seriesInstanceUID: String, sopClassUID: String, sopInstanceUID: String) {
            self.studyInstanceUID = studyInstanceUID
            self.seriesInstanceUID = seriesInstanceUID
            self.sopClassUID = sopClassUID
            self.sopInstanceUID = sopInstanceUID
        }
    }

    // MARK: Patient and study, copied from the source study as the hospital wrote them

    public var patientName: String
    public var patientID: String
    /// DA (YYYYMMDD) or empty.
    public var patientBirthDate: String = ""
    /// M, F, O or empty.
    public var patientSex: String = ""
    public var studyInstanceUID: String
    /// DA or empty.
    public var studyDate: String = ""
    /// TM (HHMMSS[.FFFFFF], or a shorter HH / HHMM) or empty.
    public var studyTime: String = ""
    public var studyID: String = ""
    public var accessionNumber: String = ""
    public var referringPhysicianName: String = ""
    public var studyDescription: String = ""

    // MARK: This document

    public var seriesInstanceUID: String
    public var sopInstanceUID: String
    public var seriesNumber: Int = 1
    public var instanceNumber: Int = 1
    /// When the document content was created (Content Date/Time).
    public var contentDateTime: Timestamp
    /// Minutes east of UTC: created times are rendered at this offset and it is written as
    /// Timezone Offset From UTC. Set it to the hospital's offset (see the type's notes).
    public var timeZoneOffsetMinutes: Int = 0
    public var title: CodedConcept = .diagnosticImagingReport
    /// Language of the content (CID 5000).
    public var language: CodedConcept = .englishUnitedStates
    /// Who wrote the report: the observer context of the whole tree.
    public var author: Person
    /// Nil: UNVERIFIED. Verified documents must be complete.
    public var verification: Verification?
    /// Completion Flag COMPLETE, else PARTIAL.
    public var completed: Bool = true
    public var sections: [Section] = []
    public var criticalResult: CriticalResult?
    public var addenda: [Addendum] = []
    /// Earlier versions this document replaces (Predecessor Documents Sequence).
    public var predecessors: [InstanceReference] = []
    /// The images reported on (Current Requested Procedure Evidence Sequence); a final report
    /// should list all of them (PS3.3 C.17.2.3).
    public var evidence: [InstanceReference] = []
    /// Performed Procedure Code Sequence: one item when set, empty otherwise.
    public var procedureCode: CodedConcept?
    public var manufacturer: String = "RadGrid"
    public var softwareVersion: String = ""

    public init(patientName: String, patientID: String, studyInstanceUID: String,
                seriesInstanceUID: String, sopInstanceUID: String,
                contentDateTime: Timestamp, author: Person, sections: [Section]) {
        self.patientName = patientName
        self.patientID = patientID
        self.studyInstanceUID = studyInstanceUID
        self.seriesInstanceUID = seriesInstanceUID
        self.sopInstanceUID = sopInstanceUID
        self.contentDateTime = contentDateTime
        self.author = author
        self.sections = sections
    }

    /// The Part 10 file: preamble, File Meta, Explicit VR Little Endian data set.
    public func encode() throws -> [UInt8] {
        try DICOMWriter.write(dataSet())
    }

    /// The validated data set (all modules of the Basic Text SR IOD).
    public func dataSet() throws -> DataSet {
        try validate()
        var ds = DataSet()
        // SOP Common
        ds.set(.specificCharacterSet, "ISO_IR 192", vr: .CS)
        ds.set(.sopClassUID, Self.sopClassUID, vr: .UI)
        ds.set(.sopInstanceUID, sopInstanceUID, vr: .UI)
        ds.set(SRTag.timezoneOffsetFromUTC, SRClock.offsetText(timeZoneOffsetMinutes), vr: .SH)
        // Patient
        ds.set(.patientName, patientName, vr: .PN)
        ds.set(.patientID, patientID, vr: .LO)
        ds.set(.patientBirthDate, patientBirthDate, vr: .DA)
        ds.set(.patientSex, patientSex, vr: .CS)
        // General Study
        ds.set(.studyInstanceUID, studyInstanceUID, vr: .UI)
        ds.set(.studyDate, studyDate, vr: .DA)
        ds.set(.studyTime, studyTime, vr: .TM)
        ds.set(SRTag.referringPhysicianName, referringPhysicianName, vr: .PN)
        ds.set(.studyID, studyID, vr: .SH)
        ds.set(.accessionNumber, accessionNumber, vr: .SH)
        if !studyDescription.isEmpty { ds.set(.studyDescription, studyDescription, vr: .LO) }
        // SR Document Series
        ds.set(.modality, "SR", vr: .CS)
        ds.set(.seriesInstanceUID, seriesInstanceUID, vr: .UI)
        try ds.set(.seriesNumber, int: seriesNumber, vr: .IS)
        ds.set(SRTag.referencedPerformedProcedureStepSequence, sequence: [])
        // General Equipment
        ds.set(.manufacturer, manufacturer, vr: .LO)
        if !softwareVersion.isEmpty { ds.set(SRTag.softwareVersions, softwareVersion, vr: .LO) }
        // SR Document General
        let content = SRClock.render(contentDateTime, offsetMinutes: timeZoneOffsetMinutes)
        try ds.set(.instanceNumber, int: instanceNumber, vr: .IS)
        ds.set(SRTag.contentDate, content.date, vr: .DA)
        ds.set(SRTag.contentTime, content.time, vr: .TM)
        ds.set(SRTag.completionFlag, completed ? "COMPLETE" : "PARTIAL", vr: .CS)
        ds.set(SRTag.verificationFlag, verification == nil ? "UNVERIFIED" : "VERIFIED", vr: .CS)
        if let v = verification {
            var item = DataSet()
            item.set(SRTag.verifyingOrganization, v.organization, vr: .LO)
            item.set(SRTag.verificationDateTime, SRClock.render(v.dateTime, offsetMinutes: timeZoneOffsetMinutes).dateTime, vr: .DT)
            item.set(SRTag.verifyingObserverName, v.observerName, vr: .PN)
            item.set(SRTag.verifyingObserverIdentificationCodeSequence, sequence: [])
            ds.set(SRTag.verifyingObserverSequence, sequence: [item])
        }
        if !predecessors.isEmpty { ds.set(SRTag.predecessorDocumentsSequence, sequence: Self.hierarchy(predecessors)) }
        ds.set(SRTag.referencedRequestSequence, sequence: [referencedRequest()])
        ds.set(SRTag.performedProcedureCodeSequence, sequence: procedureCode.map { [Self.codeItem($0)] } ?? [])
        if !evidence.isEmpty { ds.set(SRTag.currentRequestedProcedureEvidenceSequence, sequence: Self.hierarchy(evidence)) }
        // SR Document Content: the root content item lives in the top-level data set.
        ds.set(SRTag.valueType, "CONTAINER", vr: .CS)
        ds.set(SRTag.conceptNameCodeSequence, sequence: [Self.codeItem(title)])
        ds.set(SRTag.continuityOfContent, "SEPARATE", vr: .CS)
        var template = DataSet()
        template.set(SRTag.mappingResource, "DCMR", vr: .CS)
        template.set(SRTag.mappingResourceUID, "1.2.840.10008.8.1.1", vr: .UI)
        template.set(SRTag.templateIdentifier, "2000", vr: .CS)
        ds.set(SRTag.contentTemplateSequence, sequence: [template])
        ds.set(SRTag.contentSequence, sequence: contentTree())
        return ds
    }

    // MARK: Content tree

    private func contentTree() -> [DataSet] {
        var items: [DataSet] = []
        items.append(Self.code(.hasConceptModifier, .languageOfContentItemAndDescendants, language))
        items += Self.observerContext(author)
        for section in sections {
            items.append(Self.container(section.heading, observedAt: nil, children: [Self.text(.contains, section.item, section.text)]))
        }
        if let critical = criticalResult {
            items.append(Self.container(.communicationOfCriticalResults, observedAt: critical.flaggedAt.map(renderDT),
                                        children: [Self.text(.contains, .finding, critical.text)]))
        }
        for addendum in addenda {
            let children = Self.observerContext(addendum.author) + [
                Self.text(.contains, .addendumReason, addendum.reason),
                Self.text(.contains, .addendumHeading, addendum.text),
            ]
            items.append(Self.container(.addendumHeading, observedAt: renderDT(addendum.dateTime), children: children))
        }
        return items
    }

    private func renderDT(_ t: Timestamp) -> String { SRClock.render(t, offsetMinutes: timeZoneOffsetMinutes).dateTime }

    private enum Relationship: String {
        case contains = "CONTAINS"
        case hasObservationContext = "HAS OBS CONTEXT"
        case hasConceptModifier = "HAS CONCEPT MOD"
    }

    private static func item(_ relationship: Relationship, _ valueType: String, _ concept: CodedConcept, observedAt: String? = nil) -> DataSet {
        var item = DataSet()
        item.set(SRTag.relationshipType, relationship.rawValue, vr: .CS)
        if let observedAt { item.set(SRTag.observationDateTime, observedAt, vr: .DT) }
        item.set(SRTag.valueType, valueType, vr: .CS)
        item.set(SRTag.conceptNameCodeSequence, sequence: [codeItem(concept)])
        return item
    }

    private static func text(_ relationship: Relationship, _ concept: CodedConcept, _ value: String) -> DataSet {
        var item = item(relationship, "TEXT", concept)
        item.set(SRTag.textValue, value, vr: .UT)
        return item
    }

    private static func code(_ relationship: Relationship, _ concept: CodedConcept, _ value: CodedConcept) -> DataSet {
        var item = item(relationship, "CODE", concept)
        item.set(SRTag.conceptCodeSequence, sequence: [codeItem(value)])
        return item
    }

    private static func personName(_ relationship: Relationship, _ concept: CodedConcept, _ value: String) -> DataSet {
        var item = item(relationship, "PNAME", concept)
        item.set(SRTag.personName, value, vr: .PN)
        return item
    }

    private static func container(_ concept: CodedConcept, observedAt: String?, children: [DataSet]) -> DataSet {
        var item = item(.contains, "CONTAINER", concept, observedAt: observedAt)
        item.set(SRTag.continuityOfContent, "SEPARATE", vr: .CS)
        item.set(SRTag.contentSequence, sequence: children)
        return item
    }

    /// TID 1002 for one person: Observer Type, Person Observer Name, organization if known.
    private static func observerContext(_ person: Person) -> [DataSet] {
        var items = [
            code(.hasObservationContext, .observerType, .person),
            personName(.hasObservationContext, .personObserverName, person.name),
        ]
        if let organization = person.organization, !organization.isEmpty {
            items.append(text(.hasObservationContext, .personObserverOrganizationName, organization))
        }
        return items
    }

    private static func codeItem(_ c: CodedConcept) -> DataSet {
        var item = DataSet()
        item.set(SRTag.codeValue, c.value, vr: .SH)
        item.set(SRTag.codingSchemeDesignator, c.scheme, vr: .SH)
        item.set(SRTag.codeMeaning, c.meaning, vr: .LO)
        return item
    }

    /// Hierarchical SOP Instance Reference Macro (PS3.3 C.17-3) items: one per study, series
    /// grouped inside, in first-seen order.
    private static func hierarchy(_ refs: [InstanceReference]) -> [DataSet] {
        var studies: [(uid: String, series: [(uid: String, sops: [DataSet])])] = []
        for ref in refs {
            var sop = DataSet()
            sop.set(SRTag.referencedSOPClassUID, ref.sopClassUID, vr: .UI)
            sop.set(SRTag.referencedSOPInstanceUID, ref.sopInstanceUID, vr: .UI)
            let s: Int
            if let i = studies.firstIndex(where: { $0.uid == ref.studyInstanceUID }) {
                s = i
            } else {
                studies.append((ref.studyInstanceUID, []))
                s = studies.count - 1
            }
            if let r = studies[s].series.firstIndex(where: { $0.uid == ref.seriesInstanceUID }) {
                studies[s].series[r].sops.append(sop)
            } else {
                studies[s].series.append((ref.seriesInstanceUID, [sop]))
            }
        }
        return studies.map { study in
            var item = DataSet()
            item.set(.studyInstanceUID, study.uid, vr: .UI)
            item.set(SRTag.referencedSeriesSequence, sequence: study.series.map { series in
                var seriesItem = DataSet()
                seriesItem.set(.seriesInstanceUID, series.uid, vr: .UI)
                seriesItem.set(SRTag.referencedSOPSequence, sequence: series.sops)
                return seriesItem
            })
            return item
        }
    }

    /// The order this report answers (Referenced Request Sequence, PS3.3 C.17.2): the study
    /// and its accession number; the order details the grid does not know stay empty (type 2).
    private func referencedRequest() -> DataSet {
        var item = DataSet()
        item.set(.accessionNumber, accessionNumber, vr: .SH)
        item.set(SRTag.referencedStudySequence, sequence: [])
        item.set(.studyInstanceUID, studyInstanceUID, vr: .UI)
        item.set(SRTag.requestedProcedureDescription, "", vr: .LO)
        item.set(SRTag.requestedProcedureCodeSequence, sequence: [])
        item.set(SRTag.requestedProcedureID, "", vr: .SH)
        item.set(SRTag.placerOrderNumberImagingServiceRequest, "", vr: .LO)
        item.set(SRTag.fillerOrderNumberImagingServiceRequest, "", vr: .LO)
        return item
    }
}

// MARK: Codes

extension BasicTextSR.CodedConcept {
    private init(_ value: String, _ scheme: String, _ meaning: String) {
        self.init(value: value, scheme: scheme, meaning: meaning)
    }

    // Document title (CID 7000)
    public static let diagnosticImagingReport = Self("18748-4", "LN", "Diagnostic Imaging Report")
    public static let radiologyReport = Self("11528-7", "LN", "Radiology Report")

    // Section headings (CID 7001)
    public static let clinicalInformationHeading = Self("55752-0", "LN", "Clinical Information")
    public static let indicationsForProcedureHeading = Self("18785-6", "LN", "Indications for Procedure")
    public static let currentProcedureDescriptionsHeading = Self("55111-9", "LN", "Current Procedure Descriptions")
    public static let findingsHeading = Self("59776-5", "LN", "Findings")
    public static let impressionsHeading = Self("19005-8", "LN", "Impressions")
    public static let recommendationsHeading = Self("18783-1", "LN", "Recommendations")
    public static let conclusionsHeading = Self("55110-1", "LN", "Conclusions")
    public static let communicationOfCriticalResults = Self("73568-8", "LN", "Communication of Critical Results")
    public static let addendumHeading = Self("55107-7", "LN", "Addendum")

    // Report elements (CID 7002)
    public static let finding = Self("121071", "DCM", "Finding")
    public static let impression = Self("121073", "DCM", "Impression")
    public static let recommendation = Self("121075", "DCM", "Recommendation")
    public static let conclusion = Self("121077", "DCM", "Conclusion")
    public static let procedureDescription = Self("121065", "DCM", "Procedure Description")
    /// Local code (no standard concept exists) for an addendum's reason.
    public static let addendumReason = Self("ADDENDUM-REASON", "99RADGRID", "Reason for Addendum")

    // Languages (CID 5000, RFC 5646 tags)
    public static let englishUnitedStates = Self("en-US", "RFC5646", "English (United States)")
    public static let chineseChina = Self("zh-CN", "RFC5646", "Chinese (China)")

    // Observation context (TID 1204, TID 1002)
    public static let languageOfContentItemAndDescendants = Self("121049", "DCM", "Language of Content Item and Descendants")
    public static let observerType = Self("121005", "DCM", "Observer Type")
    public static let person = Self("121006", "DCM", "Person")
    public static let personObserverName = Self("121008", "DCM", "Person Observer Name")
    public static let personObserverOrganizationName = Self("121009", "DCM", "Person Observer's Organization Name")
}

// MARK: Tags this file needs beyond Tag's common set

enum SRTag {
    static let contentDate = Tag(0x0008, 0x0023)
    static let contentTime = Tag(0x0008, 0x0033)
    static let referringPhysicianName = Tag(0x0008, 0x0090)
    static let codeValue = Tag(0x0008, 0x0100)
    static let codingSchemeDesignator = Tag(0x0008, 0x0102)
    static let codeMeaning = Tag(0x0008, 0x0104)
    static let mappingResource = Tag(0x0008, 0x0105)
    static let mappingResourceUID = Tag(0x0008, 0x0118)
    static let timezoneOffsetFromUTC = Tag(0x0008, 0x0201)
    static let referencedStudySequence = Tag(0x0008, 0x1110)
    static let referencedPerformedProcedureStepSequence = Tag(0x0008, 0x1111)
    static let referencedSeriesSequence = Tag(0x0008, 0x1115)
    static let referencedSOPClassUID = Tag(0x0008, 0x1150)
    static let referencedSOPInstanceUID = Tag(0x0008, 0x1155)
    static let referencedSOPSequence = Tag(0x0008, 0x1199)
    static let softwareVersions = Tag(0x0018, 0x1020)
    static let requestedProcedureDescription = Tag(0x0032, 0x1060)
    static let requestedProcedureCodeSequence = Tag(0x0032, 0x1064)
    static let requestedProcedureID = Tag(0x0040, 0x1001)
    static let placerOrderNumberImagingServiceRequest = Tag(0x0040, 0x2016)
    static let fillerOrderNumberImagingServiceRequest = Tag(0x0040, 0x2017)
    static let relationshipType = Tag(0x0040, 0xA010)
    static let verifyingOrganization = Tag(0x0040, 0xA027)
    static let verificationDateTime = Tag(0x0040, 0xA030)
    static let observationDateTime = Tag(0x0040, 0xA032)
    static let valueType = Tag(0x0040, 0xA040)
    static let conceptNameCodeSequence = Tag(0x0040, 0xA043)
    static let continuityOfContent = Tag(0x0040, 0xA050)
    static let verifyingObserverSequence = Tag(0x0040, 0xA073)
    static let verifyingObserverName = Tag(0x0040, 0xA075)
    static let verifyingObserverIdentificationCodeSequence = Tag(0x0040, 0xA088)
    static let personName = Tag(0x0040, 0xA123)
    static let textValue = Tag(0x0040, 0xA160)
    static let conceptCodeSequence = Tag(0x0040, 0xA168)
    static let predecessorDocumentsSequence = Tag(0x0040, 0xA360)
    static let referencedRequestSequence = Tag(0x0040, 0xA370)
    static let performedProcedureCodeSequence = Tag(0x0040, 0xA372)
    static let currentRequestedProcedureEvidenceSequence = Tag(0x0040, 0xA375)
    static let completionFlag = Tag(0x0040, 0xA491)
    static let verificationFlag = Tag(0x0040, 0xA493)
    static let contentTemplateSequence = Tag(0x0040, 0xA504)
    static let contentSequence = Tag(0x0040, 0xA730)
    static let templateIdentifier = Tag(0x0040, 0xDB00)
}

// MARK: Dates and times

/// Renders instants as DA, TM and DT without Foundation (days-to-civil arithmetic on the
/// proleptic Gregorian calendar).
enum SRClock {
    struct Rendered: Equatable {
        let date: String      // YYYYMMDD
        let time: String      // HHMMSS
        let dateTime: String  // YYYYMMDDHHMMSS
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in milliseconds: the years DA can hold.
    static let earliest: Int64 = -62_135_596_800_000
    static let latest: Int64 = 253_402_300_799_999

    /// `t` shifted by `offsetMinutes`; the caller has checked both are in range.
    static func render(_ t: BasicTextSR.Timestamp, offsetMinutes: Int) -> Rendered {
        let local = t.millisecondsSinceEpoch + Int64(offsetMinutes) * 60_000
        let seconds = floorDiv(local, 1000)
        let days = floorDiv(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        let (y, m, d) = civil(fromDays: days)
        let date = pad(y, 4) + pad(m, 2) + pad(d, 2)
        let time = pad(secondOfDay / 3600, 2) + pad(secondOfDay / 60 % 60, 2) + pad(secondOfDay % 60, 2)
        return Rendered(date: date, time: time, dateTime: date + time)
    }

    /// "+hhmm" / "-hhmm".
    static func offsetText(_ minutes: Int) -> String {
        (minutes < 0 ? "-" : "+") + pad(abs(minutes) / 60, 2) + pad(abs(minutes) % 60, 2)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Days since 1970-01-01 to (year, month, day), counting in 400-year eras from 0000-03-01
    /// so the leap day falls at the end of each counted year.
    static func civil(fromDays days: Int64) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (Int(year), Int(month), Int(day))
    }

    static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}

// MARK: Validation

extension BasicTextSR {
    /// Checks every value against its VR (PS3.5 6.2) and the IOD's rules before anything is
    /// built, so a document is either valid or not written at all.
    public func validate() throws {
        let v = SRValidator()
        try v.personName("patientName", .patientName, patientName, required: false)
        try v.string("patientID", .patientID, patientID, max: 64, required: false)
        try v.date("patientBirthDate", .patientBirthDate, patientBirthDate)
        guard ["", "M", "F", "O"].contains(patientSex) else { throw v.fail("patientSex", .patientSex, "not one of M, F, O or empty") }
        try v.uid("studyInstanceUID", .studyInstanceUID, studyInstanceUID)
        try v.date("studyDate", .studyDate, studyDate)
        try v.time("studyTime", .studyTime, studyTime)
        try v.string("studyID", .studyID, studyID, max: 16, required: false)
        try v.string("accessionNumber", .accessionNumber, accessionNumber, max: 16, required: false)
        try v.personName("referringPhysicianName", SRTag.referringPhysicianName, referringPhysicianName, required: false)
        try v.string("studyDescription", .studyDescription, studyDescription, max: 64, required: false)

        try v.uid("seriesInstanceUID", .seriesInstanceUID, seriesInstanceUID)
        try v.uid("sopInstanceUID", .sopInstanceUID, sopInstanceUID)
        try v.integerString("seriesNumber", .seriesNumber, seriesNumber)
        try v.integerString("instanceNumber", .instanceNumber, instanceNumber)
        if !(-12 * 60 ... 14 * 60).contains(timeZoneOffsetMinutes) {
            throw v.fail("timeZoneOffsetMinutes", SRTag.timezoneOffsetFromUTC, "outside -12:00 ... +14:00")
        }
        try v.timestamp("contentDateTime", SRTag.contentDate, contentDateTime, offsetMinutes: timeZoneOffsetMinutes)
        try v.code("title", title)
        try v.code("language", language)
        try v.person("author", author)
        try v.string("manufacturer", .manufacturer, manufacturer, max: 64, required: false)
        try v.string("softwareVersion", SRTag.softwareVersions, softwareVersion, max: 64, required: false)
        if let procedureCode { try v.code("procedureCode", procedureCode) }

        if let verification {
            guard completed else {
                throw v.fail("verification", SRTag.verificationFlag, "a VERIFIED document must be complete (completed is false)")
            }
            try v.personName("verification.observerName", SRTag.verifyingObserverName, verification.observerName, required: true)
            try v.string("verification.organization", SRTag.verifyingOrganization, verification.organization, max: 64, required: true)
            try v.timestamp("verification.dateTime", SRTag.verificationDateTime, verification.dateTime, offsetMinutes: timeZoneOffsetMinutes)
        }
        for (i, section) in sections.enumerated() {
            try v.code("sections[\(i)].heading", section.heading)
            try v.code("sections[\(i)].item", section.item)
            try v.text("sections[\(i)].text", section.text)
        }
        if let criticalResult {
            try v.text("criticalResult.text", criticalResult.text)
            if let at = criticalResult.flaggedAt {
                try v.timestamp("criticalResult.flaggedAt", SRTag.observationDateTime, at, offsetMinutes: timeZoneOffsetMinutes)
            }
        }
        for (i, addendum) in addenda.enumerated() {
            try v.text("addenda[\(i)].text", addendum.text)
            try v.text("addenda[\(i)].reason", addendum.reason)
            try v.person("addenda[\(i)].author", addendum.author)
            try v.timestamp("addenda[\(i)].dateTime", SRTag.observationDateTime, addendum.dateTime, offsetMinutes: timeZoneOffsetMinutes)
        }
        for (name, refs) in [("predecessors", predecessors), ("evidence", evidence)] {
            for (i, ref) in refs.enumerated() {
                try v.uid("\(name)[\(i)].studyInstanceUID", .studyInstanceUID, ref.studyInstanceUID)
                try v.uid("\(name)[\(i)].seriesInstanceUID", .seriesInstanceUID, ref.seriesInstanceUID)
                try v.uid("\(name)[\(i)].sopClassUID", SRTag.referencedSOPClassUID, ref.sopClassUID)
                try v.uid("\(name)[\(i)].sopInstanceUID", SRTag.referencedSOPInstanceUID, ref.sopInstanceUID)
            }
        }
        if predecessors.contains(where: { $0.sopInstanceUID == sopInstanceUID }) {
            throw v.fail("predecessors", SRTag.predecessorDocumentsSequence, "a document cannot be its own predecessor")
        }
    }
}

/// VR checks. Messages name the field and the rule, never the value (it may be patient data).
struct SRValidator {
    func fail(_ field: String, _ tag: Tag, _ problem: String) -> DICOMError {
        DICOMError(code: DICOMError.invalidValueCode, message: "BasicTextSR.\(field): \(problem)" + DICOMError.place(nil, tag), tag: tag)
    }

    /// UI: 1-64 bytes, dot-separated numeric components without leading zeros (PS3.5 9.1).
    func uid(_ field: String, _ tag: Tag, _ s: String) throws {
        guard !s.isEmpty else { throw fail(field, tag, "empty UID") }
        guard s.utf8.count <= 64 else { throw fail(field, tag, "UID longer than 64 characters") }
        for component in s.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !component.isEmpty, component.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                throw fail(field, tag, "UID components must be non-empty runs of digits")
            }
            guard component.count == 1 || component.first != UInt8(ascii: "0") else {
                throw fail(field, tag, "UID component with a leading zero")
            }
        }
    }

    /// Controls other than those `allowed` are not part of any text VR's repertoire here
    /// (ESC only introduces ISO 2022 escapes, which UTF-8 documents do not use).
    private func hasControl(_ s: String, allowed: Set<UInt32> = []) -> Bool {
        s.unicodeScalars.contains { ($0.value < 0x20 || $0.value == 0x7F) && !allowed.contains($0.value) }
    }

    /// SH/LO: at most `max` characters, no backslash (the value delimiter), no controls.
    func string(_ field: String, _ tag: Tag, _ s: String, max: Int, required: Bool) throws {
        if s.isEmpty {
            if required { throw fail(field, tag, "empty") }
            return
        }
        guard s.unicodeScalars.count <= max else { throw fail(field, tag, "longer than \(max) characters") }
        guard !s.contains("\\") else { throw fail(field, tag, "contains a backslash (value delimiter)") }
        guard !hasControl(s) else { throw fail(field, tag, "contains a control character") }
    }

    /// PN: up to 3 component groups (alphabetic=ideographic=phonetic) of up to 5 components
    /// each, every group at most 64 characters.
    func personName(_ field: String, _ tag: Tag, _ s: String, required: Bool) throws {
        if s.isEmpty {
            if required { throw fail(field, tag, "empty") }
            return
        }
        guard !s.contains("\\") else { throw fail(field, tag, "contains a backslash (value delimiter)") }
        guard !hasControl(s) else { throw fail(field, tag, "contains a control character") }
        let groups = s.split(separator: "=", omittingEmptySubsequences: false)
        guard groups.count <= 3 else { throw fail(field, tag, "more than 3 component groups") }
        for (g, group) in groups.enumerated() {
            guard group.unicodeScalars.count <= 64 else { throw fail(field, tag, "component group \(g + 1) longer than 64 characters") }
            guard group.split(separator: "^", omittingEmptySubsequences: false).count <= 5 else {
                throw fail(field, tag, "component group \(g + 1) has more than 5 components")
            }
        }
        if required, groups.allSatisfy({ $0.allSatisfy { $0 == "^" || $0 == " " } }) { throw fail(field, tag, "empty") }
    }

    /// UT text of a content item: non-empty, within `maxTextBytes`, only TAB/LF/FF/CR as controls.
    func text(_ field: String, _ s: String) throws {
        let tag = SRTag.textValue
        guard !s.isEmpty else { throw fail(field, tag, "empty") }
        let bytes = s.utf8.count
        guard bytes <= BasicTextSR.maxTextBytes else {
            throw fail(field, tag, "\(bytes) bytes, more than the \(BasicTextSR.maxTextBytes) allowed")
        }
        guard !hasControl(s, allowed: [0x09, 0x0A, 0x0C, 0x0D]) else { throw fail(field, tag, "contains a control character other than TAB, LF, FF, CR") }
    }

    /// Code Sequence Macro: Code Value and Coding Scheme Designator SH, Code Meaning LO, all required.
    func code(_ field: String, _ c: BasicTextSR.CodedConcept) throws {
        try string("\(field).value", SRTag.codeValue, c.value, max: 16, required: true)
        try string("\(field).scheme", SRTag.codingSchemeDesignator, c.scheme, max: 16, required: true)
        try string("\(field).meaning", SRTag.codeMeaning, c.meaning, max: 64, required: true)
    }

    func person(_ field: String, _ p: BasicTextSR.Person) throws {
        try personName("\(field).name", SRTag.personName, p.name, required: true)
        if let organization = p.organization {
            try string("\(field).organization", SRTag.textValue, organization, max: 64, required: false)
        }
    }

    /// DA: YYYYMMDD, a real calendar day, or empty (type 2).
    func date(_ field: String, _ tag: Tag, _ s: String) throws {
        if s.isEmpty { return }
        let b = Array(s.utf8)
        guard b.count == 8, b.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw fail(field, tag, "not a YYYYMMDD date") }
        let n = b.map { Int($0 - 0x30) }
        let year = n[0] * 1000 + n[1] * 100 + n[2] * 10 + n[3], month = n[4] * 10 + n[5], day = n[6] * 10 + n[7]
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...12).contains(month), (1...lengths[month - 1]).contains(day) else { throw fail(field, tag, "not a calendar date") }
    }

    /// TM: HH, HHMM, HHMMSS or HHMMSS.F{1,6}, in range, or empty (type 2).
    func time(_ field: String, _ tag: Tag, _ s: String) throws {
        if s.isEmpty { return }
        let b = Array(s.utf8)
        let whole = b.firstIndex(of: UInt8(ascii: ".")) ?? b.count
        let digits = b[..<whole], fraction = b[min(whole + 1, b.count)...]
        func isDigits<C: Collection>(_ c: C) -> Bool where C.Element == UInt8 { c.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
        guard [2, 4, 6].contains(digits.count), isDigits(digits),
              whole == b.count || (digits.count == 6 && (1...6).contains(fraction.count) && isDigits(fraction)) else {
            throw fail(field, tag, "not an HHMMSS[.FFFFFF] time")
        }
        let n = digits.map { Int($0 - 0x30) }
        let limits = [24, 60, 60]
        for k in 0..<(n.count / 2) where n[2 * k] * 10 + n[2 * k + 1] >= limits[k] {
            throw fail(field, tag, "time component out of range")
        }
    }

    /// IS: a 32-bit signed integer (PS3.5 6.2).
    func integerString(_ field: String, _ tag: Tag, _ value: Int) throws {
        guard (Int(Int32.min)...Int(Int32.max)).contains(value) else { throw fail(field, tag, "outside the 32-bit range of IS") }
    }

    /// Instants must render into years 0001-9999 (DA/DT) in the document's offset.
    func timestamp(_ field: String, _ tag: Tag, _ t: BasicTextSR.Timestamp, offsetMinutes: Int) throws {
        let shifted = t.millisecondsSinceEpoch.addingReportingOverflow(Int64(offsetMinutes) * 60_000)
        guard !shifted.overflow, (SRClock.earliest...SRClock.latest).contains(shifted.partialValue) else {
            throw fail(field, tag, "outside the years 0001-9999")
        }
    }
}
