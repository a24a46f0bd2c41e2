import COpenVINO
import Foundation
import Logging
import RadGridCore
import Synchronization

/// How a model is compiled for its device.
public struct CompileOptions: Sendable, Equatable {
    /// `CPU` (always present), `GPU` where OpenVINO sees one, or any device name it lists.
    public var device: String = "CPU"
    /// Threads one inference may use; nil lets OpenVINO choose (all cores).
    public var threads: Int?
    /// `LATENCY` (one request at a time finishes soonest) or `THROUGHPUT` (many in flight).
    public var performanceHint: String = "LATENCY"
    /// Kept at f32 by default: OpenVINO would otherwise run bf16 on CPUs that have it, and the
    /// models' outputs must match the reference runtime's.
    public var precision: String = "f32"

    public init(device: String = "CPU", threads: Int? = nil, performanceHint: String = "LATENCY", precision: String = "f32") {
        self.device = device
        self.threads = threads
        self.performanceHint = performanceHint
        self.precision = precision
    }
}

/// OpenVINO in this process: one core object, models read and compiled through it.
/// `shared()` starts it once; compiling is thread-safe.
public final class InferenceRuntime: Sendable {
    nonisolated(unsafe) let core: OpaquePointer
    /// OpenVINO's build, e.g. `2026.4.1-22982-…`.
    public let version: String
    let logger: Logger

    private static let instance = Mutex<InferenceRuntime?>(nil)

    /// The process's runtime, created on first use.
    public static func shared(logger: Logger = Logger(label: "radgrid.inference")) throws(InferenceError) -> InferenceRuntime {
        let result: Result<InferenceRuntime, InferenceError> = instance.withLock { current in
            if let current { return .success(current) }
            do throws(InferenceError) {
                let runtime = try InferenceRuntime(logger: logger)
                current = runtime
                return .success(runtime)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    init(logger: Logger) throws(InferenceError) {
        var core: OpaquePointer?
        let status = ov_core_create(&core)
        guard status == OK, let core else {
            throw InferenceError(.unavailable, "OpenVINO could not start: \(lastMessage(status))")
        }
        self.core = core
        var version = ov_version_t()
        if ov_get_openvino_version(&version) == OK, let build = version.buildNumber {
            self.version = String(cString: build)
            ov_version_free(&version)
        } else {
            self.version = "unknown"
        }
        self.logger = logger
    }

    deinit { ov_core_free(core) }

    /// Devices OpenVINO can run on here (`CPU`, and `GPU` with a supported GPU and driver).
    public func devices() -> [String] {
        var list = ov_available_devices_t()
        guard ov_core_get_available_devices(core, &list) == OK else { return [] }
        defer { ov_available_devices_free(&list) }
        return (0..<list.size).compactMap { list.devices[$0].map { String(cString: $0) } }
    }

    /// Reads an ONNX (or OpenVINO IR) file and compiles it for `options.device`.
    public func compile(modelAt path: String, options: CompileOptions = CompileOptions(), name: String? = nil) throws(InferenceError) -> CompiledModel {
        let label = name ?? (path as NSString).lastPathComponent
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw InferenceError(.modelUnreadable, "model file \(label) is missing or unreadable")
        }
        let available = devices()
        // A device name may carry a suffix (`GPU.0`) or be a virtual device (AUTO, HETERO:…).
        let base = options.device.split(whereSeparator: { $0 == "." || $0 == ":" }).first.map(String.init) ?? options.device
        guard available.contains(where: { $0 == options.device || $0.hasPrefix(base) }) || ["AUTO", "HETERO", "MULTI"].contains(base) else {
            throw InferenceError(.device, "device \(options.device) is not available here (OpenVINO sees: \(available.joined(separator: ", ")))")
        }
        var model: OpaquePointer?
        let readStatus = ov_core_read_model(core, path, nil, &model)
        guard readStatus == OK, let model else {
            throw InferenceError(.modelUnreadable, "OpenVINO could not read model \(label): \(lastMessage(readStatus))")
        }
        defer { ov_model_free(model) }

        // OpenVINO's property keys (the C header's ov_property_key_* strings).
        var settings: [(String, String)] = [("PERFORMANCE_HINT", options.performanceHint)]
        if options.device.hasPrefix("CPU") { settings.append(("INFERENCE_PRECISION_HINT", options.precision)) }
        if let threads = options.threads { settings.append(("INFERENCE_NUM_THREADS", String(threads))) }
        let keys = settings.map { strdup($0.0) }, values = settings.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let properties = zip(keys, values).map { ov_property_t(key: $0.0, value: UnsafeRawPointer($0.1)) }
        var compiled: OpaquePointer?
        let compileStatus = properties.withUnsafeBufferPointer { props in
            ov_core_compile_model_props(core, model, options.device, props.count, props.baseAddress, &compiled)
        }
        guard compileStatus == OK, let compiled else {
            throw InferenceError(.compile, "OpenVINO could not compile \(label) for \(options.device): \(lastMessage(compileStatus))")
        }
        return try CompiledModel(compiled: compiled, name: label, device: options.device, logger: logger)
    }
}

/// OpenVINO's message for the last failed call on this thread (no image data ever reaches it).
func lastMessage(_ status: ov_status_e) -> String {
    if let text = ov_get_last_err_msg() {
        let message = String(cString: text).trimmingCharacters(in: .whitespacesAndNewlines)
        ov_free(text)
        if !message.isEmpty { return message }
    }
    return "status \(status.rawValue)"
}
