#!/usr/bin/env bash
# Every end-to-end benchmark scenario, one command:
#
#   bash bench/run.sh                 # RUNS=3 DURATION=10 by default
#   RUNS=1 DURATION=3 bash bench/run.sh   # a quick look
#
# Starts a tansu broker process, the bare native bridge (the ceiling) and
# Sluice (key-router on /{channel}) side by side, drives both with the same
# sluice-loadgen runs, and writes every JSON result plus a summary of medians
# to bench/results/<UTC time>/ (summary.md is printed at the end). Nothing
# here asserts a time; it reports.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
RATE="${RATE:-1000}"
IDLE_CLIENTS="${IDLE_CLIENTS:-10000}"
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
tansu="${SLUICE_TANSU:-$cache/bin/tansu}"
[[ -x "$tansu" ]] || { echo "no broker at $tansu: run scripts/install-broker.sh" >&2; exit 1; }

cargo build --release --quiet -p sluice-loadgen -p sluice-native-bridge -p sluice-runtime
bin=target/release
[[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/release"

pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The broker, in its own data directory (tansu resolves sqlite paths there).
kport=$(free_port)
mkdir -p "$out/broker"
(cd "$out/broker" && RUST_LOG=warn exec "$tansu" broker --cluster-id sluice-bench \
  --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine sqlite:tansu.db >broker.log 2>&1) &
pids+=($!)
boot="127.0.0.1:$kport"
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$kport") 2>/dev/null && break; sleep 0.1; done
for topic in bench-native bench-sluice bench-inbound; do
  "$bin/sluice-loadgen" --mode topic --bootstrap "$boot" --topic "$topic" --partitions 3 >/dev/null
done

# The ceiling.
nport=$(free_port)
"$bin/native-bridge" --bootstrap "$boot" --topic bench-native --listen "127.0.0.1:$nport" >"$out/native.log" 2>&1 &
native_pid=$!; pids+=($native_pid)

# Sluice: a key-router pipeline and a sink pipeline; limits raised for one
# load-generating client address.
sport=$(free_port)
cat >"$out/pipeline.toml" <<TOML
[kafka]
brokers = "$boot"

[[listeners]]
name = "bench"
address = "127.0.0.1:$sport"
connections_per_ip = { per_second = 1000000, burst = 1000000 }
max_connections = 100000
ping_interval_ms = 0

[[pipelines]]
name = "fanout"
path = "/{channel}"
[pipelines.source]
topics = ["bench-sluice"]
[pipelines.router]
plugin = "key-router"

[[pipelines]]
name = "inbound"
path = "/in/{channel}"
[pipelines.sink]
topic = "bench-inbound"
TOML
"$bin/sluice" run "$out/pipeline.toml" >"$out/sluice.log" 2>&1 &
sluice_pid=$!; pids+=($sluice_pid)
for _ in $(seq 600); do
  grep -qx ready "$out/sluice.log" && grep -qx ready "$out/native.log" && break
  sleep 0.1
done
grep -qx ready "$out/sluice.log" || { echo "sluice did not start: $out/sluice.log" >&2; exit 1; }
grep -qx ready "$out/native.log" || { echo "native bridge did not start: $out/native.log" >&2; exit 1; }

run() { # name bridge-url pid topic extra-args...
  local name=$1 url=$2 pid=$3 topic=$4; shift 4
  for n in $(seq "$RUNS"); do
    echo "== $name run $n" >&2
    "$bin/sluice-loadgen" --ws-url "$url" --bootstrap "$boot" --topic "$topic" \
      --server-pid "$pid" --json "$out/$name.$n.json" "$@" >/dev/null 2>>"$out/loadgen.log"
  done
}

for size in 100 1024; do
  for fanout in 1 10 100; do
    args=(--clients "$fanout" --channels 1 --rate "$RATE" --duration "$DURATION" --size "$size")
    run "fanout$fanout-${size}B-native" "ws://127.0.0.1:$nport/{channel}" "$native_pid" bench-native "${args[@]}"
    run "fanout$fanout-${size}B-sluice" "ws://127.0.0.1:$sport/{channel}" "$sluice_pid" bench-sluice "${args[@]}"
  done
done
idle=(--mode idle --clients "$IDLE_CLIENTS" --channels 100 --duration 5)
run "idle$IDLE_CLIENTS-native" "ws://127.0.0.1:$nport/{channel}" "$native_pid" bench-native "${idle[@]}"
run "idle$IDLE_CLIENTS-sluice" "ws://127.0.0.1:$sport/{channel}" "$sluice_pid" bench-sluice "${idle[@]}"
run "inbound-sluice" "ws://127.0.0.1:$sport/in/{channel}" "$sluice_pid" bench-inbound \
  --mode inbound --clients 10 --channels 10 --rate 500 --duration "$DURATION"

python3 bench/summarize.py "$out" | tee "$out/summary.md"
