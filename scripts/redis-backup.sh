#!/usr/bin/env bash
# Backs up one Redis server (the grid's single node; in a Redis Cluster, run it once per
# master) as an RDB snapshot:
#   1. BGSAVE, then waits until LASTSAVE has moved and INFO persistence reports
#      rdb_bgsave_in_progress:0 and rdb_last_bgsave_status:ok (the server's own snapshot is
#      fresh and its disk writes work);
#   2. fetches a snapshot of the whole dataset with `redis-cli --rdb` (a replication sync, so
#      it works from another host, and needs no access to the server's files; with diskless
#      sync, Redis 7's default, the server first waits repl-diskless-sync-delay, 5 s);
#   3. checks it with redis-check-rdb when installed, writes FILE.sha256 beside it, and prints
#      the file, the keys in it and DBSIZE.
#
#   scripts/redis-backup.sh [--redis URL | --redis-file FILE] [--timeout SECONDS] OUTPUT_DIR
#
# The URL (redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]) comes from --redis, else REDIS_URL,
# else the file that --redis-file or REDIS_URL_FILE names. A password in --redis is visible
# to other users of the machine (ps) while the script runs: prefer the file or REDIS_URL.
# The password reaches redis-cli through REDISCLI_AUTH only, and is never printed.
#
# The Redis user needs: -@all +ping +info +dbsize +lastsave +bgsave +sync +replconf
# (no key patterns; SYNC hands it the whole dataset, so treat it as an admin login).
set -euo pipefail
umask 077   # a backup holds patient data: the files are the owner's alone

me=redis-backup
die() { echo "$me: $*" >&2; exit 1; }
usage() { echo "usage: $0 [--redis URL | --redis-file FILE] [--timeout SECONDS] OUTPUT_DIR" >&2; exit 2; }

url_option=""; url_file=${REDIS_URL_FILE:-}; timeout=600; out_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --redis) [[ $# -ge 2 ]] || usage; url_option=$2; shift 2 ;;
    --redis-file) [[ $# -ge 2 ]] || usage; url_file=$2; shift 2 ;;
    --timeout) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage; timeout=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) echo "$me: unknown option $1" >&2; usage ;;
    *) [[ -z "$out_dir" ]] || usage; out_dir=$1; shift ;;
  esac
done
[[ $# -eq 0 ]] || { [[ -z "$out_dir" && $# -eq 1 ]] && out_dir=$1 || usage; }
[[ -n "$out_dir" ]] || usage

cli=${RADGRID_REDIS_CLI:-redis-cli}
command -v "$cli" >/dev/null || die "redis-cli not found (Debian package redis-tools)"

# --- the URL -------------------------------------------------------------------------------
if [[ -n "$url_option" ]]; then
  url=$url_option
elif [[ -n "${REDIS_URL:-}" ]]; then
  url=$REDIS_URL
elif [[ -n "$url_file" ]]; then
  [[ -r "$url_file" ]] || die "cannot read the URL file $url_file"
  url=$(tr -d '[:space:]' < "$url_file")
else
  url=redis://127.0.0.1:6379
fi

percent_decode() { local s=${1//\\/\\\\}; printf '%b' "${s//%/\\x}"; }

case "$url" in
  redis+cluster://*) die "a cluster URL: back up each master on its own, with a redis:// URL naming it (redis-cli -p PORT cluster nodes lists the masters)" ;;
  rediss://*) die "rediss:// (TLS) is not supported here: reach the server through the stunnel tunnel (docs/OPERATIONS.md) with a redis:// URL" ;;
  redis://*) ;;
  *) die "not a redis:// URL (expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB])" ;;
esac
rest=${url#redis://}
rest=${rest%%\?*}
user=""; password=""
if [[ "$rest" == *@* ]]; then
  userinfo=${rest%@*}; rest=${rest##*@}
  if [[ "$userinfo" == *:* ]]; then
    user=$(percent_decode "${userinfo%%:*}"); password=$(percent_decode "${userinfo#*:}")
  else
    user=$(percent_decode "$userinfo")
  fi
fi
hostport=${rest%%/*}
db=0
[[ "$rest" == */* && -n "${rest#*/}" ]] && db=${rest#*/}
[[ "$db" =~ ^[0-9]+$ ]] || die "the URL's database is not a number"
if [[ "$hostport" =~ ^\[([0-9A-Fa-f:.]+)\](:([0-9]+))?$ ]]; then
  host=${BASH_REMATCH[1]}; port=${BASH_REMATCH[3]:-6379}
elif [[ "$hostport" =~ ^([^:]+)(:([0-9]+))?$ ]]; then
  host=${BASH_REMATCH[1]}; port=${BASH_REMATCH[3]:-6379}
else
  die "cannot read host and port from the URL"
fi
where="$host:$port"
[[ -n "$url_option" && -n "$password" ]] \
  && echo "$me: warning: the password given with --redis is visible in the process list; use REDIS_URL or --redis-file" >&2
# The password travels in the environment of redis-cli only (REDISCLI_AUTH), never in argv.
# (Without a password in the URL, a REDISCLI_AUTH already in the environment is used.)
[[ -n "$password" ]] && export REDISCLI_AUTH="$password"
conn=(-h "$host" -p "$port" -n "$db")
[[ -n "$user" ]] && conn+=(--user "$user")

# One command; its reply on stdout. Fails, naming the command, on a connection error, a
# refused login or an error reply (redis-cli -e).
redis() {
  local reply errors
  errors=$(mktemp)
  if ! reply=$("$cli" -e "${conn[@]}" "$@" 2>"$errors"); then
    local message; message=$(tr -d '\r' < "$errors" | head -n 3); rm -f "$errors"
    die "'$1' at $where failed: ${message:-redis-cli exited with an error}"
  fi
  if grep -q 'AUTH failed' "$errors"; then
    rm -f "$errors"; die "login at $where refused (user '${user:-default}'): check the URL's user and password"
  fi
  rm -f "$errors"
  printf '%s\n' "$reply" | tr -d '\r'
}
info_field() { sed -n "s/^$2:\\(.*\\)\$/\\1/p" <<< "$1" | head -n 1; }

# --- 1. BGSAVE and wait for it -------------------------------------------------------------
pong=$(redis ping) || exit 1
[[ "$pong" == PONG ]] || die "$where did not answer PING (reply: $pong)"
mkdir -p "$out_dir" || die "cannot create $out_dir"
[[ -w "$out_dir" ]] || die "cannot write to $out_dir"

before=$(redis lastsave)
# LASTSAVE counts whole seconds: a save in the same second as the last one would not move it.
now=$(info_field "$(redis info server)" server_time_usec)
[[ -n "$now" && $(( now / 1000000 )) -le $before ]] && sleep 1

deadline=$(( SECONDS + timeout ))
while :; do
  reply=$(redis bgsave schedule 2>&1) && break
  [[ "$reply" == *"already in progress"* ]] || die "${reply#"$me: "}"
  # Someone else's BGSAVE is running: it may predate this call, so wait for it, then start ours.
  (( SECONDS < deadline )) || die "a BGSAVE at $where has not finished within ${timeout} s"
  sleep 0.5
done
echo "$me: BGSAVE at $where: $reply" >&2
while :; do
  persistence=$(redis info persistence)
  last=$(redis lastsave)
  if [[ $last -gt $before && $(info_field "$persistence" rdb_bgsave_in_progress) == 0 ]]; then
    status=$(info_field "$persistence" rdb_last_bgsave_status)
    [[ "$status" == ok ]] || die "BGSAVE at $where failed (rdb_last_bgsave_status:$status): see the server's log (disk full? vm.overcommit_memory?)"
    break
  fi
  if [[ $(info_field "$persistence" rdb_bgsave_in_progress) == 0 && $(info_field "$persistence" rdb_last_bgsave_status) == err ]]; then
    die "BGSAVE at $where failed (rdb_last_bgsave_status:err): see the server's log (disk full? vm.overcommit_memory?)"
  fi
  (( SECONDS < deadline )) || die "BGSAVE at $where has not finished within ${timeout} s (--timeout)"
  sleep 0.2
done

# --- 2. fetch a snapshot -------------------------------------------------------------------
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="redis-${host//[^A-Za-z0-9._-]/_}-$port-$stamp.rdb"
file="$out_dir/$name"
partial="$out_dir/.$name.partial"
trap 'rm -f "$partial"' EXIT
[[ ! -e "$file" ]] || die "$file exists already"
errors=$(mktemp)
if ! timeout "$timeout" "$cli" "${conn[@]}" --rdb "$partial" >"$errors" 2>&1; then
  message=$(tr -d '\r' < "$errors" | { grep -v '^sending REPLCONF\|^SYNC sent' || true; } | head -n 3); rm -f "$errors"
  die "fetching the snapshot from $where (redis-cli --rdb) failed: ${message:-no message} (the user needs +sync +replconf)"
fi
grep -q 'AUTH failed' "$errors" && { rm -f "$errors"; die "login at $where refused (user '${user:-default}')"; }
rm -f "$errors"
[[ -s "$partial" ]] || die "the snapshot fetched from $where is empty"
[[ $(head -c 5 "$partial") == REDIS ]] || die "the file fetched from $where is not an RDB file"

# --- 3. check, checksum, report ------------------------------------------------------------
keys_in_file="?"
if command -v redis-check-rdb >/dev/null; then
  if ! check=$(redis-check-rdb "$partial" 2>&1); then
    printf '%s\n' "$check" | tail -n 5 >&2
    die "redis-check-rdb rejects the snapshot fetched from $where"
  fi
  keys_in_file=$(sed -n 's/^\[info\] \([0-9]*\) keys read$/\1/p' <<< "$check" | head -n 1)
else
  echo "$me: redis-check-rdb not installed: the snapshot is not checked" >&2
fi
mv "$partial" "$file"
trap - EXIT
(cd "$out_dir" && sha256sum "$name" > "$name.sha256")
dbsize=$(redis dbsize)
size=$(stat -c %s "$file")
echo "$me: wrote $file ($size bytes) and $file.sha256" >&2
echo "$me: keys in the snapshot: $keys_in_file (all databases); DBSIZE of database $db now: $dbsize" >&2
echo "$file"
