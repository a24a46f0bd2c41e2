"""onnxruntime as the reference for the worker's in-process OpenVINO inference (issue #20).

    PYTHONPATH=.pydeps python3 Tests/Clients/onnx_reference.py run MODEL IN.npy OUT.npy [--threads N]
    PYTHONPATH=.pydeps python3 Tests/Clients/onnx_reference.py time MODEL DIR [--threads 1] [--repeat R] [--batch 16]

`run` feeds IN (cast to float32) to the model's first input and writes its first output to OUT
as float32. `time` runs every `*.npy` in DIR (one series each, [N,C,H,W] float32) in batches of
16 slices, as ModelScreener does, R times after one untimed warm-up batch, and prints one JSON
line: the median over the repeats of the mean milliseconds per series (inference only: the
arrays are loaded before timing), images per second at that median, the series count and the
runtime's version. Always CPUExecutionProvider, intra-op threads as given, one inter-op
thread, sequential execution: the same "one core" the Swift side compiles for.
"""
import argparse
import glob
import json
import os
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def session(model, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def run(args):
    sess = session(args.model, args.threads)
    x = np.load(args.input).astype(np.float32, copy=False)
    first_in = sess.get_inputs()[0].name
    first_out = sess.get_outputs()[0].name
    y = sess.run([first_out], {first_in: x})[0]
    np.save(args.output, np.ascontiguousarray(y, dtype=np.float32))
    print(json.dumps({"input": list(x.shape), "output": list(y.shape), "runtime": f"onnxruntime {ort.__version__}"}))


def time_series(args):
    paths = sorted(glob.glob(os.path.join(args.dir, "*.npy")))
    if not paths:
        print(f"no .npy files in {args.dir}", file=sys.stderr)
        sys.exit(2)
    sess = session(args.model, args.threads)
    first_in = sess.get_inputs()[0].name
    first_out = sess.get_outputs()[0].name
    series = [np.ascontiguousarray(np.load(p), dtype=np.float32) for p in paths]
    for s in series:
        if s.ndim != 4:
            print(f"a series must be [N,C,H,W], got {s.shape}", file=sys.stderr)
            sys.exit(2)
    # One untimed batch: the first run allocates and plans (the Swift side warms up alike).
    sess.run([first_out], {first_in: series[0][:args.batch]})
    per_repeat = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        for s in series:
            for start in range(0, len(s), args.batch):
                sess.run([first_out], {first_in: s[start:start + args.batch]})
        per_repeat.append((time.perf_counter() - started) * 1000 / len(series))
    ms = statistics.median(per_repeat)
    slices = sum(len(s) for s in series)
    print(json.dumps({"ms_per_series": ms, "images_per_s": slices / (ms * len(series) / 1000) if ms > 0 else None,
                      "series": len(series), "slices": slices, "repeats": args.repeat, "threads": args.threads,
                      "batch": args.batch, "runtime": f"onnxruntime {ort.__version__}"}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("model")
    r.add_argument("input")
    r.add_argument("output")
    r.add_argument("--threads", type=int, default=1)
    t = sub.add_parser("time")
    t.add_argument("model")
    t.add_argument("dir")
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--repeat", type=int, default=3)
    t.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    if args.threads < 1 or getattr(args, "repeat", 1) < 1 or getattr(args, "batch", 1) < 1:
        parser.error("--threads, --repeat and --batch must be >= 1")
    run(args) if args.command == "run" else time_series(args)


if __name__ == "__main__":
    main()
