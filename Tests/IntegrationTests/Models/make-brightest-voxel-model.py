# Writes brightest-voxel.onnx: a stand-in "classifier" whose probability for each slice is its
# brightest windowed voxel (ReduceMax over channels, rows, columns). On a head CT the skull
# saturates the window, so every series is "positive": the integration tests use it to check the
# ai stage's plumbing (hand-off, provenance, STAT) apart from any trained model's quality.
# Run with the onnx package (e.g. PYTHONPATH=.pydeps-train python3 make-brightest-voxel-model.py).
import hashlib, json, onnx
from onnx import helper, TensorProto

x = helper.make_tensor_value_info("slices", TensorProto.FLOAT, ["N", 3, 160, 160])
y = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1])
node = helper.make_node("ReduceMax", ["slices"], ["probability_flat"], axes=[2, 3], keepdims=0)
pick = helper.make_node("ReduceMax", ["probability_flat"], ["probability"], axes=[1], keepdims=1)
graph = helper.make_graph([node, pick], "brightest-voxel", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="radgrid-tests")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, "brightest-voxel.onnx")
digest = hashlib.sha256(open("brightest-voxel.onnx", "rb").read()).hexdigest()
manifest = {
    "name": "test-brightest-voxel", "version": "0.1.0", "file": "brightest-voxel.onnx", "sha256": digest,
    "description": "Test stand-in: the brightest windowed voxel of each slice (not a classifier).",
    "input": {"tensor": "slices", "modality": "CT", "bodyParts": ["HEAD", "BRAIN", "SKULL"],
              "windowHU": [-20, 140], "spacingMM": 1.5, "size": [160, 160], "channels": 3},
    "output": {"tensor": "probability", "activation": "none", "aggregate": "max",
               "findings": [{"index": 0, "code": "test.brightest", "label": "bright voxel (test model)",
                             "reportAt": 0.5, "criticalAt": 0.9}]},
}
json.dump(manifest, open("test-brightest-voxel.json", "w"), indent=2)
print(digest)
