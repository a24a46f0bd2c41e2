#!/usr/bin/env bash
# `make run`: the whole grid (`radgrid up`, private redis-server with AOF), a demo batch of
# phantom CT studies through `radgridctl submit`, live progress, the case table, then stop.
set -euo pipefail
BIN=${BIN:-.build/debug}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/radgrid-run.XXXXXX")
"$BIN/radgrid" up --dir "$WORK/grid" --workers "${WORKERS:-2}" --stable-age 3 >"$WORK/up.log" 2>&1 &
UP=$!
stop() { kill -INT "$UP" 2>/dev/null || true; wait "$UP" 2>/dev/null || true; tail -n 2 "$WORK/up.log"; }
trap stop EXIT
for _ in $(seq 1 600); do
  [ -s "$WORK/grid/grid.env" ] && grep -q "Ctrl-C" "$WORK/up.log" && break
  kill -0 "$UP" 2>/dev/null || { cat "$WORK/up.log"; exit 1; }
  sleep 0.1
done
cat "$WORK/up.log"
"$BIN/radgridctl" demo --env "$WORK/grid/grid.env" --studies "${STUDIES:-8}" --work "$WORK/studies"
