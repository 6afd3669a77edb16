#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One room of 100 members on one server, on one cluster node, and split across two cluster nodes, in one run:
# the fixed-rate p50/p99 (what crossing NATS adds) and closed-loop deliveries/s, with bench/load_generator.
# Usage: bench/cluster_compare.sh PARLEY_TOOLS LOAD_GENERATOR [DURATION_S]
set -euo pipefail
binary=${1:?usage: cluster_compare.sh PARLEY_TOOLS LOAD_GENERATOR [DURATION_S]}
generator=${2:?usage: cluster_compare.sh PARLEY_TOOLS LOAD_GENERATOR [DURATION_S]}
duration=${3:-10}
command -v nats-server >/dev/null || { echo "cluster_compare: nats-server is not installed (scripts/install-deps.sh)" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

nats_port=$(free_port)
nats-server -js -a 127.0.0.1 -p "$nats_port" -sd "$work/js" 2>"$work/nats.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$nats_port") 2>/dev/null && break; sleep 0.05; done

# Starts a server with the given extra flags and sets `port` once it listens (not in a
# subshell, so its pid stays on the list that cleanup() stops).
start() {
  local name=$1; shift
  "$binary" server --port 0 --db "$work/$name.db" --log-level warn \
    --rate-capacity 1000000000 --rate-per-second 1000000000 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 300); do
    if grep -q '^listening' "$work/$name.out" 2>/dev/null; then
      port=$(sed -n 's/^listening ws:\/\/[^:]*:\([0-9]*\)$/\1/p' "$work/$name.out")
      return
    fi
    sleep 0.05
  done
  echo "cluster_compare: $name did not start: $(cat "$work/$name.err")" >&2
  exit 1
}

run() {
  local label=$1 ports=$2; shift 2
  local line
  line=$("$generator" --port "$ports" --members 100 --room "r$RANDOM" --warmup 2 --duration "$duration" "$@" --json | tail -1)
  python3 - "$label" "$line" <<'EOF'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
print(f"{label:<34} {r['deliveries_per_s'] / 1e3:8.0f}k deliveries/s  p50 {r['p50_ms']:6.2f} ms  p99 {r['p99_ms']:6.2f} ms"
      f"  gaps {r['gaps']} dups {r['dups']} missing {r['missing']} {'ok' if r['ok'] else 'FAILED: ' + r['first_error']}")
EOF
}

start single
single=$port
start node1 --cluster "nats://127.0.0.1:$nats_port"
node1=$port
start node2 --cluster "nats://127.0.0.1:$nats_port"
node2=$port

for mode in "--rate 10" "--closed-loop --in-flight 4"; do
  echo "== $mode"
  # shellcheck disable=SC2086
  run "one server (no --cluster)" "$single" $mode
  # shellcheck disable=SC2086
  run "one cluster node" "$node1" $mode
  # shellcheck disable=SC2086
  run "two cluster nodes (50 + 50)" "$node1,$node2" $mode
done
