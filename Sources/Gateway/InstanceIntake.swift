import DICOMWeb
import Crypto
import Foundation
import DICOM
import GridContract
import IntakeCheck
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
        /// zstd level of the stored instances. 1 by default: on CT it stores ~15 % more than
        /// level 3 but compresses ~4× faster, and compression is most of intake's CPU.
        public var compressionLevel: Int = 1
        public init() {}
    }

    /// PS3.18 / PS3.4 failure reasons used in the STOW-RS response (shared by every intake).
    public typealias FailureReason = IntakeCheck.FailureReason

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
    /// `expectedInstance` is the SOP Instance UID the sender announced (a C-STORE request's
    /// Affected SOP Instance UID): a data set naming another instance is refused, not stored.
    public func ingest(_ bytes: [UInt8], site: SiteID, priority: Priority, expectedStudy: StudyUID?, expectedInstance: String? = nil) async -> Outcome {
        await ingestSlice([bytes], site: site, priority: priority, expectedStudy: expectedStudy, expectedInstances: [expectedInstance])[0]
    }

    /// Stores the instances of one upload, each with its own outcome (in order). Reading,
    /// checking, compressing and hashing run on every core; the store takes them in one
    /// round trip (`StudyStore.storeInstances`).
    public func ingest(_ parts: [[UInt8]], site: SiteID, priority: Priority, expectedStudy: StudyUID?, consent: String? = nil) async -> [Outcome] {
        // In slices of about `storeBatchBytes`: one pipeline stays a bounded write for Redis.
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(parts.count)
        var start = 0
        while start < parts.count {
            var end = start, bytes = 0
            while end < parts.count && (end == start || (bytes + parts[end].count <= Self.storeBatchBytes && end - start < 256)) {
                bytes += parts[end].count
                end += 1
            }
            outcomes += await ingestSlice(Array(parts[start..<end]), site: site, priority: priority, expectedStudy: expectedStudy, consent: consent)
            start = end
        }
        return outcomes
    }

    /// Uncompressed bytes of the instances stored in one round trip.
    static let storeBatchBytes = 32 << 20

    private func ingestSlice(_ parts: [[UInt8]], site: SiteID, priority: Priority, expectedStudy: StudyUID?, expectedInstances: [String?]? = nil,
                             consent: String? = nil) async -> [Outcome] {
        var prepared = [Result<Prepared, Failure>?](repeating: nil, count: parts.count)
        let width = max(1, min(parts.count, ProcessInfo.processInfo.activeProcessorCount))
        await withTaskGroup(of: (Int, Result<Prepared, Failure>).self) { group in
            var next = 0
            func start() {
                let index = next
                next += 1
                let expectedInstance = expectedInstances?[index]
                group.addTask { (index, prepare(parts[index], expectedStudy: expectedStudy, expectedInstance: expectedInstance)) }
            }
            while next < width { start() }
            for await (index, result) in group {
                prepared[index] = result
                if next < parts.count { start() }
            }
        }
        var outcomes = [Outcome?](repeating: nil, count: parts.count)
        var items: [StudyStore.IncomingInstance] = []
        var positions: [(index: Int, sopClass: String)] = []
        for (index, result) in prepared.enumerated() {
            switch result! {
            case .success(let p):
                items.append(p.instance)
                positions.append((index, p.sopClass))
            case .failure(let f):
                outcomes[index] = .failed(sopClassUID: f.sopClass, sopInstanceUID: f.sop, reason: f.reason, error: f.error)
            }
        }
        let stored: [Result<StudyStore.StoreOutcome, any Error>]
        do {
            stored = try await store.storeInstances(site: site, priority: priority, items, consent: consent)
        } catch {
            stored = Array(repeating: .failure(error), count: items.count)
        }
        for ((index, sopClass), (item, result)) in zip(positions, zip(items, stored)) {
            outcomes[index] = outcome(of: result, item.header, sopClass: sopClass)
        }
        return outcomes.map { $0! }
    }

    /// An instance ready to store, or why it is refused.
    struct Prepared: Sendable {
        var instance: StudyStore.IncomingInstance
        var sopClass: String
    }

    typealias Failure = IntakeCheck.Refusal

    /// Validates one part (IntakeCheck) and compresses it (CPU only, no Redis).
    func prepare(_ bytes: [UInt8], expectedStudy: StudyUID?, expectedInstance: String? = nil) -> Result<Prepared, Failure> {
        let accepted: IntakeCheck.Accepted
        switch IntakeCheck.check(bytes, limits: .init(maxInstanceBytes: limits.maxInstanceBytes, maxDecodedBytes: limits.maxDecodedBytes),
                                 expectedStudy: expectedStudy, expectedInstance: expectedInstance) {
        case .success(let value): accepted = value
        case .failure(let refusal): return .failure(refusal)
        }
        let dataSet = accepted.file.dataSet
        let header = InstanceHeader(study: accepted.study, series: accepted.series, sop: accepted.sop,
                                    modality: dataSet.string(.modality) ?? "", bodyPart: dataSet.string(.bodyPartExamined) ?? "")
        let sopClass = accepted.sopClass, sop = accepted.sop.rawValue
        do {
            let compressed = try Zstd.compress(bytes, level: limits.compressionLevel)
            let digest = SHA256.hash(data: bytes).map(hex).joined()
            return .success(Prepared(instance: .init(header: header, compressed: compressed, rawSize: bytes.count, sha256: digest), sopClass: sopClass ?? ""))
        } catch let error as any CodedError {
            return .failure(Failure(sopClass: sopClass, sop: sop, reason: .processingFailure, error: error))
        } catch {
            return .failure(Failure(sopClass: sopClass, sop: sop, reason: .processingFailure, error: GatewayError.badRequest("processing failure")))
        }
    }

    /// The STOW-RS outcome of one store.
    func outcome(of result: Result<StudyStore.StoreOutcome, any Error>, _ header: InstanceHeader, sopClass: String) -> Outcome {
        let sop = header.sop.rawValue
        switch result {
        case .success(let outcome):
            Counter(label: "radgrid_gateway_instances_total", dimensions: [("outcome", outcome.rawValue)]).increment()
            return .stored(header, sopClassUID: sopClass, outcome)
        case .failure(let error as StudyStoreError) where error.codeValue == .forbidden:
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .notAuthorized, error: error)
        case .failure(let error as StudyStoreError):
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .cannotUnderstand, error: error)
        case .failure(let error as any CodedError):
            logger.error("instance not stored", metadata: ["error": "\(error.code)"])
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .processingFailure, error: error)
        case .failure:
            return .failed(sopClassUID: sopClass, sopInstanceUID: sop, reason: .processingFailure, error: GatewayError.badRequest("processing failure"))
        }
    }
}
