#!/usr/bin/env bash
# Backup and restore of the grid's Redis, end to end (docs/OPERATIONS.md, "Backup and restore
# of Redis"):
#   1. a private redis-server with the AOF on (scripts/with-private-redis.sh --aof) gets a set
#      of grid keys: study hashes under their hash tag, a blob, a task lane (stream) whose
#      consumer group holds pending entries (leases), zsets, sets, a list, keys with a TTL;
#   2. scripts/redis-backup.sh backs it up as a backup-only ACL user whose password is only in
#      REDIS_URL (and must appear in no output);
#   3. scripts/redis-restore.sh starts a second, fresh redis-server from the backup, and the
#      two are compared: DBSIZE, every key's TYPE and DUMP, TTLs still running where set, the
#      consumer groups and their pending entries (XPENDING);
#   4. the same with --enable-aof; then that server is stopped, its appendonlydir moved into
#      a directory of its own and a server with the AOF on started there, which must load it
#      and hold the same data (the procedure of the docs for a host whose Redis runs the AOF);
#   5. what must fail does: a corrupt copy, a truncated RDB, a data dir in use, and the
#      comparison itself when a key differs.
# Exits non-zero on any mismatch; stops every server it started.
#   Tests/Ops/backup-restore-test.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -z "${RADGRID_BACKUP_TEST_INNER:-}" ]]; then
  export RADGRID_BACKUP_TEST_INNER=1
  exec "$root/scripts/with-private-redis.sh" --aof -- "$0" "$@"
fi

cli=redis-cli
source_port=${REDIS_URL##*:}
work=$(mktemp -d "${TMPDIR:-/tmp}/radgrid-backup-test.XXXXXX")
restored_pids=()
cleanup() {
  local pid
  for pid in "${restored_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${restored_pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

failures=0
fail() { echo "FAIL: $*" >&2; failures=$(( failures + 1 )); }
step() { echo "--- $*" >&2; }
src() { "$cli" -e -p "$source_port" "$@" | tr -d '\r'; }

# A free port below the ephemeral range (where outgoing connections take theirs).
port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$(( 10000 + (RANDOM * 32768 + RANDOM) % 20000 ))
    port_is_free "$p" && { echo "$p"; return 0; }
  done
  return 1
}

# --- 1. grid keys ---------------------------------------------------------------------------
step "writing grid keys into the source redis on port $source_port"
study1=1.2.840.113619.2.55.3.604688119.969.1700000000.1
study2=1.2.826.0.1.3680043.8.498.10000000000000000001
s1="rg:{s:$study1}"; s2="rg:{s:$study2}"
src hset "$s1:study" state screened site H001 priority urgent created 1700000000123 \
  case C-0001 instances 3 modality CT >/dev/null
src hset "$s1:instances" 1.2.3.1 "1.2.3.100|524288|$(printf a%.0s {1..64})|CT" \
  1.2.3.2 "1.2.3.100|524300|$(printf b%.0s {1..64})|CT" 1.2.3.3 "1.2.3.101|1024|$(printf c%.0s {1..64})|SR" >/dev/null
src hset "$s1:outcomes" 1.2.3.1 ok 1.2.3.2 ok 1.2.3.3 not-image >/dev/null
head -c 20000 /dev/urandom > "$work/blob.bin"
"$cli" -e -p "$source_port" -x set "$s1:blob:1.2.3.1" < "$work/blob.bin" >/dev/null
src xadd "rg:{s:$study1}:audit:log" 1700000000123-0 event received actor gateway hash 0123abcd >/dev/null
src xadd "rg:{s:$study1}:audit:log" 1700000000456-0 event screened actor worker hash 4567ef01 >/dev/null
src set "rg:{s:$study1}:audit:head" 4567ef01 >/dev/null
# The second study is done: its keys run out (retention).
src hset "$s2:study" state reported site H002 priority routine created 1700000100000 >/dev/null
src hset "$s2:instances" 9.9.9.1 "9.9.9.100|2048|$(printf d%.0s {1..64})|MR" >/dev/null
src set "$s2:report" '{"status":"signed","text":"No acute findings.","expert":"dr-7"}' >/dev/null
for key in "$s2:study" "$s2:instances" "$s2:report"; do src expire "$key" 3600 >/dev/null; done
src zadd rg:studies:all 1700000000123 "$study1" 1700000100000 "$study2" >/dev/null
src zadd rg:studies:due 1700000060000 "$study1" >/dev/null
src sadd rg:studies:state:screened "$study1" >/dev/null
src sadd rg:studies:state:reported "$study2" >/dev/null
src xadd rg:studies:committed '*' study "$study1" >/dev/null
src hset rg:sites:region H001 north H002 south >/dev/null
src hset rg:gateway:tokens "$(printf e%.0s {1..64})" H001 >/dev/null
# A big hash and a big set: hashtable encoding, whose DUMP order depends on the process.
args=(); for i in $(seq 1 300); do args+=("routine|screen|b$i" "$i"); done
src hset rg:turnaround "${args[@]}" >/dev/null
args=(); for i in $(seq 1 300); do args+=("1.2.840.99.$i"); done
src sadd rg:sites:open:H001 "${args[@]}" >/dev/null
# A session with its idle timeout.
src hset "rg:sessions:$(printf f%.0s {1..64})" user dr-7 role expert >/dev/null
src expire "rg:sessions:$(printf f%.0s {1..64})" 1800 >/dev/null
src sadd rg:sessions:user:dr-7 "$(printf f%.0s {1..64})" >/dev/null
src expire rg:sessions:user:dr-7 43200 >/dev/null
# The task queue: a lane with its consumer group, two tasks leased (pending), one done.
lane="rg:{q:tasks}:lane:urgent"
for n in 1 2 3 4; do
  src xadd "$lane" '*' k "$study1/1.2.3.$n/decode" p "{\"study\":\"$study1\"}" m 1 g "$study1" >/dev/null
done
src xgroup create "$lane" workers 0 >/dev/null
src xreadgroup group workers worker-a-1 count 2 streams "$lane" '>' >/dev/null
src xreadgroup group workers worker-b-2 count 1 streams "$lane" '>' >/dev/null
first=$(src xrange "$lane" - + count 1 | awk 'NR == 1')
src xack "$lane" workers "$first" >/dev/null
src xgroup create "rg:{q:tasks}:lane:bulk" workers '$' mkstream >/dev/null
src hset "rg:{q:tasks}:state" "$study1/1.2.3.1/decode" c "$study1/1.2.3.2/decode" "q 1" >/dev/null
src zadd "rg:{q:tasks}:delayed:routine" 1700000090000 "$study1/screen" >/dev/null
src xadd "rg:{q:tasks}:dead" '*' k bad/task reason poison error "killed its worker 5 times" >/dev/null
src rpush "rg:{q:tasks}:completed" "$study1/1.2.3.1/decode" >/dev/null
src set "rg:{q:tasks}:result:$study1/1.2.3.1/decode" '{"ok":true}' ex 3600 >/dev/null
src zadd rg:workers 1700000000000 worker-a-1 1700000000001 worker-b-2 >/dev/null
src hset rg:workers:worker-a-1 state running slots 4 >/dev/null
src pexpire rg:workers:worker-a-1 900000 >/dev/null
src set rg:sites:uploads:H001:28333333 7 ex 3600 >/dev/null
src set counter:int 12345 >/dev/null
src sadd small:intset 1 2 3 >/dev/null
source_keys=$(src dbsize)
pending=$(src xpending "$lane" workers | awk 'NR == 1')
echo "source: $source_keys keys; pending on $lane: $pending" >&2
[[ $pending == 2 ]] || { echo "test setup: expected 2 pending entries" >&2; exit 1; }

# --- the comparison ---------------------------------------------------------------------------
# compare PORT LABEL: the source and the server on PORT hold the same data.
canonical() { # port key type: the content, order-independent where Redis does not keep an order
  local p=$1 key=$2 type=$3
  case "$type" in
    hash) "$cli" -p "$p" hgetall "$key" | tr -d '\r' | paste - - | LC_ALL=C sort ;;
    set) "$cli" -p "$p" smembers "$key" | tr -d '\r' | LC_ALL=C sort ;;
    zset) "$cli" -p "$p" zrange "$key" 0 -1 withscores | tr -d '\r' | paste - - ;;
    *) return 1 ;;
  esac
}
# Every key of a server, one line each: key, type, SHA-1 of its DUMP, and "ttl" if it has one
# (its PTTL otherwise: -1). One script call instead of a client per key and question.
snapshot() {
  "$cli" -p "$1" eval "
    local out = {}
    for _, k in ipairs(redis.call('keys', '*')) do
      local ttl = redis.call('pttl', k)
      out[#out + 1] = k .. '\t' .. redis.call('type', k).ok .. '\t' .. redis.sha1hex(redis.call('dump', k))
        .. '\t' .. (ttl > 0 and 'ttl' or tostring(ttl))
    end
    return out" 0 | tr -d '\r' | LC_ALL=C sort
}
compare() {
  local p=$1 label=$2 before=$failures key type sha ttl other_type other_sha other_ttl a b reordered=0
  [[ $("$cli" -p "$p" dbsize | tr -d '\r') == "$source_keys" ]] \
    || fail "$label: DBSIZE $("$cli" -p "$p" dbsize | tr -d '\r'), source $source_keys"
  snapshot "$source_port" > "$work/source.keys"
  snapshot "$p" > "$work/other.keys"
  cut -f1 "$work/source.keys" > "$work/source.names"; cut -f1 "$work/other.keys" > "$work/other.names"
  cmp -s "$work/source.names" "$work/other.names" \
    || fail "$label: the key names differ: $(diff "$work/source.names" "$work/other.names" | grep '^[<>]' | head -n 5 | tr '\n' ' ')"
  while IFS=$'\t' read -r key type sha ttl; do
    IFS=$'\t' read -r other_type other_sha other_ttl < <(awk -F'\t' -v k="$key" '$1 == k { print $2 "\t" $3 "\t" $4 }' "$work/other.keys")
    [[ -n "${other_type:-}" ]] || continue   # reported above
    if [[ "$type" != "$other_type" ]]; then fail "$label: $key is a $other_type, source a $type"; continue; fi
    if [[ "$sha" != "$other_sha" ]]; then
      # A hashtable-encoded hash or set serialises in its table's order, which differs from
      # process to process: then the contents must be equal.
      if [[ $(src object encoding "$key") == hashtable ]] && canonical "$source_port" "$key" "$type" > "$work/a" \
         && canonical "$p" "$key" "$type" > "$work/b" && cmp -s "$work/a" "$work/b"; then
        reordered=$(( reordered + 1 ))
      else
        fail "$label: DUMP of $key differs"
      fi
    fi
    [[ "$ttl" == "$other_ttl" ]] || fail "$label: $key: TTL ${other_ttl/ttl/running}, source ${ttl/ttl/running}"
    if [[ $type == stream ]]; then
      [[ "$(src xinfo groups "$key")" == "$("$cli" -p "$p" xinfo groups "$key" | tr -d '\r')" ]] \
        || fail "$label: the consumer groups of $key differ"
      while IFS= read -r group; do
        [[ "$(src xpending "$key" "$group")" == "$("$cli" -p "$p" xpending "$key" "$group" | tr -d '\r')" ]] \
          || fail "$label: XPENDING $key $group differs"
        # id, consumer, deliveries (not the idle time, which keeps growing)
        a=$(src xpending "$key" "$group" - + 1000 | awk 'NR % 4 != 3')
        b=$("$cli" -p "$p" xpending "$key" "$group" - + 1000 | tr -d '\r' | awk 'NR % 4 != 3')
        [[ "$a" == "$b" ]] || fail "$label: the pending entries of $key $group differ"
      done < <(src xinfo groups "$key" | awk 'prev == "name" { print } { prev = $0 }')
    fi
  done < "$work/source.keys"
  [[ $failures -eq $before ]] && echo "$label: equal ($source_keys keys; $reordered hashtable-encoded keys compared by content)" >&2
  return 0
}

# --- 2. backup --------------------------------------------------------------------------------
step "backup as a backup-only ACL user"
password='b@ck:up/pa%ss+1'
encoded='b%40ck%3Aup%2Fpa%25ss+1'
src acl setuser radgrid-backup on ">$password" -@all +ping +info +dbsize +lastsave +bgsave +sync +replconf >/dev/null
# The snapshot is a replication sync: with diskless sync (the default), the server first waits
# repl-diskless-sync-delay (5 s) for other replicas to join. Not here.
src config set repl-diskless-sync-delay 0 >/dev/null
lastsave_before=$(src lastsave)
if ! REDIS_URL="redis://radgrid-backup:$encoded@127.0.0.1:$source_port" \
     "$root/scripts/redis-backup.sh" "$work/backups" > "$work/backup.out" 2> "$work/backup.err"; then
  cat "$work/backup.err" >&2; echo "FAIL: redis-backup.sh failed" >&2; exit 1
fi
cat "$work/backup.err" >&2
backup=$(tail -n 1 "$work/backup.out")
[[ -s "$backup" && -s "$backup.sha256" ]] || { echo "FAIL: no backup file ($backup)" >&2; exit 1; }
(cd "$(dirname "$backup")" && sha256sum --quiet -c "$(basename "$backup").sha256") || fail "sha256sum -c rejects the backup's checksum file"
[[ $(src lastsave) -gt $lastsave_before ]] || fail "LASTSAVE did not move: no BGSAVE ran"
grep -qF -- "$password" "$work/backup.out" "$work/backup.err" && fail "the password appears in the backup's output"
grep -qF -- "$encoded" "$work/backup.out" "$work/backup.err" && fail "the encoded password appears in the backup's output"
grep -q "keys in the snapshot: $source_keys " "$work/backup.err" || fail "the backup did not report $source_keys keys"
# A wrong password is refused with a clear error, and no file is left behind.
if REDIS_URL="redis://radgrid-backup:wrong@127.0.0.1:$source_port" \
   "$root/scripts/redis-backup.sh" "$work/backups-bad" > /dev/null 2> "$work/bad.err"; then
  fail "a backup with a wrong password succeeded"
else
  grep -q 'refused\|WRONGPASS\|NOPERM\|NOAUTH' "$work/bad.err" || fail "a wrong password's error does not say so: $(cat "$work/bad.err")"
  [[ -z "$(ls -A "$work/backups-bad" 2>/dev/null)" ]] || fail "a failed backup left files behind"
fi
# A cluster URL is refused: one backup per master.
REDIS_URL="redis+cluster://127.0.0.1:1,127.0.0.1:2" "$root/scripts/redis-backup.sh" "$work/x" 2>/dev/null \
  && fail "a cluster URL was accepted"

# --- 3. restore, AOF off ----------------------------------------------------------------------
step "restore into a fresh redis-server"
port1=$(free_port)
pid1=$("$root/scripts/redis-restore.sh" "$backup" "$work/restore1" "$port1") || { echo "FAIL: redis-restore.sh failed" >&2; exit 1; }
restored_pids+=("$pid1")
compare "$port1" "restored"
# The comparison catches a difference (it is not blind): change one field, compare, undo.
"$cli" -p "$port1" hset "$s1:study" state reported >/dev/null
saved=$failures
compare "$port1" "tampered (a mismatch is expected here)" 2>"$work/tampered.err" || true
if [[ $failures -eq $saved ]]; then fail "the comparison missed a changed field"; else failures=$saved; fi
"$cli" -p "$port1" hset "$s1:study" state screened >/dev/null
"$cli" -p "$port1" xack "$lane" workers "$(src xpending "$lane" workers - + 1 | awk 'NR == 1')" >/dev/null
saved=$failures
compare "$port1" "acknowledged (a mismatch is expected here)" 2>/dev/null || true
if [[ $failures -eq $saved ]]; then fail "the comparison missed a lost pending entry"; else failures=$saved; fi

# --- 4. restore with --enable-aof, then restart from the AOF alone ----------------------------
step "restore with --enable-aof, restart with the AOF on"
port2=$(free_port)
pid2=$("$root/scripts/redis-restore.sh" --enable-aof "$backup" "$work/restore2" "$port2") || { echo "FAIL: redis-restore.sh --enable-aof failed" >&2; exit 1; }
restored_pids+=("$pid2")
compare "$port2" "restored, AOF on"
ls "$work/restore2/appendonlydir/"*.manifest >/dev/null 2>&1 || fail "no AOF manifest after --enable-aof"
# As on a production host (docs/OPERATIONS.md): stop it, move its appendonlydir into a data
# directory of its own, start a server there with the AOF on: it must load the AOF alone.
"$cli" -p "$port2" shutdown >/dev/null 2>&1 || true
for _ in $(seq 1 100); do kill -0 "$pid2" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid2" 2>/dev/null && fail "the --enable-aof server did not stop on SHUTDOWN"
mkdir "$work/production"
mv "$work/restore2/appendonlydir" "$work/production/"
ls "$work/production/appendonlydir" >&2
redis-server --port "$port2" --bind 127.0.0.1 --dir "$work/production" --appendonly yes \
  --daemonize no --logfile "$work/production/redis.log" &
pid3=$!; restored_pids+=("$pid3")
for _ in $(seq 1 200); do
  [[ $("$cli" -p "$port2" ping 2>/dev/null | tr -d '\r') == PONG ]] \
    && [[ $("$cli" -p "$port2" info persistence | tr -d '\r' | grep -c '^loading:0') == 1 ]] && break
  sleep 0.05
done
[[ ! -e "$work/production/dump.rdb" ]] || fail "a dump.rdb appeared in the production directory"
grep -q 'DB loaded from append only file' "$work/production/redis.log" || fail "the restarted server did not load the AOF"
compare "$port2" "restarted from the AOF"

# --- 5. what must fail ------------------------------------------------------------------------
step "refusals"
mkdir -p "$work/bad"
cp "$backup" "$work/bad/flipped.rdb"; cp "$backup.sha256" "$work/bad/flipped.rdb.sha256"
printf 'X' | dd of="$work/bad/flipped.rdb" bs=1 seek=100 conv=notrunc status=none
if "$root/scripts/redis-restore.sh" --no-start "$work/bad/flipped.rdb" "$work/bad/d1" 2>"$work/err"; then
  fail "a corrupt copy was restored"
else
  grep -q 'SHA-256 mismatch' "$work/err" || fail "a corrupt copy's error does not say so: $(cat "$work/err")"
fi
size=$(stat -c %s "$backup")
head -c $(( size / 2 )) "$backup" > "$work/bad/truncated.rdb"
(cd "$work/bad" && sha256sum truncated.rdb > truncated.rdb.sha256)
if "$root/scripts/redis-restore.sh" --no-start "$work/bad/truncated.rdb" "$work/bad/d2" 2>"$work/err"; then
  fail "a truncated RDB was restored"
else
  grep -q 'redis-check-rdb rejects' "$work/err" || fail "a truncated RDB's error does not say so: $(cat "$work/err")"
fi
if "$root/scripts/redis-restore.sh" --no-start "$backup" "$work/restore1" 2>"$work/err"; then
  fail "a restore over an existing dump.rdb went ahead without --replace"
else
  grep -q 'already' "$work/err" || fail "restoring over a data dir in use: unclear error: $(cat "$work/err")"
fi
if "$root/scripts/redis-restore.sh" "$backup" "$work/bad/d3" "$port1" >/dev/null 2>"$work/err"; then
  fail "a restore onto a port in use went ahead"
else
  grep -q 'in use' "$work/err" || fail "a port in use: unclear error: $(cat "$work/err")"
fi

if [[ $failures -gt 0 ]]; then
  echo "backup-restore-test: $failures failure(s)" >&2
  exit 1
fi
echo "backup-restore-test: ok" >&2
