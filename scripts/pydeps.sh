#!/usr/bin/env bash
# Installs the pinned PyPI packages the tests and benchmarks use as outside references
# (pydicom + pylibjpeg decoders, onnxruntime, ...) into the project-local folder .pydeps/, never
# system-wide. Idempotent: a marker file records the installed pin set.
#   scripts/pydeps.sh            install if missing
#   scripts/pydeps.sh --path     print the folder (for PYTHONPATH)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/.pydeps"
if [[ "${1:-}" == "--path" ]]; then echo "$dir"; exit 0; fi

pins=(
  numpy==2.4.6
  pydicom==3.0.2
  pylibjpeg==2.1.0
  pylibjpeg-libjpeg==2.5.0
  pylibjpeg-openjpeg==2.6.0
  pylibjpeg-rle==2.2.0
  pyjpegls==1.5.1
  zstandard==0.23.0
  # The portal's reference clients: DICOMweb (QIDO/WADO) and the DevTools protocol (Chromium).
  dicomweb-client==0.61.2
  requests==2.34.2
  urllib3==2.8.0
  idna==3.20
  charset-normalizer==3.5.3
  certifi==2026.10.19.post1
  pillow==13.0.0
  retrying==1.4.2
  websocket-client==1.9.2
  # FHIR validation of the audit export (AuditEvent, Bundle).
  fhir.resources==8.3.0
  fhir-core==1.1.12
  pydantic==2.14.4
  pydantic-core==2.50.5
  annotated-types==0.8.0
  typing-extensions==4.16.0
  typing-inspection==0.4.5
  # An independent DICOM de-identifier to compare `radgridctl deid` with (needs only pydicom).
  dicognito==0.19.0
  # onnxruntime: the reference the worker's OpenVINO inference is checked and timed against.
  onnxruntime==1.32.0
  flatbuffers==25.12.19
  packaging==26.4
  protobuf==7.36.2
)
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "python3 not found" >&2; exit 1; }
marker="$dir/.pins"
wanted=$(printf '%s\n' "${pins[@]}")
if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$wanted" ]]; then exit 0; fi
echo "installing pinned Python reference packages into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir"
"$python" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --only-binary=:all: --target "$dir" "${pins[@]}"
printf '%s\n' "${pins[@]}" > "$marker"
