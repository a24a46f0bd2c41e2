#!/usr/bin/env bash
# Runs a command with a private redis-server on a free port in a temp dir.
# The server's URL is exported as RADGRID_TEST_REDIS_URL and REDIS_URL; the server is
# always stopped and its directory removed, whatever the command does.
#   scripts/with-private-redis.sh [--aof] -- command args...
set -euo pipefail

aof=no
while [[ $# -gt 0 ]]; do
  case "$1" in
    --aof) aof=yes; shift ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--aof] -- command..." >&2; exit 2; }

server=${RADGRID_REDIS_SERVER:-redis-server}
command -v "$server" >/dev/null || { echo "redis-server not found: run 'make deps'" >&2; exit 1; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/radgrid-redis.XXXXXX")
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for _ in $(seq 1 20); do
  port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
  port_is_free "$port" || continue
  "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly "$aof" \
    --daemonize no --logfile "$dir/redis.log" &
  pid=$!
  for _ in $(seq 1 100); do
    if ! kill -0 "$pid" 2>/dev/null; then pid=""; break; fi
    if ! port_is_free "$port"; then break; fi
    sleep 0.05
  done
  [[ -n "$pid" ]] && break
done
[[ -n "$pid" ]] || { echo "could not start a private redis-server" >&2; cat "$dir/redis.log" >&2 || true; exit 1; }

export RADGRID_TEST_REDIS_URL="redis://127.0.0.1:$port"
export REDIS_URL="$RADGRID_TEST_REDIS_URL"
echo "private redis-server at $REDIS_URL (pid $pid, dir $dir)" >&2
set +e
"$@"
status=$?
set -e
exit $status
