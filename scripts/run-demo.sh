#!/usr/bin/env bash
# `make run`: the whole grid (`radgrid up`, private redis-server with AOF), a demo batch of
# phantom CT studies through `radgridctl submit`, live progress, the case table; then a demo
# expert's sign-in for the portal. From a terminal the grid stays up until Ctrl-C so the
# portal can be used; otherwise (or with HOLD=0) it stops at once.
set -euo pipefail
BIN=${BIN:-.build/debug}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/radgrid-run.XXXXXX")
# Demo policy: offers wait an hour for the expert to accept (the default is 5 minutes).
echo '{"acceptTimeoutSeconds": 3600}' > "$WORK/routing.json"
"$BIN/radgrid" up --dir "$WORK/grid" --workers "${WORKERS:-2}" --stable-age 3 --routing-config "$WORK/routing.json" >"$WORK/up.log" 2>&1 &
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

# One demo expert: the one holding the most urgent routed case gets a fresh password.
# grid.env's REDIS_URL is the admin user's (with its password): exported, never on a command line.
set -a
# shellcheck disable=SC1091
source "$WORK/grid/grid.env"
set +a
read -r EXPERT STUDY < <("$BIN/radgridctl" status --studies --json | python3 -c '
import json, sys
rank = {"stat": 0, "urgent": 1, "routine": 2, "bulk": 3}
studies = [s for s in json.load(sys.stdin).get("studyList", []) if s.get("state") == "assigned" and s.get("expert")]
studies.sort(key=lambda s: rank.get(s.get("casePriority") or s.get("priority", "routine"), 9))
print(studies[0]["expert"], studies[0]["uid"]) if studies else print("", "")')
if [ -n "$EXPERT" ]; then
  PASSWORD="demo-$(head -c 9 /dev/urandom | base64 | tr -d '/+=')"
  echo "$PASSWORD" | "$BIN/radgridctl" experts passwd "$EXPERT" --password-stdin >/dev/null
  cat <<TEXT

Expert portal: $RADGRID_PORTAL
  sign in as   $EXPERT   password   $PASSWORD
  (their worklist holds study $STUDY: accept it, read the images, sign a report)
The hospital then fetches the signed report with its site token:
  curl -H "Authorization: Bearer $RADGRID_TOKEN" $RADGRID_GATEWAY/studies/$STUDY/report
  curl -H "Authorization: Bearer $RADGRID_TOKEN" -H "Accept: application/dicom" $RADGRID_GATEWAY/studies/$STUDY/report -o report-sr.dcm
TEXT
fi
if [ -t 0 ] && [ "${HOLD:-1}" != "0" ]; then
  echo
  echo "The grid stays up for the portal; Ctrl-C stops it."
  wait "$UP" || true
fi
