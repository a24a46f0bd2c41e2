#!/usr/bin/env bash
# libFuzzer with AddressSanitizer on the DICOM reader and the pixel codecs.
#
#   scripts/fuzz-dicom.sh [seconds]   build, then run each harness for [seconds] (default 60)
#   scripts/fuzz-dicom.sh --smoke     build, then the short fixed-seed run `make test` does
#   scripts/fuzz-dicom.sh --build     build only (prints the binaries)
#
# Harnesses (Fuzz/DICOMFuzzing, one SwiftPM target):
#   fuzz-dicom   whole files: read (strict, lenient, header-only), text decoding, inspect
#                report, checkPixelsDecodable, decodePixels
#   fuzz-codecs  raw streams into each PixelCodec with a descriptor from the first 8 bytes
#
# SwiftPM builds the static library product DICOMFuzzing (the harnesses and everything they
# depend on, resolved from Package.swift) with `--sanitize address --sanitize fuzzer` into
# .build-fuzz/; swiftc links one binary per harness from that archive (libFuzzer provides
# main; --defsym names the harness's entry points). No source list to keep in step here.
#
# Env: FUZZ_JOBS (parallel workers, default 1), FUZZ_RUNS (stop after this many inputs per
# harness), FUZZ_HARNESSES (default "dicom codecs"), FUZZ_ARGS (extra libFuzzer flags),
# RADGRID_CORPUS_DIR (default ../shared/corpus).
# A crash, leak, timeout or out-of-memory leaves the input in fuzz-out/crashes/ and a non-zero exit.
set -euo pipefail

MODE=run
SECONDS_TO_RUN=60
case "${1:-}" in
    --smoke) MODE=smoke ;;
    --build) MODE=build ;;
    "") ;;
    *) SECONDS_TO_RUN="$1" ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$PATH:/opt/swift/usr/bin"
OUT="$ROOT/fuzz-out"
BIN="$OUT/bin"
mkdir -p "$BIN" "$OUT/crashes"

die() { echo "fuzz-dicom.sh: $*" >&2; exit 1; }

# Limits shared by every run. The harnesses cap a decoded array at 8 MiB (the data set's
# DecodeOptions.maxOutputBytes); codecs may use a few times a frame as working memory (32-bit
# sample planes), so no legitimate single allocation reaches 96 MB: one that does was not
# bounded by the declared image size and fails the run as out-of-memory.
LIMITS=(-max_len=262144 -malloc_limit_mb=96 -rss_limit_mb=2048 -timeout=10)

build() {
    local started=$SECONDS
    echo "== building the DICOMFuzzing archive (release, ASan + fuzzer coverage) in .build-fuzz/"
    # The coverage libFuzzer needs, as `swiftc -sanitize=fuzzer` instruments (SwiftPM's own
    # `--sanitize fuzzer` also makes its plugin tools -parse-as-library, which breaks them).
    local swiftpm=(swift build -c release --build-path "$ROOT/.build-fuzz" --package-path "$ROOT"
                   --sanitize address -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table -Xswiftc -g)
    "${swiftpm[@]}" --product DICOMFuzzing || die "SwiftPM could not build the DICOMFuzzing product (see above)"
    local lib
    lib="$("${swiftpm[@]}" --show-bin-path)/libDICOMFuzzing.a"
    [ -f "$lib" ] || die "SwiftPM built no $lib: is DICOMFuzzing still a static library product in Package.swift?"
    local symbols
    symbols="$(nm --defined-only "$lib" 2>/dev/null)"
    # Libraries named by `linkerSettings` in Package.swift reach SwiftPM's own links but not
    # the static archive (module maps' `link` lines do): pass them, and the C++ runtime the
    # C++ shims need.
    local libraries=()
    mapfile -t libraries < <(grep -o '\.linkedLibrary("[^"]*")' "$ROOT/Package.swift" | sed 's/.*("\(.*\)")/-l\1/' | sort -u)
    libraries+=(-lstdc++)
    for harness in dicom:radgrid_fuzz_dicom_file:radgrid_fuzz_dicom_init codecs:radgrid_fuzz_codec_stream:radgrid_fuzz_codec_init; do
        IFS=: read -r name entry init <<< "$harness"
        grep -q " T $entry\$" <<< "$symbols" \
            || die "libDICOMFuzzing.a defines no $entry (Fuzz/DICOMFuzzing lost its @_cdecl entry point?)"
        swiftc -sanitize=fuzzer,address -g -use-ld=lld "$lib" "${libraries[@]}" \
            -Xlinker "--defsym=LLVMFuzzerTestOneInput=$entry" -Xlinker "--defsym=LLVMFuzzerInitialize=$init" \
            -o "$BIN/fuzz-$name" \
            || die "linking fuzz-$name failed: a module the harnesses depend on needs a library that neither its module map nor Package.swift names"
    done
    echo "== built $BIN/fuzz-dicom and $BIN/fuzz-codecs in $((SECONDS - started)) s"
}

# Directories whose files seed a harness (converted by its LLVMFuzzerInitialize).
seed_sources() {
    local corpus="${RADGRID_CORPUS_DIR:-$ROOT/../shared/corpus}"
    [ -d "$corpus/dicom" ] && corpus="$corpus/dicom"
    local dirs=("$ROOT/Tests/DICOMTests/Resources/codecs")
    [ -d "$corpus" ] && dirs+=("$corpus")
    case "$1" in
        dicom) [ -d "$ROOT/.pydeps/pydicom/data/charset_files" ] && dirs+=("$ROOT/.pydeps/pydicom/data/charset_files") ;;
        codecs) dirs+=("$ROOT/Tests/DICOMCodecsTests/Resources/jpeg") ;;
    esac
    local IFS=:
    echo "${dirs[*]}"
}

# run_harness NAME CORPUS_DIR ARGS...: seeds, then libFuzzer; returns its exit status.
run_harness() {
    local name="$1" corpus="$2"
    shift 2
    local seeds="$OUT/seeds/$name"
    rm -rf "$seeds"
    mkdir -p "$seeds" "$corpus"
    local extra=()
    [ -d "$ROOT/Fuzz/regressions/$name" ] && extra+=("$ROOT/Fuzz/regressions/$name")
    echo "== fuzz-$name: corpus $corpus"
    # Deterministic hashing: a crash replays with the same dictionary order.
    (cd "$OUT" && SWIFT_DETERMINISTIC_HASHING=1 SWIFT_BACKTRACE=enable=no \
        RADGRID_FUZZ_SEED_DIR="$seeds" RADGRID_FUZZ_SEED_SOURCES="$(seed_sources "$name")" \
        "$BIN/fuzz-$name" "$corpus" "$seeds" "${extra[@]}" "${LIMITS[@]}" -dict="$ROOT/Fuzz/dictionaries/$name.dict" \
        -artifact_prefix="$OUT/crashes/$name-" -print_final_stats=1 "$@")
}

build
[ "$MODE" = build ] && exit 0

HARNESSES=(${FUZZ_HARNESSES:-dicom codecs})
failed=()
if [ "$MODE" = smoke ]; then
    # A fixed seed from the seeds alone (a fresh corpus), bounded in inputs (about 8 s each
    # on the project's 2-core machine) and, should the machine crawl, in time.
    for name in "${HARNESSES[@]}"; do
        case "$name" in dicom) runs="${FUZZ_SMOKE_RUNS:-3000}" ;; *) runs="${FUZZ_SMOKE_RUNS:-8000}" ;; esac
        corpus="$(mktemp -d "$OUT/smoke-$name.XXXXXX")"
        started=$SECONDS
        if ! run_harness "$name" "$corpus" -seed=1 -runs="$runs" -max_total_time=60 > "$OUT/smoke-$name.log" 2>&1; then
            tail -40 "$OUT/smoke-$name.log" >&2
            failed+=("$name")
        fi
        echo "== fuzz-$name smoke: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/smoke-$name.log" | tail -1 | awk '{print $2}') inputs in $((SECONDS - started)) s (log fuzz-out/smoke-$name.log)"
        rm -rf "$corpus"
    done
else
    JOB_ARGS=()
    if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then JOB_ARGS=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
    RUN_ARGS=(-max_total_time="$SECONDS_TO_RUN")
    [ -n "${FUZZ_RUNS:-}" ] && RUN_ARGS=(-runs="$FUZZ_RUNS")
    # Extra libFuzzer flags, after the defaults so they win (e.g. -max_len=16384 for a long
    # run of many small inputs).
    RUN_ARGS+=(${FUZZ_ARGS:-})
    for name in "${HARNESSES[@]}"; do
        run_harness "$name" "$OUT/corpus/$name" "${RUN_ARGS[@]}" "${JOB_ARGS[@]}" || failed+=("$name")
    done
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz-dicom.sh: FAILED: ${failed[*]} (reproducers in fuzz-out/crashes/; replay with fuzz-out/bin/fuzz-<harness> FILE)" >&2
    exit 1
fi
echo "== fuzzing passed: ${HARNESSES[*]}"
