#!/usr/bin/env bash
# Room broadcasts on one Sluice node and on a cluster of three, with the
# same clients and load (the project's load generator, rooms mode):
#
#   bash bench/cluster.sh                 # RUNS=3 DURATION=10 RATE=300 CLIENTS=300 ROOMS=3
#   RUNS=1 DURATION=3 bash bench/cluster.sh
#   PROFILE=dist bash bench/cluster.sh    # build with the dist profile instead
#
# Starts a tansu broker process; `single` is one `sluice run` without
# [cluster], `cluster` three processes with one [cluster] (the clients
# spread over them: client i on node i mod 3, every room on every node,
# room r's sender on node r mod 3).
# The handler is the mock plugin's `kind = "rooms"`. Runs interleave
# (single, cluster, single, ...). Each report says what was delivered
# against what was expected, the servers' CPU per delivery, latency from
# the intended send time, and the bus records per room message (from the
# nodes' /metrics). Nothing here asserts a time; it reports.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
RATE="${RATE:-300}"          # room messages per second, over all rooms
CLIENTS="${CLIENTS:-300}"
ROOMS="${ROOMS:-3}"
SIZE="${SIZE:-100}"
STORAGE="${STORAGE:-sqlite:tansu.db}"   # tansu's storage engine (postgres:// and s3:// are the others)
out="bench/results/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out/bin"
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
tansu="${SLUICE_TANSU:-$cache/bin/tansu}"
[[ -x "$tansu" ]] || { echo "no broker at $tansu: run scripts/install-broker.sh" >&2; exit 1; }

# PROFILE=dist reuses a distribution build's artifacts (the release
# settings, stripped).
profile="${PROFILE:-release}"
cargo build --profile "$profile" --quiet -p sluice-loadgen -p sluice-runtime
bin="target/$profile"
[[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/$profile"
cp "$bin/sluice" "$bin/sluice-loadgen" "$out/bin/"
bin="$out/bin"

pids=()
broker_pid=
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "$broker_pid" ]] && { kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
  rm -rf "$out/bin"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

kport=$(free_port)
mkdir -p "$out/broker"
(cd "$out/broker" && RUST_LOG=warn exec "$tansu" broker --cluster-id sluice-bench \
  --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine "$STORAGE" >broker.log 2>&1) &
broker_pid=$!
boot="127.0.0.1:$kport"
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$kport") 2>/dev/null && break; sleep 0.1; done

node_file() { # port admin-port cluster-table
  cat <<TOML
[admin]
address = "127.0.0.1:$2"
token = "bench-operator-token-0123456789"

[kafka]
brokers = "$boot"
# tansu 0.6's sqlite storage panics in its idempotence check once an
# idempotent producer's request times out (the broker is saturated) and
# then refuses every produce: off for this broker only (Kafka is fine).
properties = { "enable.idempotence" = false }
$3
[[listeners]]
name = "bench"
address = "127.0.0.1:$1"
connections_per_ip = { per_second = 1000000, burst = 1000000 }
max_connections = 100000
ping_interval_ms = 0

[[pipelines]]
name = "chat"
path = "/chat"
outbox = { capacity = 4096, when_full = "drop-oldest" }
[pipelines.handler]
plugin = "mock"
config = { kind = "rooms" }
TOML
}

declare -A ws admin pid_of
wait_ready() { for _ in $(seq 600); do grep -qx ready "$1" && return 0; sleep 0.1; done; echo "$1: no ready" >&2; exit 1; }
start() { # name cluster-table
  local port aport; port=$(free_port); aport=$(free_port)
  node_file "$port" "$aport" "$2" >"$out/$1.toml"
  "$bin/sluice" run "$out/$1.toml" >"$out/$1.log" 2>&1 &
  pid_of[$1]=$!; pids+=($!); ws[$1]="ws://127.0.0.1:$port/chat"; admin[$1]="127.0.0.1:$aport"
  wait_ready "$out/$1.log"
}
start single ""
for n in 1 2 3; do start "node$n" "$(printf '[cluster]\nname = "bench"\nnode_id = %s\n' "$n")"; done

bus_records() { # nodes... : broadcast records the nodes sent on the bus
  local total=0
  for n in "$@"; do
    local v
    v=$(curl -s "http://${admin[$n]}/metrics" | awk '/^cluster_records_total\{.*op="broadcast".*direction="sent"/ {s+=$2} END {print s+0}')
    total=$(python3 -c "print($total + $v)")
  done
  echo "$total"
}

for run in $(seq "$RUNS"); do
  for variant in single cluster; do
    if [[ $variant == single ]]; then nodes=(single); else nodes=(node1 node2 node3); fi
    urls=$(for n in "${nodes[@]}"; do printf '%s,' "${ws[$n]}"; done); urls=${urls%,}
    server_pids=$(for n in "${nodes[@]}"; do printf '%s,' "${pid_of[$n]}"; done); server_pids=${server_pids%,}
    before=$(bus_records "${nodes[@]}")
    echo "== $variant run $run" >&2
    "$bin/sluice-loadgen" --mode rooms --ws-url "$urls" --clients "$CLIENTS" --channels "$ROOMS" \
      --rate "$RATE" --duration "$DURATION" --size "$SIZE" --server-pids "$server_pids" \
      --json "$out/$variant-$run.json" >/dev/null
    after=$(bus_records "${nodes[@]}")
    python3 - "$out/$variant-$run.json" "$before" "$after" <<'PY'
import json, sys
path, before, after = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
r = json.load(open(path))
r["bus_broadcast_records"] = after - before
json.dump(r, open(path, "w"), indent=1)
PY
  done
done

python3 - "$out" "$RUNS" <<'PY' | tee "$out/summary.md"
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def load(v): return [json.load(open(f"{out}/{v}-{n}.json")) for n in range(1, runs + 1)]
# The mock's rooms broadcast one `user_joined` per join and one `user_left`
# per close: two bus records per client beside the chat messages.
print("| variant | deliveries/s (median) | expected | lost | dup | out of order | p50 ms | p99 ms | server CPU us/delivery | bus records per chat message |")
print("|---|---|---|---|---|---|---|---|---|---|")
med = {}
for v in ("single", "cluster"):
    rs = load(v)
    d = [r["deliveries"] for r in rs]
    per_sec = statistics.median(x["per_sec"] for x in d)
    p50 = statistics.median(r["latency_us"]["p50"] for r in rs) / 1000
    p99 = statistics.median(r["latency_us"]["p99"] for r in rs) / 1000
    cpu = statistics.median(r["rooms"]["servers_cpu_s"] * 1e6 / max(x["received"], 1) for r, x in zip(rs, d))
    bus = statistics.median((r["bus_broadcast_records"] - 2 * r["connect"]["connected"] * (v == "cluster")) / max(r["rooms"]["messages"], 1) for r in rs)
    med[v] = (per_sec, p50, cpu)
    print(f"| {v} | {per_sec:.0f} | {sum(x['expected'] for x in d) // runs} | {sum(x['lost'] for x in d)} | {sum(x['duplicates'] for x in d)} | {sum(x['out_of_order'] for x in d)} | {p50:.1f} | {p99:.1f} | {cpu:.2f} | {bus:.2f} |")
s, c = med["single"], med["cluster"]
print(f"\ncluster / single: deliveries/s {c[0]/s[0]:.2f}, p50 {c[1]/s[1]:.2f}, CPU per delivery {c[2]/s[2]:.2f} ({runs} runs each, interleaved)")
PY
