#!/usr/bin/env bash
# Every end-to-end benchmark scenario, one command:
#
#   bash bench/run.sh                       # RUNS=3 DURATION=10 by default
#   RUNS=1 DURATION=3 bash bench/run.sh     # a quick look
#   SCENARIOS="fanout plugins" bash bench/run.sh   # a subset (fanout plugins idle inbound)
#   BASELINE=/path/to/old/sluice bash bench/run.sh # also an older Sluice build, side by side
#   PROFILE=fanout100-100B-sluice bash bench/run.sh # `perf record -g` that process during run 1
#
# Starts a tansu broker process, the bare native bridge (the ceiling) and
# Sluice side by side (and a second, older Sluice with BASELINE), drives them
# with the same sluice-loadgen runs, interleaved (run 1 of every bridge, then
# run 2...) so drift on a shared machine hits them alike, and writes every
# JSON result plus a summary of medians and same-run ratios to
# bench/results/<UTC time>/ (summary.md is printed at the end). The bridges
# are restarted before each idle run, so every idle run starts from a fresh
# process. Nothing here asserts a time; it reports.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
RATE="${RATE:-1000}"
IDLE_CLIENTS="${IDLE_CLIENTS:-10000}"
SCENARIOS="${SCENARIOS:-fanout plugins idle inbound}"
SIZES="${SIZES:-100 1024}"      # fanout payload sizes
FANOUTS="${FANOUTS:-1 10 100}"  # fanout clients per channel
BASELINE="${BASELINE:-}"
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
tansu="${SLUICE_TANSU:-$cache/bin/tansu}"
[[ -x "$tansu" ]] || { echo "no broker at $tansu: run scripts/install-broker.sh" >&2; exit 1; }
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }

cargo build --release --quiet -p sluice-loadgen -p sluice-native-bridge -p sluice-runtime
bin=target/release
[[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/release"
# Copies, so another build into a shared target directory cannot swap a
# binary under a running benchmark.
mkdir -p "$out/bin"
cp "$bin/sluice" "$bin/native-bridge" "$bin/sluice-loadgen" "$out/bin/"
[[ -n "$BASELINE" ]] && cp "$BASELINE" "$out/bin/sluice-baseline"
bin="$out/bin"

pids=()
broker_pid=
cleanup() {
  # Bridges first: Sluice commits its offsets on the way out, which waits
  # for the broker.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -n "$broker_pid" ]] && { kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
  [[ -n "${PROFILE:-}" ]] || rm -rf "$out/bin"  # perf report needs the binary
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The broker, in its own data directory (tansu resolves sqlite paths there).
kport=$(free_port)
mkdir -p "$out/broker"
(cd "$out/broker" && RUST_LOG=warn exec "$tansu" broker --cluster-id sluice-bench \
  --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
  --storage-engine sqlite:tansu.db >broker.log 2>&1) &
broker_pid=$!
boot="127.0.0.1:$kport"
for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/"$kport") 2>/dev/null && break; sleep 0.1; done
for topic in bench-native bench-sluice bench-baseline bench-plugins bench-builtin bench-inbound; do
  "$bin/sluice-loadgen" --mode topic --bootstrap "$boot" --topic "$topic" --partitions 3 >/dev/null
done

# Pipelines: limits raised for one load-generating client address.
listener() { # port
  cat <<TOML
[kafka]
brokers = "$boot"

[[listeners]]
name = "bench"
address = "127.0.0.1:$1"
connections_per_ip = { per_second = 1000000, burst = 1000000 }
max_connections = 100000
ping_interval_ms = 0
TOML
}
fanout_pipeline() { # name path topic
  printf '\n[[pipelines]]\nname = "%s"\npath = "%s"\n[pipelines.source]\ntopics = ["%s"]\n[pipelines.router]\nplugin = "key-router"\n' "$1" "$2" "$3"
}
# The plugin-overhead pair: the same router + auth logic as components and built in.
auth_pipeline() { # name path topic router auth
  printf '\n[[pipelines]]\nname = "%s"\npath = "%s"\n[pipelines.source]\ntopics = ["%s"]\n[pipelines.router]\nplugin = "%s"\n[pipelines.auth]\nplugin = "%s"\nconfig = { users = { bench = "bench-pass" } }\n' "$@"
}
# Sluice and BASELINE run the same one-pipeline file, so their fanout
# numbers compare builds; a third process serves the plugin-overhead pair
# and the inbound pipeline.
sport=$(free_port)
{ listener "$sport"; fanout_pipeline fanout "/{channel}" bench-sluice; } >"$out/pipeline.toml"
bport=$(free_port)
{ listener "$bport"; fanout_pipeline fanout "/{channel}" bench-baseline; } >"$out/baseline.toml"
oport=$(free_port)
{
  listener "$oport"
  auth_pipeline plugins "/p/{channel}" bench-plugins key-router basic-auth
  auth_pipeline builtin "/n/{channel}" bench-builtin native:key-router native:basic-auth
  printf '\n[[pipelines]]\nname = "inbound"\npath = "/in/{channel}"\n[pipelines.sink]\ntopic = "bench-inbound"\n'
} >"$out/overhead.toml"
nport=$(free_port)

declare -A pid_of
wait_ready() { # log name
  for _ in $(seq 600); do grep -qx ready "$1" && return 0; sleep 0.1; done
  echo "$2 did not start: $1" >&2; exit 1
}
start() { # bridge: native | sluice | baseline | overhead
  case $1 in
    native) "$bin/native-bridge" --bootstrap "$boot" --topic bench-native --listen "127.0.0.1:$nport" >"$out/native.log" 2>&1 & ;;
    sluice) "$bin/sluice" run "$out/pipeline.toml" >"$out/sluice.log" 2>&1 & ;;
    baseline) "$bin/sluice-baseline" run "$out/baseline.toml" >"$out/baseline.log" 2>&1 & ;;
    overhead) "$bin/sluice" run "$out/overhead.toml" >"$out/overhead.log" 2>&1 & ;;
  esac
  pid_of[$1]=$!; pids+=($!)
  wait_ready "$out/$1.log" "$1"
}
stop() { kill "${pid_of[$1]}" 2>/dev/null || true; wait "${pid_of[$1]}" 2>/dev/null || true; }
url_of() { case $1 in native) echo "ws://127.0.0.1:$nport";; sluice) echo "ws://127.0.0.1:$sport";; baseline) echo "ws://127.0.0.1:$bport";; esac; }
topic_of() { echo "bench-$1"; }
bridges=(native sluice)
[[ -n "$BASELINE" ]] && bridges+=(baseline)
for b in "${bridges[@]}"; do start "$b"; done
{ want plugins || want inbound; } && start overhead

once() { # name n bridge-url pid topic extra-args...
  local name=$1 n=$2 url=$3 pid=$4 topic=$5; shift 5
  echo "== $name run $n" >&2
  local perf_pid=
  if [[ "${PROFILE:-}" == "$name" && $n == 1 ]]; then
    perf record -F 999 -g -p "$pid" -o "$out/$name.perf.data" 2>>"$out/perf.log" &
    perf_pid=$!
  fi
  "$bin/sluice-loadgen" --ws-url "$url" --bootstrap "$boot" --topic "$topic" \
    --server-pid "$pid" --json "$out/$name.$n.json" "$@" >/dev/null 2>>"$out/loadgen.log"
  if [[ -n "$perf_pid" ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
}

if want fanout; then
  for size in $SIZES; do
    for fanout in $FANOUTS; do
      args=(--clients "$fanout" --channels 1 --rate "$RATE" --duration "$DURATION" --size "$size")
      for n in $(seq "$RUNS"); do
        for b in "${bridges[@]}"; do
          once "fanout$fanout-${size}B-$b" "$n" "$(url_of "$b")/{channel}" "${pid_of[$b]}" "$(topic_of "$b")" "${args[@]}"
        done
      done
    done
  done
fi
if want plugins; then
  # 100 clients over 10 channels, Basic auth on every handshake.
  args=(--clients 100 --channels 10 --rate "$RATE" --duration "$DURATION" --size 100 --basic bench:bench-pass)
  for n in $(seq "$RUNS"); do
    once "overhead-plugins" "$n" "ws://127.0.0.1:$oport/p/{channel}" "${pid_of[overhead]}" bench-plugins "${args[@]}"
    once "overhead-builtin" "$n" "ws://127.0.0.1:$oport/n/{channel}" "${pid_of[overhead]}" bench-builtin "${args[@]}"
  done
fi
if want idle; then
  idle=(--mode idle --clients "$IDLE_CLIENTS" --channels 100 --duration 5)
  for n in $(seq "$RUNS"); do
    for b in "${bridges[@]}"; do
      stop "$b"; start "$b"
      once "idle$IDLE_CLIENTS-$b" "$n" "$(url_of "$b")/{channel}" "${pid_of[$b]}" "$(topic_of "$b")" "${idle[@]}"
    done
  done
fi
if want inbound; then
  for n in $(seq "$RUNS"); do
    once "inbound-sluice" "$n" "ws://127.0.0.1:$oport/in/{channel}" "${pid_of[overhead]}" bench-inbound \
      --mode inbound --clients 10 --channels 10 --rate 500 --duration "$DURATION"
  done
fi

python3 bench/summarize.py "$out" | tee "$out/summary.md"
