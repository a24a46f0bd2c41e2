import Crypto
import DICOM
import GridContract
import Logging
import Metrics
import RadGridCore
import StudyStore
import Zstd

/// Turns one uploaded DICOM part into a stored instance: validate, read the header,
/// compress, store once. Every failure is typed and leaves nothing behind.
public struct InstanceIntake: Sendable {
    public struct Limits: Sendable {
        /// Largest single instance accepted.
        public var maxInstanceBytes: Int = 512 << 20
        /// Largest decoded pixel array an accepted instance may declare.
        public var maxDecodedBytes: Int = 1 << 30
        public var compressionLevel: Int = 3
        public init() {}
    }

    /// PS3.18 / PS3.4 failure reasons used in the STOW-RS response.
    public enum FailureReason: UInt16, Sendable {
        case processingFailure = 0x0110
        case notAuthorized = 0x0124
        case outOfResources = 0xA700
        case dataSetDoesNotMatchSOPClass = 0xA900
        case cannotUnderstand = 0xC000
        /// The grid has no decoder for the instance's transfer syntax (MPEG/HEVC video, ...).
        case transferSyntaxNotSupported = 0xC122
    }

    public enum Outcome: Sendable {
        case stored(InstanceHeader, sopClassUID: String, StudyStore.StoreOutcome)
        case failed(sopClassUID: String?, sopInstanceUID: String?, reason: FailureReason, error: any CodedError)
    }

    public let store: StudyStore
    public let limits: Limits
    let logger: Logger

    public init(store: StudyStore, limits: Limits = Limits(), logger: Logger = Logger(label: "radgrid.gateway")) {
        self.store = store
        self.limits = limits
        self.logger = logger
    }

    /// Stores one instance for `site`. `expectedStudy` is the UID from the URL, if any.
    public func ingest(_ bytes: [UInt8], site: SiteID, priority: Priority, expectedStudy: StudyUID?) async -> Outcome {
        guard bytes.count <= limits.maxInstanceBytes else {
            return .failed(sopClassUID: nil, sopInstanceUID: nil, reason: .outOfResources,
                           error: GatewayError.tooLarge("instance of \(bytes.count) bytes is above the limit of \(limits.maxInstanceBytes)"))
        }
        let file: DICOMFile
        do {
            // A full structural read (not a header-only one) so truncated files are refused.
            file = try DICOMFile.read(bytes)
        } catch let error as DICOMError {
            return .failed(sopClassUID: nil, sopInstanceUID: nil, reason: .cannotUnderstand, error: error)
        } catch {
            return .failed(sopClassUID: nil, sopInstanceUID: nil, reason: .cannotUnderstand, error: GatewayError.badRequest("unreadable DICOM"))
        }
        // Accepted means processable: pixel data the grid could never decode is refused here,
        // with its reason, instead of failing in a worker later.
        do {
            try file.checkPixelsDecodable(options: DecodeOptions(maxOutputBytes: limits.maxDecodedBytes))
        } catch let error as DICOMError {
            let reason: FailureReason = error.code == DICOMError.unsupportedTransferSyntaxCode ? .transferSyntaxNotSupported : .cannotUnderstand
            return .failed(sopClassUID: file.dataSet.string(.sopClassUID), sopInstanceUID: file.dataSet.string(.sopInstanceUID), reason: reason, error: error)
        } catch {
            return .failed(sopClassUID: file.dataSet.string(.sopClassUID), sopInstanceUID: file.dataSet.string(.sopInstanceUID), reason: .cannotUnderstand,
                           error: GatewayError.badRequest("pixel data cannot be decoded"))
        }
        let dataSet = file.dataSet
        let sopClass = dataSet.string(.sopClassUID) ?? file.meta.string(Tag(0x0002, 0x0002))
        let sop = dataSet.string(.sopInstanceUID) ?? file.meta.string(Tag(0x0002, 0x0003))
        guard let studyText = dataSet.string(.studyInstanceUID), let seriesText = dataSet.string(.seriesInstanceUID), let sop else {
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .dataSetDoesNotMatchSOPClass,
                           error: GatewayError.badRequest("instance lacks StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID"))
        }
        let header: InstanceHeader
        do {
            header = InstanceHeader(study: try StudyUID(studyText), series: try SeriesUID(seriesText), sop: try SOPInstanceUID(sop),
                                    modality: dataSet.string(.modality) ?? "", bodyPart: dataSet.string(.bodyPartExamined) ?? "")
        } catch {
            return .failed(sopClassUID: sopClass, sopInstanceUID: nil, reason: .cannotUnderstand, error: error)
        }
        if let expectedStudy, expectedStudy != header.study {
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .dataSetDoesNotMatchSOPClass,
                           error: GatewayError.badRequest("instance belongs to another study than the one in the URL"))
        }
        do {
            let compressed = try Zstd.compress(bytes, level: limits.compressionLevel)
            let digest = SHA256.hash(data: bytes).map(hex).joined()
            let outcome = try await store.storeInstance(site: site, header: header, priority: priority, compressed: compressed, rawSize: bytes.count, sha256: digest)
            Counter(label: "radgrid_gateway_instances_total", dimensions: [("outcome", outcome.rawValue)]).increment()
            return .stored(header, sopClassUID: sopClass ?? "", outcome)
        } catch let error as StudyStoreError where error.codeValue == .forbidden {
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .notAuthorized, error: error)
        } catch let error as StudyStoreError {
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .cannotUnderstand, error: error)
        } catch let error as any CodedError {
            logger.error("instance not stored", metadata: ["error": "\(error.code)"])
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .processingFailure, error: error)
        } catch {
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .processingFailure, error: GatewayError.badRequest("processing failure"))
        }
    }
}
