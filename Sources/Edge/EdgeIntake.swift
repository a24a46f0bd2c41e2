import Foundation
import GridContract
import IntakeCheck
import Logging
import RadGridCore

/// Checks instances the way the central intake will (readable, with its UIDs, pixels
/// decodable) so a sender learns of a refusal at once, then spools them.
public struct EdgeIntake: Sendable {
    /// PS3.4 / PS3.18 failure reasons the edge answers with (the centre's).
    public typealias Reason = IntakeCheck.FailureReason

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

    /// The centre's checks (IntakeCheck), so a PACS hears of a refusal from the edge at once.
    func check(_ bytes: [UInt8], expectedStudy: StudyUID?, expectedInstance: String?) -> Result<(StudyUID, SOPInstanceUID, String), OutcomeError> {
        switch IntakeCheck.check(bytes, limits: .init(maxInstanceBytes: maxInstanceBytes), expectedStudy: expectedStudy, expectedInstance: expectedInstance) {
        case .success(let accepted):
            return .success((accepted.study, accepted.sop, accepted.sopClass ?? ""))
        case .failure(let refusal):
            let error = EdgeError(.invalidInstance, "\(refusal.error.code): \(refusal.error.message)")
            return .failure(OutcomeError(.refused(sopClass: refusal.sopClass, sop: refusal.sop, reason: refusal.reason, error: error)))
        }
    }

    struct OutcomeError: Error {
        let outcome: Outcome
        init(_ outcome: Outcome) { self.outcome = outcome }
    }
}
