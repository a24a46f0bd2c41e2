#!/usr/bin/env bash
# Runs every benchmark of radgrid-bench (release build) against a private redis-server and
# prints each one's figures; the JSON line of each is appended to .build/bench-results.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=.build/release/radgrid-bench
ctl=.build/release/radgridctl
[[ -x $bench ]] || { echo "build first: swift build -c release" >&2; exit 1; }
# codecs and pipeline --jpeg-lossless time pydicom in the same run.
scripts/pydeps.sh
out=.build/bench-results.jsonl
: > "$out"
run() {
  echo "== $*" >&2
  "$@" --json | tee /dev/stderr | tail -n 1 >> "$out"
}
scripts/with-private-redis.sh -- bash -c "
  set -euo pipefail
  $(declare -f run)
  out=$out
  run $ctl ping --count 10000
  for sub in ${BENCHES:-queue router screen pipeline codecs e2e portal dimse edge gateway}; do
    if [[ \$sub == queue ]]; then
      # The default 64 slots and 128 (docs/BENCHMARKS.md reports both).
      for slots in 64 128; do run $bench queue --tasks 100000 --rounds 5 --concurrency \$slots; done
    elif [[ \$sub == pipeline ]]; then
      # The series path against zstd alone, then the worker's per-instance path (native and
      # JPEG lossless) against pydicom + numpy.
      run $bench pipeline
      run $bench pipeline --jpeg-lossless
    else
      run $bench \$sub
    fi
  done
"
echo "results: $out" >&2
