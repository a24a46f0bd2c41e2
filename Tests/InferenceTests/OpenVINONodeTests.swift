import Foundation
import Inference
import Testing

/// The wrapper against ONNX's own backend node tests (Debian's libonnx-testdata): each test is
/// a one-operator model with inputs and the outputs ONNX's reference computed.
@Suite struct OpenVINONodeTests {
    static let root = "/usr/share/libonnx-testdata/data/node"
    static let cases = [
        "test_relu", "test_sigmoid", "test_add", "test_conv_with_strides_padding", "test_conv_with_autopad_same",
        "test_maxpool_2d_default", "test_averagepool_2d_default", "test_globalmaxpool", "test_globalaveragepool",
        "test_gemm_default_matrix_bias", "test_matmul_2d", "test_softmax_axis_1", "test_batchnorm_example",
        "test_reduce_max_keepdims_random",
    ]

    @Test(arguments: cases)
    func nodeTestMatchesONNXReference(_ name: String) async throws {
        let folder = "\(Self.root)/\(name)"
        #expect(FileManager.default.fileExists(atPath: "\(folder)/model.onnx"), "libonnx-testdata is not installed (make deps)")
        let model = try InferenceRuntime.shared().compile(modelAt: "\(folder)/model.onnx")
        let data = "\(folder)/test_data_set_0"
        let files = try FileManager.default.contentsOfDirectory(atPath: data).sorted()
        var inputs: [String: Tensor] = [:]
        for (index, file) in files.filter({ $0.hasPrefix("input_") }).enumerated() {
            let proto = try TensorProto.read("\(data)/\(file)")
            inputs[proto.name.isEmpty ? model.inputs[index].name : proto.name] = proto.tensor
        }
        let expected = try files.filter { $0.hasPrefix("output_") }.map { try TensorProto.read("\(data)/\($0)").tensor }
        let outputs = try await model.run(inputs)
        #expect(outputs.count == expected.count)
        for (got, want) in zip(outputs.map(\.tensor), expected) {
            #expect(got.shape == want.shape, "\(name): shape")
            let a = got.floats(), b = want.floats()
            #expect(a.count == b.count)
            let worst = zip(a, b).map { abs($0 - $1) - 1e-4 * abs($1) }.max() ?? 0
            #expect(worst <= 1e-4, "\(name): largest difference beyond tolerance \(worst)")
        }
    }

    @Test func concurrentInferencesGiveTheSameAnswer() async throws {
        let folder = "\(Self.root)/test_conv_with_strides_padding"
        let model = try InferenceRuntime.shared().compile(modelAt: "\(folder)/model.onnx", options: CompileOptions(threads: 1))
        let x = try TensorProto.read("\(folder)/test_data_set_0/input_0.pb")
        let w = try TensorProto.read("\(folder)/test_data_set_0/input_1.pb")
        let want = try TensorProto.read("\(folder)/test_data_set_0/output_0.pb").tensor.floats()
        let results = try await withThrowingTaskGroup(of: [Float].self) { group in
            for _ in 0..<16 { group.addTask { try await model.runFloats([x.name: x.tensor, w.name: w.tensor]).floats() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 16)
        for r in results { #expect(zip(r, want).allSatisfy { abs($0 - $1) <= 1e-4 }) }
    }

    @Test func badModelsDevicesAndInputsAreTypedErrors() async throws {
        let runtime = try InferenceRuntime.shared()
        #expect(runtime.devices().contains("CPU"))
        #expect(!runtime.version.isEmpty)
        let missing = #expect(throws: InferenceError.self) { try runtime.compile(modelAt: "/nonexistent/model.onnx") }
        #expect(missing?.code == "inference.modelUnreadable")

        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("radgrid-garbage-\(getpid()).onnx").path
        try Data("not a model".utf8).write(to: URL(fileURLWithPath: garbage))
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        let unreadable = #expect(throws: InferenceError.self) { try runtime.compile(modelAt: garbage) }
        #expect(unreadable?.code == "inference.modelUnreadable")

        let relu = "\(Self.root)/test_relu/model.onnx"
        let device = #expect(throws: InferenceError.self) { try runtime.compile(modelAt: relu, options: CompileOptions(device: "NOSUCHDEVICE")) }
        #expect(device?.code == "inference.device")

        let model = try runtime.compile(modelAt: relu)
        let port = try #require(model.inputs.first)
        #expect(port.elementType == .float32)
        let wrongShape = try Tensor(shape: [2, 2], floats: [1, -1, 2, -2])
        await #expect(throws: InferenceError.self) { _ = try await model.run([port.name: wrongShape]) }
        await #expect(throws: InferenceError.self) { _ = try await model.run(["nope": wrongShape]) }
        let wrongType = try Tensor(shape: port.shape.map { $0 ?? 1 }, elementType: .int64,
                                   bytes: [UInt8](repeating: 0, count: port.shape.map { $0 ?? 1 }.reduce(1, *) * 8))
        let typeError = await #expect(throws: InferenceError.self) { _ = try await model.run([port.name: wrongType]) }
        #expect(typeError?.code == "inference.input")
    }
}
