#!/usr/bin/env bash
# `radgrid-bench scale --json` (issue #19) against a private single redis-server and a private
# Redis Cluster (3 masters + 3 replicas), both started here and always stopped: images/s of
# the local grid with 1, 2, 4 worker processes, and the task queue against its pipelined
# ceiling on one node and sharded over the cluster's masters. Builds nothing: run
# `swift build -c release` first (scripts/bench.sh does, and calls this at its end). The
# workers are the radgrid-worker beside the bench binary.
#   scripts/bench-scale.sh [radgrid-bench scale options, e.g. --studies 100 --workers 1,2]
# RADGRID_BENCH overrides the binary (default .build/release/radgrid-bench).
# The last line of the output is the bench's JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=${RADGRID_BENCH:-.build/release/radgrid-bench}
[[ -x $bench ]] || { echo "build first: swift build -c release" >&2; exit 1; }
[[ -x $(dirname "$(readlink -f "$bench")")/radgrid-worker ]] \
  || { echo "no radgrid-worker beside $bench: swift build -c release (every product)" >&2; exit 1; }

# Both wrappers export REDIS_URL; the single node's is kept before the cluster's replaces it.
scripts/with-private-redis.sh -- bash -c '
  set -euo pipefail
  export RADGRID_SCALE_SINGLE_URL=$REDIS_URL
  exec scripts/with-private-redis-cluster.sh -- bash -c '\''
    set -euo pipefail
    bench=$1; shift
    echo "== $bench scale --json --redis $RADGRID_SCALE_SINGLE_URL --cluster $REDIS_URL $*" >&2
    exec "$bench" scale --json --redis "$RADGRID_SCALE_SINGLE_URL" --cluster "$REDIS_URL" "$@"
  '\'' scale "$@"
' bench-scale "$bench" "$@"
