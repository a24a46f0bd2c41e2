import DICOM
import Foundation
import GridContract
import Logging
import RadGridCore

/// Checks instances the way the central intake will (readable, with its UIDs, pixels
/// decodable) so a sender learns of a refusal at once, then spools them.
public struct EdgeIntake: Sendable {
    /// PS3.4 / PS3.18 failure reasons the edge answers with.
    public enum Reason: UInt16, Sendable {
        case outOfResources = 0xA700
        case dataSetDoesNotMatchSOPClass = 0xA900
        case cannotUnderstand = 0xC000
        case transferSyntaxNotSupported = 0xC122
        case processingFailure = 0x0110
    }

    public enum Outcome: Sendable {
        /// In the spool (new or already there): the sender may forget it.
        case stored(study: StudyUID, sop: String, sopClass: String)
        case refused(sopClass: String?, sop: String?, reason: Reason, error: EdgeError)
    }

    public let spool: EdgeSpool
    public var maxInstanceBytes: Int
    let logger: Logger

    public init(spool: EdgeSpool, maxInstanceBytes: Int = 512 << 20, logger: Logger) {
        self.spool = spool
        self.maxInstanceBytes = maxInstanceBytes
        self.logger = logger
    }

    /// Validates and spools `parts` (Part 10 files) together; one outcome per part, in order.
    /// `expectedInstances[i]` is the SOP Instance UID a C-STORE request announced for part i.
    public func accept(_ parts: [[UInt8]], priority: Priority, expectedStudy: StudyUID?, expectedInstances: [String?]? = nil) async -> [Outcome] {
        var outcomes = [Outcome?](repeating: nil, count: parts.count)
        var incoming: [EdgeSpool.Incoming] = []
        var positions: [(index: Int, sopClass: String)] = []
        for (index, bytes) in parts.enumerated() {
            switch check(bytes, expectedStudy: expectedStudy, expectedInstance: expectedInstances?[index]) {
            case .success(let (study, sop, sopClass)):
                incoming.append(.init(study: study, sop: sop, priority: priority, bytes: bytes))
                positions.append((index, sopClass))
            case .failure(let refusal):
                outcomes[index] = refusal.outcome
            }
        }
        if !incoming.isEmpty {
            do {
                _ = try await spool.accept(incoming)
                for ((index, sopClass), item) in zip(positions, incoming) {
                    outcomes[index] = .stored(study: item.study, sop: item.sop.rawValue, sopClass: sopClass)
                }
            } catch {
                if error.codeValue != .spoolFull { logger.error("cannot spool instances", metadata: ["error": "\(error)"]) }
                let reason: Reason = error.codeValue == .spoolFull ? .outOfResources : .processingFailure
                for ((index, sopClass), item) in zip(positions, incoming) {
                    outcomes[index] = .refused(sopClass: sopClass, sop: item.sop.rawValue, reason: reason, error: error)
                }
            }
        }
        return outcomes.map { $0! }
    }

    func check(_ bytes: [UInt8], expectedStudy: StudyUID?, expectedInstance: String?) -> Result<(StudyUID, SOPInstanceUID, String), OutcomeError> {
        func refuse(_ reason: Reason, _ message: String, sopClass: String? = nil, sop: String? = nil) -> Result<(StudyUID, SOPInstanceUID, String), OutcomeError> {
            .failure(OutcomeError(.refused(sopClass: sopClass, sop: sop, reason: reason, error: EdgeError(.invalidInstance, message))))
        }
        guard bytes.count <= maxInstanceBytes else {
            return refuse(.outOfResources, "instance of \(bytes.count) bytes is above the limit of \(maxInstanceBytes)")
        }
        let file: DICOMFile
        do {
            file = try DICOMFile.read(bytes, options: ReadOptions(maxInflatedBytes: maxInstanceBytes))
        } catch let error as DICOMError {
            return refuse(.cannotUnderstand, "unreadable DICOM: \(error.code)")
        } catch {
            return refuse(.cannotUnderstand, "unreadable DICOM")
        }
        let dataSet = file.dataSet
        let sopClass = dataSet.string(.sopClassUID) ?? file.meta.string(DICOM.Tag(0x0002, 0x0002))
        let sopText = dataSet.string(.sopInstanceUID) ?? file.meta.string(DICOM.Tag(0x0002, 0x0003))
        do {
            try file.checkPixelsDecodable()
        } catch let error as DICOMError {
            let reason: Reason = error.code == DICOMError.unsupportedTransferSyntaxCode ? .transferSyntaxNotSupported : .cannotUnderstand
            return refuse(reason, "pixel data cannot be decoded: \(error.code)", sopClass: sopClass, sop: sopText)
        } catch {
            return refuse(.cannotUnderstand, "pixel data cannot be decoded", sopClass: sopClass, sop: sopText)
        }
        guard let studyText = dataSet.string(.studyInstanceUID), let sopText, let study = try? StudyUID(studyText),
              let sop = try? SOPInstanceUID(sopText) else {
            return refuse(.dataSetDoesNotMatchSOPClass, "instance lacks a valid StudyInstanceUID or SOPInstanceUID", sopClass: sopClass, sop: sopText)
        }
        if let expectedInstance, expectedInstance != sopText {
            return refuse(.dataSetDoesNotMatchSOPClass, "the data set's SOP Instance UID is not the one the request announced", sopClass: sopClass, sop: sopText)
        }
        if let expectedStudy, expectedStudy != study {
            return refuse(.dataSetDoesNotMatchSOPClass, "instance belongs to another study than the one in the URL", sopClass: sopClass, sop: sopText)
        }
        return .success((study, sop, sopClass ?? ""))
    }

    struct OutcomeError: Error {
        let outcome: Outcome
        init(_ outcome: Outcome) { self.outcome = outcome }
    }
}
