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
# Scaling (issue #19): worker processes 1, 2, 4 and the queue on one node vs a sharded Redis
# Cluster, with its own private single server and cluster (SCALE=0 skips it).
if [[ ${SCALE:-1} != 0 ]]; then
  echo "== scripts/bench-scale.sh" >&2
  scripts/bench-scale.sh | tee /dev/stderr | tail -n 1 >> "$out"
fi
# Durability across a master's failover (issue #19), plain and with WAIT: each run breaks its
# own private cluster.
if [[ ${DURABILITY:-1} != 0 ]]; then
  for mode in "" --durable; do
    echo "== radgrid-bench durability $mode" >&2
    scripts/with-private-redis-cluster.sh -- bash -c "$bench durability --cluster \$REDIS_URL $mode --json" | tee /dev/stderr | tail -n 1 >> "$out"
  done
fi
echo "results: $out" >&2
