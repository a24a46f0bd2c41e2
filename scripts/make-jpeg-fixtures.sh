#!/usr/bin/env bash
# Regenerates Tests/DICOMCodecsTests/Resources/jpeg: JPEG codestreams (dcmtk's dcmcjpeg on
# corpus images, a real 12-bit file, and edge streams from scripts/jpeg_reference_encoder.py)
# and expected.json with pydicom 3.0.2 + pylibjpeg-libjpeg's decoding of each.
#   scripts/make-jpeg-fixtures.sh            (needs dcmtk, scripts/pydeps.sh, ../shared/corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/pydeps.sh
command -v dcmcjpeg >/dev/null || { echo "dcmcjpeg (dcmtk) not found: make deps" >&2; exit 1; }
corpus=${RADGRID_CORPUS_DIR:-../shared/corpus}/dicom
[[ -d "$corpus" ]] || { echo "corpus not found at $corpus" >&2; exit 1; }
out=Tests/DICOMCodecsTests/Resources/jpeg
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"
PYTHONPATH="$PWD/.pydeps:$PWD/scripts" python3 scripts/make-jpeg-fixtures.py "$corpus" "$work" "$out"
du -sh "$out"
