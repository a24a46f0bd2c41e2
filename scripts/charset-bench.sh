#!/usr/bin/env bash
# Times the DICOM text decoders (SpecificCharacterSet and its codecs) with swiftc -O, outside
# the package build: the four decoder files have no dependencies but Glibc.
#   scripts/charset-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/opt/swift/usr/bin"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=Sources/DICOM
swiftc -O -parse-as-library -module-name CharsetBench -o "$out/charset-bench" \
  "$src/Iconv.swift" "$src/TextCodecs.swift" "$src/ISO2022JP.swift" "$src/SpecificCharacterSet.swift" \
  scripts/charset-bench/main.swift
"$out/charset-bench"

# The same values through pydicom 3.0.2's decode_bytes, for comparison (needs scripts/pydeps.sh).
if [[ -d .pydeps/pydicom ]]; then
  echo "pydicom 3.0.2 decode_bytes (best of 5):"
  PYTHONPATH=.pydeps python3 - <<'PY'
import time
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.valuerep import TEXT_VR_DELIMS
cases = [
    ("ASCII, no (0008,0005)", [""], b"CompressedSamples^CT1"),
    ("Latin-1 PN", ["ISO_IR 100"], "4dfc6c6c65725e4ae972f46d65"),
    ("Cyrillic PN", ["ISO_IR 144"], "bbeedae1d5dcd1e3e0d35eb8d2d0dd"),
    ("UTF-8 PN", ["ISO_IR 192"], "57616e675e5869616f446f6e673de78e8b5ee5b08fe69db13d"),
    ("GB18030 PN", ["GB18030"], "57616e675e5869616f446f6e673dcdf55ed0a1b6ab3d"),
    ("Korean ISO 2022 PN", ["", "ISO 2022 IR 149"],
     "486f6e675e47696c646f6e673d1b242943fbf35e1b242943d1ced4d73d1b242943c8ab5e1b242943b1e6b5bf"),
    ("Japanese ISO 2022 PN", ["ISO 2022 IR 13", "ISO 2022 IR 87"],
     "d4cfc0de5ec0dbb33d1b24423b3345441b284a5e1b244242404f3a1b284a3d1b24422464245e24401b284a5e1b2442243f246d24261b284a"),
]
for name, terms, value in cases:
    raw = value if isinstance(value, bytes) else bytes.fromhex(value)
    encodings = convert_encodings(terms)
    n, best = 20000, float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for _ in range(n):
            decode_bytes(raw, encodings, TEXT_VR_DELIMS)
        best = min(best, time.process_time() - t0)
    print(f"{name}: {best / n * 1e9:.0f} ns")
PY
fi
