#!/usr/bin/env bash
# Installs OpenVINO's runtime (C API, CPU plugin, ONNX frontend) from its pinned PyPI wheel
# into the project-local folder .openvino/ (never system-wide), and writes the pkg-config
# file the COpenVINO shim names, so SwiftPM compiles and links it like any Debian library.
# The library folder goes into the binaries' run path: the worker finds OpenVINO without
# LD_LIBRARY_PATH. Idempotent: a marker records the installed pin.
#   scripts/openvino.sh            install if missing
#   scripts/openvino.sh --pkgconfig print the folder holding radgrid-openvino.pc
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$PWD/.openvino"
if [[ "${1:-}" == "--pkgconfig" ]]; then echo "$dir/pkgconfig"; exit 0; fi

version=2026.4.1
wheel_sha256=2d22b1da03f7caf74df30e9f6417d0ab2f637e4a38e08e1dcd294d2c37407aaf
so_version=2641
marker="$dir/.pin"
if [[ -f "$marker" ]] && [[ "$(cat "$marker")" == "$version $wheel_sha256 $dir" ]]; then exit 0; fi

python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "python3 not found" >&2; exit 1; }
echo "installing OpenVINO $version (runtime only) into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir/download" "$dir/pkgconfig" "$dir/lib"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$dir/download" "openvino==$version"
whl=$(ls "$dir"/download/openvino-"$version"-*.whl)
echo "$wheel_sha256  $whl" | sha256sum --check --quiet
# Only the native runtime and its headers are kept; the Python bindings are not needed.
"$python" - "$whl" "$dir" <<'PY'
import sys, zipfile, os
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        name = info.filename
        if name.startswith(("openvino/libs/", "openvino/include/")) and not name.endswith("/"):
            z.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            os.chmod(os.path.join(dest, name), mode or 0o644)
PY
rm -rf "$dir/download"
libs="$dir/openvino/libs"
# The wheel ships versioned names only; the linker wants the plain one.
ln -sf "$libs/libopenvino_c.so.$so_version" "$dir/lib/libopenvino_c.so"
cat > "$dir/pkgconfig/radgrid-openvino.pc" <<PC
prefix=$dir/openvino
Name: radgrid-openvino
Description: OpenVINO $version C API (from the pinned PyPI wheel)
Version: $version
Cflags: -I\${prefix}/include
Libs: -L$dir/lib -lopenvino_c
PC
echo "$version $wheel_sha256 $dir" > "$marker"
