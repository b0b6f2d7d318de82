#!/usr/bin/env bash
# How long `sluice run pipeline.toml` (the embedded broker, no external
# service) takes from exec to printing `ready`, and its RSS then:
#
#   bash bench/startup.sh                         # RUNS=7
#   BASELINE=/path/to/old/sluice bash bench/startup.sh   # interleaved with an older build
#
# Each run is a fresh process, stopped with SIGTERM once ready. Prints every
# run and the median per binary (and the ratio with BASELINE). Reports; it
# asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-7}"
BASELINE="${BASELINE:-}"
cargo build --release --quiet -p sluice-runtime
bin=target/release
[[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/release"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$bin/sluice" "$work/sluice"
binaries=("$work/sluice")
[[ -n "$BASELINE" ]] && { cp "$BASELINE" "$work/sluice-baseline"; binaries+=("$work/sluice-baseline"); }

python3 - "$RUNS" pipeline.toml "${binaries[@]}" <<'PY'
import os, signal, statistics, subprocess, sys, time

runs, pipeline, binaries = int(sys.argv[1]), sys.argv[2], sys.argv[3:]

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def once(binary):
    started = time.monotonic()
    proc = subprocess.Popen([binary, "run", pipeline], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            if line.strip() == "ready":
                took = time.monotonic() - started
                return took, rss_kib(proc.pid)
        raise SystemExit(f"{binary} exited with {proc.wait()} before `ready`")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)

results = {b: [] for b in binaries}
for run in range(runs):
    for binary in binaries:  # interleaved: drift hits both alike
        took, rss = once(binary)
        results[binary].append((took, rss))
        print(f"run {run + 1} {os.path.basename(binary)}: ready after {took * 1000:.0f} ms, RSS {rss / 1024:.1f} MiB", flush=True)

print()
medians = {}
for binary, values in results.items():
    ready = statistics.median(t for t, _ in values)
    rss = statistics.median(r for _, r in values)
    medians[binary] = ready
    print(f"{os.path.basename(binary)}: median ready {ready * 1000:.0f} ms, median RSS at ready {rss / 1024:.1f} MiB ({runs} runs)")
if len(binaries) == 2:
    print(f"ratio sluice / baseline: {medians[binaries[0]] / medians[binaries[1]]:.2f}")
PY
