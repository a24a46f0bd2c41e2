# Writes example-chest-classifier.onnx, standing in for a hospital's or vendor's own ONNX model
# in docs/IMAGING.md's worked example. Its weights are fixed pseudo-random numbers (seed 7): it
# classifies nothing real. What matters is its shape, unlike the grid's own models: one
# channel, 224x224, a fixed batch of one, two raw logits ("scores") that need a softmax.
# Run with the onnx and numpy packages (e.g. PYTHONPATH=.pydeps-train python3 make-example-model.py).
import hashlib, json
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

rng = np.random.default_rng(7)
weights = {
    "conv_w": rng.normal(0, 0.3, (4, 1, 5, 5)).astype(np.float32),
    "conv_b": np.zeros(4, np.float32),
    "fc_w": rng.normal(0, 0.5, (2, 4)).astype(np.float32),
    "fc_b": np.array([0.0, -0.5], np.float32),
}
nodes = [
    helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["features"], strides=[4, 4], pads=[2, 2, 2, 2]),
    helper.make_node("Relu", ["features"], ["active"]),
    helper.make_node("GlobalAveragePool", ["active"], ["pooled"]),
    helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["scores"], transB=1),
]
graph = helper.make_graph(
    nodes, "example-chest-classifier",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, 224, 224])],
    [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2])],
    [numpy_helper.from_array(v, k) for k, v in weights.items()])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="radgrid-docs")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "example-chest-classifier.onnx")
print(hashlib.sha256(open("example-chest-classifier.onnx", "rb").read()).hexdigest())
