#!/usr/bin/env bash
# Builds the compressed-pixel-data test fixtures in Tests/DICOMTests/Resources/codecs/ from
# the reference corpus with dcmtk (dcmcjpeg, dcmcjpls, dcmcrle), GDCM (gdcmconv), OpenJPH
# (ojph_compress, for HTJ2K) and pydicom's own encoders and encapsulation helpers, then
# writes expected.json with pydicom 3.0.2's reading of every fixture (the reference the
# Swift tests compare against). Lossy fixtures also get pydicom's decoded array as
# <name>.ref (raw DEFLATE of the little-endian bytes) for a per-sample comparison.
#   scripts/make-codec-fixtures.sh            regenerate everything
# Needs: scripts/pydeps.sh (run by this script), dcmtk, libgdcm-tools, openjph-tools, and
# the corpus at ../shared/corpus (or $RADGRID_CORPUS_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
corpus=${RADGRID_CORPUS_DIR:-$root/../shared/corpus}
[[ -f "$corpus/dicom/expected.json" ]] && corpus="$corpus/dicom"
[[ -f "$corpus/CT_small.dcm" ]] || { echo "corpus not found at $corpus" >&2; exit 1; }
for tool in dcmcjpeg dcmcjpls dcmcrle gdcmconv ojph_compress; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install dcmtk libgdcm-tools openjph-tools)" >&2; exit 1; }
done
scripts/pydeps.sh
out="$root/Tests/DICOMTests/Resources/codecs"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"
PYTHONPATH="$root/.pydeps" python3 "$root/scripts/codec_fixtures.py" "$corpus" "$work" "$out"
du -sh "$out"
