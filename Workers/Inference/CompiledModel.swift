import COpenVINO
import Logging
import Metrics
import RadGridCore
import Synchronization

/// A model compiled for one device, compiled once per process and shared by every task.
///
/// `run` starts the inference on OpenVINO's own threads and suspends until its completion
/// callback: the cooperative pool never waits on it. Infer requests are pooled, one per
/// inference in flight.
public final class CompiledModel: Sendable {
    nonisolated(unsafe) let compiled: OpaquePointer
    public let name: String
    public let device: String
    public let inputs: [PortDescription]
    public let outputs: [PortDescription]
    private let idle = Mutex<[InferRequest]>([])
    private let logger: Logger
    private let timer: Timer
    private let failures: Counter

    init(compiled: OpaquePointer, name: String, device: String, logger: Logger) throws(InferenceError) {
        self.compiled = compiled
        self.name = name
        self.device = device
        self.logger = logger
        timer = Timer(label: "radgrid_inference_seconds", dimensions: [("model", name)], preferredDisplayUnit: .seconds)
        failures = Counter(label: "radgrid_inference_failures_total", dimensions: [("model", name)])
        do throws(InferenceError) {
            inputs = try Self.ports(compiled, count: ov_compiled_model_inputs_size, port: ov_compiled_model_input_by_index)
            outputs = try Self.ports(compiled, count: ov_compiled_model_outputs_size, port: ov_compiled_model_output_by_index)
        } catch {
            ov_compiled_model_free(compiled)
            throw error
        }
    }

    deinit {
        idle.withLock { $0.removeAll() }
        ov_compiled_model_free(compiled)
    }

    /// Runs one inference. `inputs` are by input name; every input must be given. Returns the
    /// outputs by name, in the model's order.
    public func run(_ inputs: [String: Tensor]) async throws(InferenceError) -> [(name: String, tensor: Tensor)] {
        for key in inputs.keys where !self.inputs.contains(where: { $0.name == key }) {
            throw InferenceError(.input, "model \(name) has no input named \(key) (inputs: \(self.inputs.map(\.name).joined(separator: ", ")))")
        }
        let request = try checkOut()
        let started = WallClock.monotonicNanoseconds()
        do throws(InferenceError) {
            for (index, port) in self.inputs.enumerated() {
                guard let tensor = inputs[port.name] else { throw InferenceError(.input, "model \(name) needs input \(port.name)") }
                try check(tensor, against: port)
                try request.setInput(index: index, tensor)
            }
            try await request.infer(model: name)
            var results: [(name: String, tensor: Tensor)] = []
            for (index, port) in outputs.enumerated() { results.append((port.name, try request.output(index: index, model: name))) }
            timer.recordNanoseconds(Int64(WallClock.monotonicNanoseconds() - started))
            checkIn(request)
            return results
        } catch {
            failures.increment()
            // A request that failed mid-way is not reused.
            throw error
        }
    }

    /// The first output's values as floats, for single-output classifiers.
    public func runFloats(_ inputs: [String: Tensor]) async throws(InferenceError) -> Tensor {
        let results = try await run(inputs)
        guard let first = results.first else { throw InferenceError(.run, "model \(name) produced no output") }
        return first.tensor
    }

    func check(_ tensor: Tensor, against port: PortDescription) throws(InferenceError) {
        if let type = port.elementType, type != tensor.elementType {
            throw InferenceError(.input, "input \(port.name) of model \(name) is \(type.rawValue), got \(tensor.elementType.rawValue)")
        }
        let fits = tensor.shape.count == port.shape.count && zip(tensor.shape, port.shape).allSatisfy { $1 == nil || $0 == $1 }
        guard fits else {
            throw InferenceError(.input, "input \(port.name) of model \(name) has shape [\(port.shape.map { $0.map(String.init) ?? "?" }.joined(separator: ","))], got \(tensor.shape)")
        }
    }

    private func checkOut() throws(InferenceError) -> InferRequest {
        if let request = idle.withLock({ $0.popLast() }) { return request }
        var raw: OpaquePointer?
        let status = ov_compiled_model_create_infer_request(compiled, &raw)
        guard status == OK, let raw else { throw InferenceError(.run, "model \(name): no infer request: \(lastMessage(status))") }
        return InferRequest(raw)
    }

    private func checkIn(_ request: InferRequest) { idle.withLock { $0.append(request) } }

    private static func ports(_ compiled: OpaquePointer,
                              count: (OpaquePointer?, UnsafeMutablePointer<Int>?) -> ov_status_e,
                              port: (OpaquePointer?, Int, UnsafeMutablePointer<OpaquePointer?>?) -> ov_status_e) throws(InferenceError) -> [PortDescription] {
        var n = 0
        guard count(compiled, &n) == OK else { throw InferenceError(.compile, "cannot list the model's ports: \(lastMessage(GENERAL_ERROR))") }
        var result: [PortDescription] = []
        for index in 0..<n {
            var handle: OpaquePointer?
            guard port(compiled, index, &handle) == OK, let handle else { throw InferenceError(.compile, "cannot read port \(index)") }
            defer { ov_output_const_port_free(handle) }
            var name = "port\(index)"
            var text: UnsafeMutablePointer<CChar>?
            if ov_port_get_any_name(handle, &text) == OK, let text {
                name = String(cString: text)
                ov_free(text)
            }
            var type = ov_element_type_e(rawValue: 0)
            let element = ov_port_get_element_type(handle, &type) == OK ? ElementType(type) : nil
            var partial = ov_partial_shape_t()
            var shape: [Int?] = []
            if ov_port_get_partial_shape(handle, &partial) == OK {
                if !ov_rank_is_dynamic(partial.rank), let dims = partial.dims {
                    for d in 0..<Int(partial.rank.max) {
                        shape.append(ov_dimension_is_dynamic(dims[d]) ? nil : Int(dims[d].max))
                    }
                }
                ov_partial_shape_free(&partial)
            }
            result.append(PortDescription(name: name, elementType: element, shape: shape))
        }
        return result
    }
}

/// One OpenVINO infer request and the continuation of the inference it is running.
final class InferRequest: @unchecked Sendable {
    // Only the task that checked the request out touches it, until the completion callback.
    let raw: OpaquePointer
    let waiter = Mutex<CheckedContinuation<ov_status_e, Never>?>(nil)
    /// OpenVINO keeps the pointer it is given, so the callback record lives as long as the request.
    let callback: UnsafeMutablePointer<ov_callback_t>

    init(_ raw: OpaquePointer) {
        self.raw = raw
        callback = .allocate(capacity: 1)
        callback.initialize(to: ov_callback_t(callback_func: inferenceCompleted, args: nil))
        callback.pointee.args = Unmanaged.passUnretained(self).toOpaque()
        ov_infer_request_set_callback(raw, callback)
    }

    deinit {
        ov_infer_request_free(raw)
        callback.deinitialize(count: 1)
        callback.deallocate()
    }

    func setInput(index: Int, _ value: Tensor) throws(InferenceError) {
        let dims = value.shape.map { Int64($0) }
        var shape = ov_shape_t()
        guard dims.withUnsafeBufferPointer({ ov_shape_create(Int64($0.count), $0.baseAddress, &shape) }) == OK else {
            throw InferenceError(.input, "bad shape \(value.shape)")
        }
        defer { ov_shape_free(&shape) }
        var tensor: OpaquePointer?
        let status = ov_tensor_create(value.elementType.openVINO, shape, &tensor)
        guard status == OK, let tensor else { throw InferenceError(.input, "cannot allocate input \(index): \(lastMessage(status))") }
        defer { ov_tensor_free(tensor) }
        var data: UnsafeMutableRawPointer?
        guard ov_tensor_data(tensor, &data) == OK, let data else { throw InferenceError(.input, "input \(index) has no buffer") }
        value.bytes.withUnsafeBytes { data.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let set = ov_infer_request_set_input_tensor_by_index(raw, index, tensor)
        guard set == OK else { throw InferenceError(.input, "input \(index) refused: \(lastMessage(set))") }
    }

    func infer(model: String) async throws(InferenceError) {
        let started: ov_status_e = await withCheckedContinuation { continuation in
            waiter.withLock { $0 = continuation }
            let status = ov_infer_request_start_async(raw)
            if status != OK {
                // No callback will come: resume here.
                waiter.withLock { $0.take() }?.resume(returning: status)
            }
        }
        guard started == OK else { throw InferenceError(.run, "model \(model) did not start: \(lastMessage(started))") }
        // After the completion callback, `wait` returns at once with the inference's status.
        let status = ov_infer_request_wait(raw)
        guard status == OK else { throw InferenceError(.run, "model \(model) failed: \(lastMessage(status))") }
    }

    func output(index: Int, model: String) throws(InferenceError) -> Tensor {
        var tensor: OpaquePointer?
        let status = ov_infer_request_get_output_tensor_by_index(raw, index, &tensor)
        guard status == OK, let tensor else { throw InferenceError(.run, "model \(model) output \(index): \(lastMessage(status))") }
        defer { ov_tensor_free(tensor) }
        var shape = ov_shape_t()
        guard ov_tensor_get_shape(tensor, &shape) == OK else { throw InferenceError(.run, "model \(model) output \(index) has no shape") }
        let dims = (0..<Int(shape.rank)).map { Int(shape.dims[$0]) }
        ov_shape_free(&shape)
        var type = ov_element_type_e(rawValue: 0)
        guard ov_tensor_get_element_type(tensor, &type) == OK, let element = ElementType(type) else {
            throw InferenceError(.run, "model \(model) output \(index) has an element type this runtime does not read")
        }
        var size = 0
        var data: UnsafeMutableRawPointer?
        guard ov_tensor_get_byte_size(tensor, &size) == OK, ov_tensor_data(tensor, &data) == OK, let data else {
            throw InferenceError(.run, "model \(model) output \(index) has no buffer")
        }
        return try Tensor(shape: dims, elementType: element, bytes: Array(UnsafeRawBufferPointer(start: data, count: size)))
    }
}

/// OpenVINO's completion callback (on one of its threads): resumes the waiting task.
private let inferenceCompleted: @convention(c) (UnsafeMutableRawPointer?) -> Void = { args in
    guard let args else { return }
    let request = Unmanaged<InferRequest>.fromOpaque(args).takeUnretainedValue()
    request.waiter.withLock { $0.take() }?.resume(returning: OK)
}
