#!/usr/bin/env bash
# Restores an RDB backup made by scripts/redis-backup.sh:
#   1. checks BACKUP.rdb against BACKUP.rdb.sha256 and with redis-check-rdb;
#   2. copies it into DATA_DIR as dump.rdb (an existing dump.rdb or appendonlydir there is
#      refused, or with --replace moved aside into DATA_DIR/pre-restore-<time>/);
#   3. unless --no-start: starts redis-server on PORT from DATA_DIR with the AOF off (with the
#      AOF on, Redis would load the AOF, or an empty one, and ignore dump.rdb), waits until the
#      data is loaded and prints the key count. With --enable-aof it then turns the AOF on at
#      run time (CONFIG SET appendonly yes) and waits for the rewrite that writes the loaded
#      data into DATA_DIR/appendonlydir: from then on restart it with --appendonly yes.
#
#   scripts/redis-restore.sh [--bind ADDR] [--aclfile FILE] [--enable-aof] [--replace] BACKUP.rdb DATA_DIR PORT
#   scripts/redis-restore.sh --no-start [--replace] BACKUP.rdb DATA_DIR
#
# The server runs in the background and outlives the script, which prints its pid last (also in
# DATA_DIR/redis-server.pid; log DATA_DIR/redis-server.log); stop it with
# `redis-cli -p PORT shutdown`; a failed restore stops it. Without --aclfile its
# default user has no password, so it listens on 127.0.0.1 unless --bind says otherwise.
# With --aclfile (the grid's users, default user off) the script's own checks log in as
# RADGRID_RESTORE_USER with the password in REDISCLI_AUTH (never on a command line).
# A Redis run by systemd (Debian's redis-server.service): see docs/OPERATIONS.md, "Backup and
# restore of Redis" (--no-start places the file, the unit starts the server).
set -euo pipefail

me=redis-restore
die() { echo "$me: $*" >&2; exit 1; }
usage() {
  echo "usage: $0 [--bind ADDR] [--aclfile FILE] [--enable-aof] [--replace] BACKUP.rdb DATA_DIR PORT" >&2
  echo "       $0 --no-start [--replace] BACKUP.rdb DATA_DIR" >&2
  exit 2
}

bind=127.0.0.1; aclfile=""; enable_aof=no; replace=no; start=yes; timeout=${RADGRID_RESTORE_TIMEOUT:-600}
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bind) [[ $# -ge 2 ]] || usage; bind=$2; shift 2 ;;
    --aclfile) [[ $# -ge 2 ]] || usage; aclfile=$2; shift 2 ;;
    --enable-aof) enable_aof=yes; shift ;;
    --replace) replace=yes; shift ;;
    --no-start) start=no; shift ;;
    -h|--help) usage ;;
    --) shift; positional+=("$@"); break ;;
    -*) echo "$me: unknown option $1" >&2; usage ;;
    *) positional+=("$1"); shift ;;
  esac
done
if [[ $start == yes ]]; then
  [[ ${#positional[@]} -eq 3 ]] || usage
  port=${positional[2]}
  [[ "$port" =~ ^[0-9]+$ && $port -ge 1 && $port -le 65535 ]] || die "not a port: $port"
else
  [[ ${#positional[@]} -eq 2 ]] || usage
  [[ $enable_aof == no && -z "$aclfile" ]] || die "--enable-aof and --aclfile need a server: drop --no-start"
fi
backup=${positional[0]}
data_dir=${positional[1]}

server=${RADGRID_REDIS_SERVER:-redis-server}
cli=${RADGRID_REDIS_CLI:-redis-cli}
command -v redis-check-rdb >/dev/null || die "redis-check-rdb not found (Debian package redis-tools)"
if [[ $start == yes ]]; then
  command -v "$server" >/dev/null || die "redis-server not found (Debian package redis-server)"
  command -v "$cli" >/dev/null || die "redis-cli not found (Debian package redis-tools)"
fi

# --- 1. check the backup -------------------------------------------------------------------
[[ -f "$backup" && -r "$backup" ]] || die "cannot read the backup $backup"
sum_file="$backup.sha256"
[[ -r "$sum_file" ]] || die "no checksum file $sum_file beside the backup (redis-backup.sh writes one)"
expected=$(awk 'NR == 1 { print $1 }' "$sum_file")
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "$sum_file holds no SHA-256"
actual=$(sha256sum < "$backup" | awk '{ print $1 }')
[[ "$actual" == "$expected" ]] || die "SHA-256 mismatch: $backup is not the file $sum_file was written for (corrupt or truncated copy?)"
echo "$me: SHA-256 ok" >&2
if ! check=$(redis-check-rdb "$backup" 2>&1); then
  printf '%s\n' "$check" | tail -n 5 >&2
  die "redis-check-rdb rejects $backup"
fi
keys_read=$(sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p' <<< "$check" | head -n 1)
already_expired=$(sed -n 's/^\[info\] \([0-9]*\) already expired$/\1/p' <<< "$check" | head -n 1)
echo "$me: redis-check-rdb ok: ${keys_read:-?} keys (${already_expired:-0} already expired)" >&2

# --- 2. place it ---------------------------------------------------------------------------
mkdir -p "$data_dir" || die "cannot create $data_dir"
data_dir=$(cd "$data_dir" && pwd)
[[ -w "$data_dir" ]] || die "cannot write to $data_dir"
existing=()
for name in dump.rdb appendonlydir appendonly.aof; do
  [[ -e "$data_dir/$name" ]] && existing+=("$name")
done
if [[ ${#existing[@]} -gt 0 ]]; then
  [[ $replace == yes ]] || die "$data_dir holds ${existing[*]} already: stop the server that uses it and rerun with --replace (they are moved aside, not deleted)"
  aside="$data_dir/pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  mkdir "$aside" || die "cannot create $aside"
  for name in "${existing[@]}"; do mv "$data_dir/$name" "$aside/" || die "cannot move $data_dir/$name aside"; done
  echo "$me: moved ${existing[*]} aside into $aside" >&2
fi
cp "$backup" "$data_dir/.dump.rdb.partial" || die "cannot copy $backup into $data_dir"
mv "$data_dir/.dump.rdb.partial" "$data_dir/dump.rdb"
echo "$me: placed $data_dir/dump.rdb" >&2
if [[ $start == no ]]; then
  echo "$data_dir/dump.rdb"
  exit 0
fi

# --- 3. start a server from it -------------------------------------------------------------
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is in use"
args=(--port "$port" --bind "$bind" --dir "$data_dir" --dbfilename dump.rdb --appendonly no
      --daemonize no --pidfile "$data_dir/redis-server.pid" --logfile "$data_dir/redis-server.log")
[[ -n "$aclfile" ]] && args+=(--aclfile "$aclfile")
# In the background, outliving this script; stopped again if the restore fails below.
"$server" "${args[@]}" </dev/null >/dev/null 2>&1 &
pid=$!
stop_on_failure() {
  local status=$?
  if [[ $status -ne 0 ]] && kill -0 "$pid" 2>/dev/null; then
    echo "$me: stopping the redis-server started here (pid $pid)" >&2
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}
trap stop_on_failure EXIT

# With --aclfile the default user may be off: the checks then log in as RADGRID_RESTORE_USER
# with the password in REDISCLI_AUTH (an admin login of that ACL file).
cli_user=()
[[ -n "${RADGRID_RESTORE_USER:-}" ]] && cli_user=(--user "$RADGRID_RESTORE_USER")
redis() {
  local reply
  reply=$("$cli" -e -p "$port" "${cli_user[@]}" "$@" 2>&1) || die "'$1' on port $port failed: $reply"
  printf '%s\n' "$reply" | tr -d '\r'
}
info_field() { sed -n "s/^$2:\\(.*\\)\$/\\1/p" <<< "$1" | head -n 1; }

deadline=$(( SECONDS + timeout ))
while :; do
  kill -0 "$pid" 2>/dev/null || { tail -n 20 "$data_dir/redis-server.log" >&2 || true; die "redis-server exited while starting or loading $data_dir/dump.rdb (log above)"; }
  reply=$("$cli" -p "$port" "${cli_user[@]}" ping 2>&1 | tr -d '\r') || true
  if [[ "$reply" == *NOAUTH* || "$reply" == *WRONGPASS* || "$reply" == *NOPERM* || "$reply" == *"AUTH failed"* ]]; then
    die "the restored server refuses the checks' login (${reply%%$'\n'*}): with --aclfile, set RADGRID_RESTORE_USER and REDISCLI_AUTH to an admin login of that file"
  fi
  if [[ "$reply" == PONG ]] && [[ $(info_field "$(redis info persistence)" loading) == 0 ]]; then break; fi
  if (( SECONDS >= deadline )); then
    tail -n 20 "$data_dir/redis-server.log" >&2
    die "redis-server on port $port has not finished loading within ${timeout} s"
  fi
  sleep 0.1
done
persistence=$(redis info persistence)
loaded=$(info_field "$persistence" rdb_last_load_keys_loaded)
expired=$(info_field "$persistence" rdb_last_load_keys_expired)
total=0
while IFS= read -r line; do
  [[ "$line" =~ ^db[0-9]+:keys=([0-9]+) ]] && total=$(( total + BASH_REMATCH[1] ))
done <<< "$(redis info keyspace)"
echo "$me: redis-server (pid $pid) on $bind:$port loaded ${loaded:-?} keys (${expired:-0} expired while loading); keys now: $total" >&2
if [[ -n "$keys_read" && -n "$loaded" && $(( loaded + ${expired:-0} )) -ne $keys_read ]]; then
  die "the server loaded $loaded keys (+ ${expired:-0} expired), the backup holds $keys_read"
fi

if [[ $enable_aof == yes ]]; then
  redis config set appendonly yes >/dev/null
  while :; do
    persistence=$(redis info persistence)
    if [[ $(info_field "$persistence" aof_rewrite_in_progress) == 0 \
          && $(info_field "$persistence" aof_rewrite_scheduled) == 0 \
          && $(info_field "$persistence" aof_rewrites) -ge 1 ]]; then
      status=$(info_field "$persistence" aof_last_bgrewrite_status)
      [[ "$status" == ok ]] || die "the AOF rewrite failed (aof_last_bgrewrite_status:$status): see $data_dir/redis-server.log"
      break
    fi
    (( SECONDS < deadline )) || die "the AOF rewrite has not finished within ${timeout} s"
    sleep 0.1
  done
  manifests=("$data_dir"/appendonlydir/*.manifest)
  [[ -f "${manifests[0]}" ]] || die "AOF on, but no manifest in $data_dir/appendonlydir"
  echo "$me: AOF on: $data_dir/appendonlydir holds the data now; restart this server with --appendonly yes" >&2
fi
trap - EXIT
echo "$me: stop it with: redis-cli -p $port shutdown (or kill $pid)" >&2
echo "$pid"
