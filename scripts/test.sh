#!/usr/bin/env bash
# Runs every check and test of the project: formatting, lints, unit,
# integration and doc tests. Installs what it needs first: the wasm target,
# the tansu broker and the Python test clients (both cached outside the clone,
# in ${SLUICE_CI_CACHE:-~/.cache/sluice-ci}).
#
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Each phase's wall time, printed as it ends and summed up at the end.
started=$SECONDS
phase_start=$SECONDS
phase_name=""
timings=()
end_phase() {
    if [ -n "$phase_name" ]; then
        local took=$((SECONDS - phase_start))
        printf '<== %s: %dm%02ds\n' "$phase_name" $((took / 60)) $((took % 60))
        timings+=("$(printf '%5ds  %s' "$took" "$phase_name")")
    fi
}
step() {
    end_phase
    phase_name="$*"
    phase_start=$SECONDS
    printf '\n==> %s\n' "$*"
}
summary() {
    end_phase
    phase_name=""
    printf '\n==> phases (seconds)\n'
    printf '%s\n' "${timings[@]}"
    printf '%5ds  total\n' $((SECONDS - started))
}
trap summary EXIT

step "toolchain (rust-toolchain.toml) and the wasm32-wasip2 target"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2 >/dev/null
rustup component add rustfmt clippy >/dev/null

step "C build dependencies (libssl-dev, pkg-config; apt-get when missing)"
bash scripts/install-build-deps.sh

step "one build for the workspace and the run command (same features)"
bash scripts/check-one-build.sh

step "cargo fmt --check"
cargo fmt --all --check
cargo fmt --all --check --manifest-path plugins/Cargo.toml

step "cargo clippy (host workspace; this also builds every plugin)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo fmt --check (fuzz targets, their own workspace)"
cargo fmt --all --check --manifest-path fuzz/Cargo.toml

step "cargo clippy (plugins, wasm32-wasip2)"
plugin_target="${CARGO_TARGET_DIR:-$PWD/target}/wasm-plugins"
cargo clippy --manifest-path plugins/Cargo.toml --target wasm32-wasip2 --release \
    --target-dir "$plugin_target" --locked -- -D warnings

step "Kafka-protocol broker for end-to-end tests (tansu; first build takes minutes)"
SLUICE_TANSU="$(bash scripts/install-broker.sh)"
export SLUICE_TANSU

step "Python test clients (venv with tests/requirements.txt)"
SLUICE_PYTHON="$(bash scripts/install-test-clients.sh)"
export SLUICE_PYTHON

step "plugin toolchains: componentize-py (venv), jco + componentize-js (npm)"
plugin_tools="$(bash scripts/install-plugin-toolchains.sh)"
eval "$plugin_tools"
export SLUICE_COMPONENTIZE_PY SLUICE_JCO

step "headless Chromium for the browser end-to-end tests (Debian's chromium, apt-get)"
SLUICE_CHROMIUM="$(bash scripts/install-browser.sh)"
export SLUICE_CHROMIUM

step "Autobahn TestSuite (wstest, Python 2.7 from Debian bullseye, in a venv)"
SLUICE_WSTEST="$(bash scripts/install-autobahn.sh)"
export SLUICE_WSTEST

step "the JavaScript client's own tests (node --test clients/js/test)"
node --test clients/js/test/

step "cargo fuzz: every target in fuzz/ for a bounded time (bash scripts/fuzz.sh)"
bash scripts/fuzz.sh "${SLUICE_FUZZ_SECONDS:-10}"

step "cargo test (the Autobahn suite beside the rest, niced)"
build_log="$(mktemp "${TMPDIR:-/tmp}/sluice-test-build.XXXXXX")"
cargo test --workspace --locked --no-run 2>&1 | tee "$build_log"
# The Autobahn suite is CPU-bound Python for minutes while the other tests
# mostly wait on sockets and brokers: its test binary (the one just built;
# `cargo test -p` would resolve other features and build again) runs
# beside them at the lowest priority, so it takes only the CPU they leave,
# and its summary is printed once both are done.
autobahn_bin="$(sed -n 's|.*Executable tests/conformance_autobahn.rs (\(.*\))$|\1|p' "$build_log")"
rm -f "$build_log"
if [ ! -x "$autobahn_bin" ]; then
    echo "cargo test --no-run named no conformance_autobahn binary" >&2
    exit 1
fi
autobahn_log="$(mktemp "${TMPDIR:-/tmp}/sluice-autobahn.XXXXXX")"
(cd runtime && exec nice -n 19 "$autobahn_bin") >"$autobahn_log" 2>&1 &
autobahn_pid=$!
# --no-fail-fast: one failing test binary must not hide the results of the rest.
tests_status=0
cargo test --workspace --locked --no-fail-fast -- --skip autobahn_suite_ || tests_status=$?
autobahn_status=0
wait "$autobahn_pid" || autobahn_status=$?
printf '\n==> the Autobahn suite (runtime/tests/conformance_autobahn.rs)\n'
cat "$autobahn_log"
rm -f "$autobahn_log"
if [ "$tests_status" -ne 0 ] || [ "$autobahn_status" -ne 0 ]; then
    echo "cargo test failed (tests: exit $tests_status, Autobahn: exit $autobahn_status)" >&2
    exit 1
fi
