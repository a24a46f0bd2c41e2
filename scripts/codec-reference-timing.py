"""Median time of pydicom 3.0.2 (+ pylibjpeg plugins) decoding each file's pixel data, the
reference figure for the Swift codecs. Run single-core:
  PYTHONPATH=.pydeps taskset -c 0 python3 scripts/codec-reference-timing.py FILE... [RUNS=20]
"""
import os
import statistics
import sys
import time

import pydicom
from pydicom.pixels import get_decoder

runs = int(os.environ.get("RUNS", "20"))
for path in sys.argv[1:]:
    ds = pydicom.dcmread(path)
    uid = ds.file_meta.TransferSyntaxUID
    decoder = get_decoder(uid)
    try:
        decoder.as_array(ds)
    except Exception as exc:  # noqa: BLE001 - report and go on
        print(f"{os.path.basename(path)}\t{uid}\terror {exc}")
        continue
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        decoder.as_array(ds)
        times.append((time.perf_counter() - t0) * 1000)
    print(f"{os.path.basename(path)}\t{uid}\t{statistics.median(times):.3f} ms")
