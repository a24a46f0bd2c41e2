/// What routing reads from a study's headers, gathered over its instances by the study task
/// and kept on the study: the coordinator derives the reading specialty from it.
/// Every field may be empty; text is free (any language, any case).
public struct StudyDescriptors: Sendable, Hashable, Codable {
    /// Modality (0008,0060) as recorded for the study (e.g. of its first instance).
    public var modality: String
    /// Every modality seen in the study: ModalitiesInStudy (0008,0061) or each series' Modality.
    public var modalitiesInStudy: [String]
    /// SOP Class UIDs seen; used only to infer a modality when no Modality is present.
    public var sopClassUIDs: [String]
    /// BodyPartExamined (0018,0015).
    public var bodyPartExamined: String
    /// StudyDescription (0008,1030).
    public var studyDescription: String
    /// ProtocolName (0018,1030).
    public var protocolName: String
    /// SeriesDescription (0008,103E) of each series.
    public var seriesDescriptions: [String]
    /// AnatomicRegionSequence (0008,2218) items.
    public var anatomicRegionCodes: [AnatomicCode]
    /// Pre-screen finding words (`hemorrhage`, `nodule`, `fracture`, ...).
    public var findings: [String]

    public init(modality: String = "", modalitiesInStudy: [String] = [], sopClassUIDs: [String] = [], bodyPartExamined: String = "",
                studyDescription: String = "", protocolName: String = "", seriesDescriptions: [String] = [],
                anatomicRegionCodes: [AnatomicCode] = [], findings: [String] = []) {
        self.modality = modality
        self.modalitiesInStudy = modalitiesInStudy
        self.sopClassUIDs = sopClassUIDs
        self.bodyPartExamined = bodyPartExamined
        self.studyDescription = studyDescription
        self.protocolName = protocolName
        self.seriesDescriptions = seriesDescriptions
        self.anatomicRegionCodes = anatomicRegionCodes
        self.findings = findings
    }

    enum CodingKeys: String, CodingKey {
        case modality, modalitiesInStudy, sopClassUIDs, bodyPartExamined, studyDescription, protocolName
        case seriesDescriptions, anatomicRegionCodes, findings
    }

    /// Every key is optional (an intake entry carries what the coordinator has).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        modality = try c.decodeIfPresent(String.self, forKey: .modality) ?? ""
        modalitiesInStudy = try c.decodeIfPresent([String].self, forKey: .modalitiesInStudy) ?? []
        sopClassUIDs = try c.decodeIfPresent([String].self, forKey: .sopClassUIDs) ?? []
        bodyPartExamined = try c.decodeIfPresent(String.self, forKey: .bodyPartExamined) ?? ""
        studyDescription = try c.decodeIfPresent(String.self, forKey: .studyDescription) ?? ""
        protocolName = try c.decodeIfPresent(String.self, forKey: .protocolName) ?? ""
        seriesDescriptions = try c.decodeIfPresent([String].self, forKey: .seriesDescriptions) ?? []
        anatomicRegionCodes = try c.decodeIfPresent([AnatomicCode].self, forKey: .anatomicRegionCodes) ?? []
        findings = try c.decodeIfPresent([String].self, forKey: .findings) ?? []
    }
}


/// A coded anatomic concept: one item of a DICOM code sequence such as
/// AnatomicRegionSequence (0008,2218) — Coding Scheme Designator, Code Value, Code Meaning.
public struct AnatomicCode: Sendable, Hashable, Codable {
    public var scheme: String
    public var value: String
    public var meaning: String

    public init(scheme: String, value: String, meaning: String) {
        self.scheme = scheme
        self.value = value
        self.meaning = meaning
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case scheme, value, meaning }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        scheme = try c.decode(String.self, forKey: .scheme)
        value = try c.decode(String.self, forKey: .value)
        meaning = try c.decodeIfPresent(String.self, forKey: .meaning) ?? ""
    }
}

