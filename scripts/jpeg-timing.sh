#!/usr/bin/env bash
# Times SwiftJPEGCodec (release: swiftc -O -wmo over the codec's sources) against pydicom
# 3.0.2 + pylibjpeg-libjpeg on the same streams, one core each, best of N runs:
#   a 512×512 16-bit CT-like JPEG Lossless SV1 frame (.4.70) made with dcmcjpeg, and the
#   larger committed fixtures. Streams and the binary go to .build/jpeg-timing (not committed).
#   scripts/jpeg-timing.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/opt/swift/usr/bin
seconds=${1:-3}
scripts/pydeps.sh
dir=.build/jpeg-timing
mkdir -p "$dir/src"
corpus=${RADGRID_CORPUS_DIR:-../shared/corpus}/dicom
PYTHONPATH="$PWD/.pydeps" python3 - "$corpus" "$dir" <<'PY'
import os, subprocess, sys
import numpy as np, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
corpus, out = sys.argv[1:3]
ct = pydicom.dcmread(os.path.join(corpus, "CT_small.dcm")).pixel_array
rng = np.random.default_rng(7)
big = np.kron(ct.astype(np.float64), np.ones((4, 4)))
big = np.clip(big + rng.normal(0, 6, big.shape), -1024, 3071).astype(np.int16)
ds = Dataset(); ds.file_meta = FileMetaDataset()
ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
ds.Modality = "CT"; ds.Rows = ds.Columns = 512; ds.SamplesPerPixel = 1
ds.PhotometricInterpretation = "MONOCHROME2"; ds.BitsAllocated = 16; ds.BitsStored = 16; ds.HighBit = 15
ds.PixelRepresentation = 1; ds.PixelData = big.tobytes()
src = os.path.join(out, "ct512.dcm"); dst = os.path.join(out, "ct512-sv1.dcm")
ds.save_as(src, enforce_file_format=True)
subprocess.run(["dcmcjpeg", "+e1", src, dst], check=True)
frame = next(generate_frames(pydicom.dcmread(dst).PixelData, number_of_frames=1))
open(os.path.join(out, "ct512-sv1.jpg"), "wb").write(frame)
PY

# pydicom + pylibjpeg-libjpeg: pixel_array of a one-frame data set (what the grid replaces),
# and the bare libjpeg decode call, best of runs.
time_python() { # file rows cols spp ba bs signed pi ts
  PYTHONPATH="$PWD/.pydeps" python3 - "$@" "$seconds" <<'PY'
import sys, time
import libjpeg
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
path, rows, cols, spp, ba, bs, signed, pi, ts, seconds = sys.argv[1:]
stream = open(path, "rb").read()
def dataset():
    ds = Dataset(); ds.file_meta = FileMetaDataset(); ds.file_meta.TransferSyntaxUID = ts
    ds.Rows, ds.Columns, ds.SamplesPerPixel = int(rows), int(cols), int(spp)
    ds.PhotometricInterpretation = pi; ds.BitsAllocated = int(ba); ds.BitsStored = int(bs); ds.HighBit = int(bs) - 1
    ds.PixelRepresentation = int(signed); ds.PixelData = encapsulate([stream]); ds["PixelData"].VR = "OB"
    if int(spp) > 1: ds.PlanarConfiguration = 0
    return ds
nbytes = int(rows) * int(cols) * int(spp) * (1 if int(ba) <= 8 else 2)
for label, fn in (("pydicom pixel_array", lambda: dataset().pixel_array),
                  ("pylibjpeg-libjpeg decode", lambda: libjpeg.decode(stream))):
    fn(); best = float("inf"); runs = 0; start = time.perf_counter()
    while time.perf_counter() - start < float(seconds):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0); runs += 1
    print(f"{label}: {runs} runs, best {best*1000:.3f} ms, {nbytes/1e6/best:.1f} MB/s of decoded pixels")
PY
}

# The timing binary: the codec's sources in one module (RadGridCore's CodedError inlined).
rm -f "$dir/src"/*.swift
cp Sources/RadGridCore/CodedError.swift "$dir/src/"
for f in Sources/DICOMCodecs/*.swift Sources/DICOMCodecs/JPEG/*.swift; do
  sed 's/^import RadGridCore$//' "$f" > "$dir/src/$(basename "$f")"
done
cp scripts/jpeg-timing/main.swift "$dir/src/main.swift"
swiftc -O -wmo -swift-version 6 -o "$dir/jpeg-timing" "$dir/src"/*.swift

fixtures=Tests/DICOMCodecsTests/Resources/jpeg
run() { # label file rows cols spp ba bs signed pi ts
  local label=$1; shift
  echo "== $label"
  "$dir/jpeg-timing" "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$seconds"
  time_python "$@"
}
run "512x512 16-bit CT, JPEG Lossless SV1 (.4.70)" "$dir/ct512-sv1.jpg" 512 512 1 16 16 1 MONOCHROME2 1.2.840.10008.1.2.4.70
run "1024x256 12-bit JPEG Extended (JPGExtended.dcm, .4.51)" "$fixtures/real-extended12.jpg" 1024 256 1 16 12 0 MONOCHROME2 1.2.840.10008.1.2.4.51
run "128x128 12-bit JPEG Extended q90 (.4.51)" "$fixtures/extended12-q90-ct12.jpg" 128 128 1 16 12 0 MONOCHROME2 1.2.840.10008.1.2.4.51
run "61x45 colour lossless SV1 (.4.70)" "$fixtures/lossless-sv1-rgb.jpg" 45 61 3 8 8 0 RGB 1.2.840.10008.1.2.4.70
