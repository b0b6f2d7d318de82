#!/usr/bin/env bash
# How long `sluice run pipeline.toml` (the embedded broker, no external
# service) takes from exec to printing `ready`, and its RSS then:
#
#   bash bench/startup.sh                         # RUNS=7
#   BASELINE=/path/to/old/sluice bash bench/startup.sh   # interleaved with an older build
#   SLUICE_BIN=/path/to/sluice bash bench/startup.sh     # that build instead of a release build
#
# Each run is a fresh process, stopped with SIGTERM once ready. Runs the file
# as it is (broadcast mode: partitions assigned without a group) and a copy
# in `mode = "shared"` (a consumer-group join, what broadcast mode did before
# 2026-12-03), interleaved. Prints every run and the median per variant (and
# the ratios). Reports; it asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-7}"
BASELINE="${BASELINE:-}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n "${SLUICE_BIN:-}" ]]; then
  # A build at hand (say target/debug/sluice), instead of a release build.
  cp "$SLUICE_BIN" "$work/sluice"
else
  cargo build --release --quiet -p sluice-runtime
  bin=target/release
  [[ -n "${CARGO_TARGET_DIR:-}" ]] && bin="$CARGO_TARGET_DIR/release"
  cp "$bin/sluice" "$work/sluice"
fi
binaries=("$work/sluice")
[[ -n "$BASELINE" ]] && { cp "$BASELINE" "$work/sluice-baseline"; binaries+=("$work/sluice-baseline"); }

# The same file with the source in shared mode.
sed 's/^topics = \["test-websocket-input"\]$/topics = ["test-websocket-input"]\nmode = "shared"/' pipeline.toml >"$work/shared.toml"
grep -q '^mode = "shared"' "$work/shared.toml" || { echo "pipeline.toml changed: cannot make the shared variant" >&2; exit 1; }

python3 - "$RUNS" pipeline.toml "$work/shared.toml" "${binaries[@]}" <<'PY'
import os, signal, statistics, subprocess, sys, time

runs, broadcast, shared, binaries = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
variants = [(os.path.basename(b) + " " + mode, b, f) for b in binaries for mode, f in (("broadcast", broadcast), ("shared", shared))]

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

def once(binary, pipeline):
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

results = {name: [] for name, _, _ in variants}
for run in range(runs):
    for name, binary, pipeline in variants:  # interleaved: drift hits all alike
        took, rss = once(binary, pipeline)
        results[name].append((took, rss))
        print(f"run {run + 1} {name}: ready after {took * 1000:.0f} ms, RSS {rss / 1024:.1f} MiB", flush=True)

print()
medians = {}
for name, values in results.items():
    ready = statistics.median(t for t, _ in values)
    rss = statistics.median(r for _, r in values)
    medians[name] = ready
    print(f"{name}: median ready {ready * 1000:.0f} ms, median RSS at ready {rss / 1024:.1f} MiB ({runs} runs)")
first = variants[0][0]
for name in medians:
    if name != first:
        print(f"ratio {first} / {name}: {medians[first] / medians[name]:.2f}")
PY
