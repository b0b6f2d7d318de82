#!/usr/bin/env bash
# Checks that `cargo build --workspace` and the README's
# `cargo run -p sluice-runtime` resolve every dependency with the same
# features, so one build serves both (a member that turns on a feature of a
# shared dependency makes the other command rebuild it and everything above
# it). Compares cargo's unit graphs (RUSTC_BOOTSTRAP=1 unlocks
# `--unit-graph` on the pinned stable toolchain); builds nothing.
#
# Usage: bash scripts/check-one-build.sh
set -euo pipefail
cd "$(dirname "$0")/.."

graph() {
    RUSTC_BOOTSTRAP=1 cargo build --locked "$@" --unit-graph -Z unstable-options
}

python3 - <(graph -p sluice-runtime) <(graph --workspace) <<'PY'
import json, sys

def units(path):
    with open(path) as f:
        graph = json.load(f)
    return {
        (u["pkg_id"], u["target"]["name"], u["mode"]): sorted(u["features"])
        for u in graph["units"]
    }

runtime, workspace = units(sys.argv[1]), units(sys.argv[2])
differ = [
    f"  {pkg} ({target}, {mode}): the workspace adds {sorted(set(workspace[key]) - set(features))}"
    for key, features in runtime.items()
    for pkg, target, mode in [key]
    if key in workspace and workspace[key] != features
]
if differ:
    print("features differ between `cargo build --workspace` and `cargo run -p sluice-runtime`:")
    print("\n".join(differ))
    sys.exit(1)
print(f"one build: the {len(runtime)} units of sluice-runtime have the same features in the workspace build")
PY
