/// The work the coordinator hands to workers, one kind per stage, with versioned payloads.
///
/// A task's key is its idempotency key in the queue: re-sending the same commit enqueues
/// nothing new. The `generation` is bumped when an operator requeues a study, so its tasks
/// get fresh keys and run again.
///
/// - instance task `i/<study>/<generation>/<sop>`, member of fan-in group `g/<study>/<generation>`
/// - study task `s/<study>/<generation>`, enqueued once by the completion of the group's last member
/// - model task `a/<study>/<generation>`, in the `ai` queue, enqueued by the study task when a
///   model screens one of the study's series
public enum GridTask: Sendable, Hashable {
    case instance(InstanceTask)
    case study(StudyTask)
    case model(ModelTask)

    /// The payload format this build writes; readers accept it and older known versions.
    public static let payloadVersion = 1

    public var key: String {
        switch self {
        case .instance(let task): Self.instanceKey(study: task.study, generation: task.generation, sop: task.sop)
        case .study(let task): Self.studyKey(study: task.study, generation: task.generation)
        case .model(let task): Self.modelKey(study: task.study, generation: task.generation)
        }
    }

    public var study: StudyUID {
        switch self {
        case .instance(let task): task.study
        case .study(let task): task.study
        case .model(let task): task.study
        }
    }

    /// `instance`, `study` or `ai`: the stage, for metrics and logs.
    public var stage: String {
        switch self {
        case .instance: "instance"
        case .study: "study"
        case .model: "ai"
        }
    }

    public static func instanceKey(study: StudyUID, generation: Int, sop: SOPInstanceUID) -> String { "i/\(study)/\(generation)/\(sop)" }
    public static func studyKey(study: StudyUID, generation: Int) -> String { "s/\(study)/\(generation)" }
    public static func modelKey(study: StudyUID, generation: Int) -> String { "a/\(study)/\(generation)" }
    public static func groupID(study: StudyUID, generation: Int) -> String { "g/\(study)/\(generation)" }

    /// The JSON payload: `{"v":1,"kind":"instance","study":…,"generation":…,"sop":…}`.
    public func payload() -> [UInt8] {
        var out = "{\"v\":\(Self.payloadVersion),\"kind\":"
        switch self {
        case .instance(let task):
            out += "\"instance\",\"study\":\"\(task.study)\",\"generation\":\(task.generation),\"sop\":\"\(task.sop)\"}"
        case .study(let task):
            out += "\"study\",\"study\":\"\(task.study)\",\"generation\":\(task.generation),\"sops\":["
            out += task.sops.map { "\"\($0)\"" }.joined(separator: ",")
            out += "]}"
        case .model(let task):
            out += "\"ai\",\"study\":\"\(task.study)\",\"generation\":\(task.generation),\"sops\":["
            out += task.sops.map { "\"\($0)\"" }.joined(separator: ",")
            out += "]}"
        }
        // UIDs are digits and dots (validated types), so no JSON escaping is ever needed.
        return Array(out.utf8)
    }

    /// Reads a payload; throws `contract.invalidPayload` / `contract.unsupportedVersion`.
    public static func decode(_ payload: [UInt8]) throws(ContractError) -> GridTask {
        var reader = JSONObjectReader(payload)
        let fields: [String: JSONScalar]
        do { fields = try reader.readObject() } catch { throw ContractError(.invalidPayload, "task payload is not a JSON object: \(error.message)") }
        guard case .number(let version)? = fields["v"] else { throw ContractError(.invalidPayload, "task payload has no version") }
        guard version == 1 else { throw ContractError(.unsupportedVersion, "task payload version \(version) is not supported (this build reads 1)") }
        guard case .string(let studyText)? = fields["study"], case .number(let generation)? = fields["generation"], generation >= 0 else {
            throw ContractError(.invalidPayload, "task payload needs study and generation")
        }
        let study = try StudyUID(studyText)
        switch fields["kind"] {
        case .string("instance")?:
            guard case .string(let sop)? = fields["sop"] else { throw ContractError(.invalidPayload, "instance task payload needs sop") }
            return .instance(InstanceTask(study: study, generation: generation, sop: try SOPInstanceUID(sop)))
        case .string(let kind)? where kind == "study" || kind == "ai":
            guard case .strings(let sops)? = fields["sops"] else { throw ContractError(.invalidPayload, "\(kind) task payload needs sops") }
            var uids: [SOPInstanceUID] = []
            uids.reserveCapacity(sops.count)
            for sop in sops { uids.append(try SOPInstanceUID(sop)) }
            return kind == "ai" ? .model(ModelTask(study: study, generation: generation, sops: uids))
                : .study(StudyTask(study: study, generation: generation, sops: uids))
        default:
            throw ContractError(.invalidPayload, "task payload kind must be instance, study or ai")
        }
    }
}

/// Decode, preprocess and keep one instance's screening slice.
public struct InstanceTask: Sendable, Hashable {
    public var study: StudyUID
    public var generation: Int
    public var sop: SOPInstanceUID
    public init(study: StudyUID, generation: Int, sop: SOPInstanceUID) {
        self.study = study
        self.generation = generation
        self.sop = sop
    }
}

/// Screen the whole study from its instances' results.
public struct StudyTask: Sendable, Hashable {
    public var study: StudyUID
    public var generation: Int
    public var sops: [SOPInstanceUID]
    public init(study: StudyUID, generation: Int, sops: [SOPInstanceUID]) {
        self.study = study
        self.generation = generation
        self.sops = sops
    }
}

/// Run the study's models (the `ai` stage) on its instances' results, then merge their
/// findings with the study task's rule-based screen: the same fields as the study task (the
/// study, its run, its instances), a task kind of its own.
public typealias ModelTask = StudyTask
