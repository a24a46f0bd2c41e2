import RadGridCore
import StudyStore
import TaskQueue

/// The contract between the coordinator (producer) and the workers (consumers) for the
/// tasks of one study. Task keys are idempotency keys, so a re-delivered commit enqueues
/// nothing new.
///
/// - instance task `i/<study>/<sop>`, payload `<study>\n<sop>`, member of fan-in group `g/<study>`
/// - study task `s/<study>`, payload `<study>\n<sop>\n<sop>…` (the instances it screens),
///   enqueued exactly once by the completion of the group's last instance task
/// - `rg:{q:<queue>}:screened`: stream (field `study`) the study task's completion appends
///   to, read by the coordinator to hand the case to the router.
public enum StudyTasks {
    public static let defaultQueueName = "tasks"

    public static func instanceKey(study: String, sop: String) -> String { "i/\(study)/\(sop)" }
    public static func studyKey(study: String) -> String { "s/\(study)" }
    public static func groupID(study: String) -> String { "g/\(study)" }
    public static func screenedStream(_ queue: TaskQueue) -> String { queue.keys.custom("screened") }

    public static func lane(for priority: StudyPriority) -> Lane {
        switch priority {
        case .stat: .stat
        case .urgent: .urgent
        case .routine: .routine
        case .bulk: .bulk
        }
    }

    public static func instanceSpec(study: String, sop: String, lane: Lane) -> TaskSpec {
        TaskSpec(key: instanceKey(study: study, sop: sop), payload: Array("\(study)\n\(sop)".utf8), lane: lane)
    }

    public static func studySpec(study: String, sops: [String], lane: Lane) -> TaskSpec {
        TaskSpec(key: studyKey(study: study), payload: Array(([study] + sops).joined(separator: "\n").utf8), lane: lane)
    }

    /// Splits a payload into its lines: `[study, sop…]`.
    public static func decode(_ payload: [UInt8]) throws -> (study: String, sops: [String]) {
        let lines = String(decoding: payload, as: UTF8.self).split(separator: "\n").map(String.init)
        guard let study = lines.first, !study.isEmpty else {
            throw WorkerError(code: "worker.badPayload", message: "task payload names no study")
        }
        return (study, Array(lines.dropFirst()))
    }
}

/// Errors of the worker daemon. `permanent` ones dead-letter the task at once.
public struct WorkerError: CodedError, Equatable {
    public let code: String
    public let message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
