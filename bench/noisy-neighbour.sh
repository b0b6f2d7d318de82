#!/usr/bin/env bash
# Tenant fairness, measured: the quiet tenant's fanout latency alone, then
# while the noisy tenant floods at 10x its quotas and runs a router that
# spins to its deadline on every record. One sluice process, one broker.
#
#   bash bench/noisy-neighbour.sh                 # RUNS=3 DURATION=10
#   RUNS=1 DURATION=3 bash bench/noisy-neighbour.sh
#
# Writes every sluice-loadgen JSON plus summary.md (medians, and the
# noisy tenant's throttling counters from /metrics) to
# bench/results/noisy-<UTC time>/. Nothing here asserts a time.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
RATE="${RATE:-1000}"         # quiet records/s
CLIENTS="${CLIENTS:-10}"     # quiet clients (one channel)
out="bench/results/noisy-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
tansu="${SLUICE_TANSU:-$cache/bin/tansu}"
[[ -x "$tansu" ]] || { echo "no broker at $tansu: run scripts/install-broker.sh" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
if [[ -z "${SLUICE_BIN:-}" ]]; then
  cargo build --release --quiet -p sluice-loadgen -p sluice-runtime
fi
bin="${SLUICE_BIN:-$target/release}"
faults=$(find "$target/wasm-plugins" -path '*/release/faults.wasm' | head -1)
# The pipeline file lives in the results folder: plugin paths must be absolute.
[[ -n "$faults" ]] && faults=$(realpath "$faults")
[[ -f "$faults" ]] || { echo "no faults.wasm under $target/wasm-plugins (build the runtime first)" >&2; exit 1; }

pids=()
broker_pid=
# Sluice and the load first (a sluice whose broker is gone may take long to
# stop: bounded by a KILL), the broker last.
cleanup() {
  for pid in "${pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0; for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive == 0 ]] && break; sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [[ -n "$broker_pid" ]] && kill "$broker_pid" 2>/dev/null
  wait 2>/dev/null || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

kport=$(free_port)
mkdir -p "$out/broker"
(cd "$out/broker" && RUST_LOG=warn exec "$tansu" broker --cluster-id sluice-bench \
  --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine sqlite:tansu.db >broker.log 2>&1) &
broker_pid=$!
boot="127.0.0.1:$kport"
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$kport") 2>/dev/null && break; sleep 0.1; done
for topic in quiet.fanout noisy.loop noisy.feed noisy.in; do
  "$bin/sluice-loadgen" --mode topic --bootstrap "$boot" --topic "$topic" --partitions 3 >/dev/null
done

sport=$(free_port)
aport=$(free_port)
noisy_quotas='[tenants.quotas]
inbound_messages_per_second = 100
outbound_deliveries_per_second = 100
plugin_deadline_ms = 10
plugin_cpu_share = 0.1'

start_sluice() { # quotas-block
  cat >"$out/pipeline.toml" <<TOML
[admin]
address = "127.0.0.1:$aport"
token = "noisy-bench-operator-token"

[kafka]
brokers = "$boot"

[[listeners]]
name = "bench"
address = "127.0.0.1:$sport"
connections_per_ip = { per_second = 1000000, burst = 1000000 }
max_connections = 100000
ping_interval_ms = 0

[[tenants]]
name = "quiet"
path_prefix = "/quiet"
topics = ["quiet.*"]

[[tenants]]
name = "noisy"
path_prefix = "/noisy"
topics = ["noisy.*"]
$1

[[pipelines]]
name = "quiet-fanout"
tenant = "quiet"
path = "/quiet/{channel}"
source = { topics = ["quiet.fanout"] }
router = { plugin = "key-router" }

[[pipelines]]
name = "noisy-loop"
tenant = "noisy"
path = "/noisy/loop/{channel}"
source = { topics = ["noisy.loop"] }
router = { plugin = "$faults", limits = { deadline_ms = 10 } }

[[pipelines]]
name = "noisy-feed"
tenant = "noisy"
path = "/noisy/feed/{channel}"
source = { topics = ["noisy.feed"] }
router = { plugin = "key-router" }

[[pipelines]]
name = "noisy-in"
tenant = "noisy"
path = "/noisy/in/{channel}"
sink = { topic = "noisy.in" }
TOML
  "$bin/sluice" run "$out/pipeline.toml" >>"$out/sluice.log" 2>&1 &
  sluice_pid=$!; pids+=($sluice_pid)
  for _ in $(seq 600); do [[ $(grep -cx ready "$out/sluice.log") -ge $2 ]] && break; sleep 0.1; done
  [[ $(grep -cx ready "$out/sluice.log") -ge $2 ]] || { echo "sluice did not start: $out/sluice.log" >&2; exit 1; }
}

quiet() { # name
  for n in $(seq "$RUNS"); do
    echo "== $1 run $n" >&2
    "$bin/sluice-loadgen" --ws-url "ws://127.0.0.1:$sport/quiet/{channel}" --bootstrap "$boot" \
      --topic quiet.fanout --clients "$CLIENTS" --channels 1 --rate "$RATE" \
      --duration "$DURATION" --size 100 --server-pid "$sluice_pid" \
      --json "$out/$1.$n.json" >/dev/null 2>>"$out/loadgen.log"
  done
}

# The noisy tenant, for as long as the quiet runs take: every loop record
# spins for its whole 10 ms deadline (50/s asks for 0.5 CPU-seconds a
# second, 2.5x a 0.1 share of 2 cores); fanout (10 clients x 100
# records/s) and inbound (1000 messages/s) at 10x their 100/s quotas.
noisy_pids=()
start_noisy() {
  local long=$(( (DURATION + 5) * RUNS + 10 ))
  noisy() { "$bin/sluice-loadgen" --bootstrap "$boot" --duration "$long" --drain-ms 0 "$@" \
    >/dev/null 2>>"$out/noisy.log" || true; }
  noisy --ws-url "ws://127.0.0.1:$sport/noisy/loop/{channel}" --topic noisy.loop \
    --channel-names loop --clients 1 --rate 50 &
  noisy_pids+=($!)
  noisy --ws-url "ws://127.0.0.1:$sport/noisy/feed/{channel}" --topic noisy.feed \
    --clients 10 --channels 1 --rate 100 &
  noisy_pids+=($!)
  noisy --mode inbound --ws-url "ws://127.0.0.1:$sport/noisy/in/{channel}" --topic noisy.in \
    --clients 10 --channels 10 --rate 1000 &
  noisy_pids+=($!)
  pids+=("${noisy_pids[@]}")
  sleep 3
}
stop_noisy() {
  for pid in "${noisy_pids[@]}"; do pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
  wait "${noisy_pids[@]}" 2>/dev/null || true
  noisy_pids=()
}

start_sluice "$noisy_quotas" 1
quiet solo
start_noisy
quiet noisy
curl -s "http://127.0.0.1:$aport/metrics" | grep -E '^tenant_' >"$out/tenant-metrics.txt" || true
stop_noisy

# The same, with the noisy tenant's quotas removed: what they buy.
kill "$sluice_pid"; wait "$sluice_pid" 2>/dev/null || true
start_sluice "" 2
start_noisy
quiet unlimited
stop_noisy

python3 - "$out" <<'PY' | tee "$out/summary.md"
import json, pathlib, statistics, sys
out = pathlib.Path(sys.argv[1])
def runs(name):
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{name}.*.json"))]
print(f"# Noisy neighbour {out.name}\n")
print("Quiet tenant: fanout to its clients, medians of the runs.\n")
print("| quiet tenant | runs | deliveries/s | lost | p50 ms | p99 ms | p99.9 ms |")
print("|---|---|---|---|---|---|---|")
labels = {"solo": "alone", "noisy": "noisy neighbour, with its quotas",
          "unlimited": "noisy neighbour, no quotas"}
for name in labels:
    rs = runs(name)
    med = lambda pick: statistics.median(pick(r) for r in rs)
    lat = lambda q: med(lambda r: r["latency_us"][q]) / 1000
    if not rs:
        continue
    print(f"| {labels[name]} | {len(rs)} | "
          f"{med(lambda r: r['deliveries']['per_sec']):,.0f} | {med(lambda r: r['deliveries']['lost']):.0f} | "
          f"{lat('p50'):.2f} | {lat('p99'):.2f} | {lat('p99_9'):.2f} |")
print("\nTenant counters after the run with quotas (/metrics):\n")
print("```")
print((out / "tenant-metrics.txt").read_text().strip())
print("```")
PY
