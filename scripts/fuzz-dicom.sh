#!/usr/bin/env bash
# Build the DICOM libFuzzer harness with swiftc and run it.
#   scripts/fuzz-dicom.sh [seconds]        (default 60)
# Env: FUZZ_JOBS (default 1), RADGRID_CORPUS_DIR (default ../shared/corpus).
# Crashes land in fuzz-out/crashes/ (gitignored); the growing corpus in fuzz-out/corpus/.
set -euo pipefail
SECONDS_TO_RUN="${1:-60}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="$ROOT/fuzz-out"
BUILD="$OUT/build"
mkdir -p "$BUILD" "$OUT/corpus" "$OUT/crashes"

# RadGridCore's CodedError (the rest of RadGridCore needs ArgumentParser) and DICOMCodecs (the C codec
# libraries through their module maps, libjpeg's setjmp recovery in C) as their own modules, then
# DICOM + harness as one.
swiftc -parse-as-library -module-name RadGridCore -emit-module -emit-module-path "$BUILD/RadGridCore.swiftmodule" \
    -emit-library -static -o "$BUILD/libRadGridCore.a" "$ROOT"/Sources/RadGridCore/CodedError.swift
CODEC_INCLUDES=(-I "$ROOT/Sources/CJPEGTurbo" -I "$ROOT/Sources/CCharLS" -I "$ROOT/Sources/COpenJPEG"
    -I "$ROOT/Sources/CJPEGTurboRecovery/include" -Xcc -I/usr/include/openjpeg-2.5)
clang -O1 -g -fsanitize=fuzzer-no-link,address -c "$ROOT/Sources/CJPEGTurboRecovery/jpeg_recovery.c" \
    -I "$ROOT/Sources/CJPEGTurboRecovery/include" -o "$BUILD/jpeg_recovery.o"
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name DICOMCodecs -emit-module \
    -emit-module-path "$BUILD/DICOMCodecs.swiftmodule" -emit-library -static -o "$BUILD/libDICOMCodecs.a" \
    -I "$BUILD" "${CODEC_INCLUDES[@]}" "$ROOT"/Sources/DICOMCodecs/*.swift
swiftc -O -g -sanitize=fuzzer,address -parse-as-library -module-name DICOMFuzz \
    -I "$BUILD" -I "$ROOT/Sources/CZlib" "${CODEC_INCLUDES[@]}" \
    "$ROOT"/Sources/DICOM/*.swift "$ROOT/Fuzz/DICOMFuzz.swift" \
    "$BUILD/libDICOMCodecs.a" "$BUILD/jpeg_recovery.o" "$BUILD/libRadGridCore.a" \
    -lz -ljpeg -lcharls -lopenjp2 -o "$BUILD/dicom-fuzz"

SEEDS="$OUT/seeds"
mkdir -p "$SEEDS"
CORPUS_SRC="${RADGRID_CORPUS_DIR:-$ROOT/../shared/corpus}"
[ -d "$CORPUS_SRC/dicom" ] && CORPUS_SRC="$CORPUS_SRC/dicom"
if [ -d "$CORPUS_SRC" ]; then cp "$CORPUS_SRC"/*.dcm "$SEEDS"/ 2>/dev/null || true; fi
# Compressed pixel data in every codec and encapsulation (committed fixtures).
cp "$ROOT"/Tests/DICOMTests/Resources/codecs/*.dcm "$SEEDS"/ 2>/dev/null || true

cd "$OUT"
JOB_ARGS=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then JOB_ARGS=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
# Exits non-zero (and leaves the input in fuzz-out/crashes/) on a crash, trap, leak or timeout.
RADGRID_FUZZ_SEED_DIR="$SEEDS" "$BUILD/dicom-fuzz" "$OUT/corpus" "$SEEDS" \
    -max_total_time="$SECONDS_TO_RUN" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
    "${JOB_ARGS[@]}" -artifact_prefix="$OUT/crashes/" -print_final_stats=1
