#!/usr/bin/env bash
# Runs a command with a private Redis Cluster (3 masters + 3 replicas) on free ports, every
# node in its own subdirectory of one temp dir. Exported for the command:
#   RADGRID_TEST_REDIS_URL, REDIS_URL   redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
#   RADGRID_TEST_REDIS_CLUSTER_PORTS    "P1 P2 P3 P4 P5 P6" (node N lives in DIR/node-PN)
#   RADGRID_TEST_REDIS_CLUSTER_DIR      DIR
# Every node is always stopped and the directory removed, whatever the command does.
#   scripts/with-private-redis-cluster.sh -- command args...
set -euo pipefail

while [[ $# -gt 0 ]]; do
  case "$1" in
    --) shift; break ;;
    *) break ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 -- command..." >&2; exit 2; }

server=${RADGRID_REDIS_SERVER:-redis-server}
cli=${RADGRID_REDIS_CLI:-redis-cli}
command -v "$server" >/dev/null || { echo "redis-server not found: run 'make deps'" >&2; exit 1; }
command -v "$cli" >/dev/null || { echo "redis-cli not found: run 'make deps'" >&2; exit 1; }

nodes=6
ready_timeout=${RADGRID_REDIS_CLUSTER_TIMEOUT:-20}
dir=$(mktemp -d "${TMPDIR:-/tmp}/radgrid-redis-cluster.XXXXXX")
ports=()
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "with-private-redis-cluster: $*" >&2
  local port
  for port in "${ports[@]}"; do
    echo "--- node $port: $dir/node-$port/redis.log (last 20 lines)" >&2
    tail -n 20 "$dir/node-$port/redis.log" >&2 2>/dev/null || true
  done
  exit 1
}

port_is_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports come from below the kernel's ephemeral range (outgoing connections, the nodes' own
# bus links among them, take ports from that range at any time), and the cluster bus port,
# port + 10000, must be free too.
read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
if (( ephemeral_low - 10000 > 12000 )); then
  port_low=10000; port_span=$(( ephemeral_low - 10000 - port_low ))
else
  port_low=20000; port_span=35000
fi
pick_port() {
  local candidate
  for _ in $(seq 1 200); do
    candidate=$(( port_low + (RANDOM * 32768 + RANDOM) % port_span ))
    [[ " ${ports[*]-} " == *" $candidate "* ]] && continue
    port_is_free "$candidate" && port_is_free $(( candidate + 10000 )) || continue
    echo "$candidate"; return 0
  done
  return 1
}

# Starts one node and waits for its PONG. A port taken meanwhile by someone else (the check
# above is only a snapshot) shows as "Address already in use": then another port is tried.
start_node() {
  local port node pid
  for _ in $(seq 1 10); do
    port=$(pick_port) || fail "could not find a free port pair (PORT, PORT+10000)"
    node="$dir/node-$port"
    mkdir -p "$node"
    "$server" --port "$port" --bind 127.0.0.1 --dir "$node" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
      --cluster-replica-no-failover no \
      --save "" --appendonly no --daemonize no --logfile "$node/redis.log" &
    pid=$!
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null || true
        grep -q 'Address already in use' "$node/redis.log" 2>/dev/null && { pid=""; break; }
        ports+=("$port"); fail "redis-server on port $port exited during start"
      fi
      if [[ $("$cli" -p "$port" ping 2>/dev/null) == PONG ]]; then
        ports+=("$port"); pids+=("$pid")
        # The PONG must come from this node, not from a server that took the port first.
        "$cli" -p "$port" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid" \
          || fail "port $port answers, but not from the redis-server started here (pid $pid)"
        return 0
      fi
      sleep 0.05
    done
    [[ -z "$pid" ]] && { rm -rf "$node"; continue; }
    ports+=("$port"); pids+=("$pid")
    fail "redis-server on port $port did not answer PING within 5 s"
  done
  fail "could not start a node: every port tried was taken"
}

for _ in $(seq 1 "$nodes"); do start_node; done

addresses=()
for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
if ! "$cli" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes \
     > "$dir/cluster-create.log" 2>&1; then
  cat "$dir/cluster-create.log" >&2
  fail "redis-cli --cluster create failed"
fi

# Ready: every node reports cluster_state:ok, all 16384 slots ok, and sees all six nodes.
deadline=$(( SECONDS + ready_timeout ))
while :; do
  ready=yes
  for port in "${ports[@]}"; do
    info=$("$cli" -p "$port" cluster info 2>/dev/null | tr -d '\r') || { ready=no; break; }
    if [[ $info != *"cluster_state:ok"* || $info != *"cluster_slots_ok:16384"* \
          || $info != *"cluster_known_nodes:$nodes"* ]]; then
      ready=no; break
    fi
  done
  [[ $ready == yes ]] && break
  if (( SECONDS >= deadline )); then
    cat "$dir/cluster-create.log" >&2
    for port in "${ports[@]}"; do
      echo "--- cluster info of node $port:" >&2
      "$cli" -p "$port" cluster info 2>&1 | tr -d '\r' | grep -E 'cluster_(state|slots_ok|known_nodes)' >&2 || true
    done
    fail "cluster not ready (cluster_state:ok, cluster_slots_ok:16384 on every node) within ${ready_timeout} s"
  fi
  sleep 0.1
done

# Replicas synced (master_link_status:up): before that a write cannot be acknowledged by a
# replica (WAIT) and a replica could not take over.
while :; do
  synced=0
  for port in "${ports[@]}"; do
    info=$("$cli" -p "$port" info replication 2>/dev/null | tr -d '\r') || true
    [[ $info == *"role:slave"* && $info == *"master_link_status:up"* ]] && synced=$(( synced + 1 ))
  done
  (( synced == 3 )) && break
  (( SECONDS >= deadline )) && fail "the replicas did not sync with their masters within ${ready_timeout} s"
  sleep 0.1
done

export RADGRID_TEST_REDIS_URL="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
export REDIS_URL="$RADGRID_TEST_REDIS_URL"
export RADGRID_TEST_REDIS_CLUSTER_PORTS="${ports[*]}"
export RADGRID_TEST_REDIS_CLUSTER_DIR="$dir"
echo "private redis cluster at $REDIS_URL (ports ${ports[*]}, pids ${pids[*]}, dir $dir)" >&2
set +e
"$@"
status=$?
set -e
exit $status
