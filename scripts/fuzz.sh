#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the targets in fuzz/:
# each runs for a bounded time from its seed corpus (fuzz/corpus/<target>),
# then one line per target says how many inputs ran and what they covered.
# A crash fails the script and leaves its input (and every log) in the work
# directory it names; a clean run removes it.
#
# Usage: bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   default: 10 seconds for each of every target (what the test command runs)
#   e.g.     bash scripts/fuzz.sh 600 frame_reader   (a longer run of one)
#
# cargo-fuzz is installed into ${SLUICE_CI_CACHE:-~/.cache/sluice-ci}. The
# pinned toolchain builds the targets (RUSTC_BOOTSTRAP=1: cargo fuzz needs
# a few nightly flags), without a sanitizer: the fuzzed crates forbid
# unsafe code, so coverage and assertions are what finds bugs here.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-10}"
shift || true
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
version=0.13.2
fuzz_bin="$cache/cargo-fuzz-$version/bin"
if [ ! -x "$fuzz_bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz $version into $fuzz_bin" >&2
    # A debug build: it only drives cargo, and builds in half the time.
    cargo install cargo-fuzz --version "$version" --locked --debug --root "$cache/cargo-fuzz-$version" >&2
fi
export PATH="$fuzz_bin:$PATH"
export RUSTC_BOOTSTRAP=1
# Not the workspace's target directory: other flags would rebuild it.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/sluice-fuzz.XXXXXX")"
cargo fuzz build --fuzz-dir fuzz --sanitizer none --target-dir "$target_dir" >&2

report=()
failed=0
for target in "${targets[@]}"; do
    mkdir -p "$work/$target/corpus" "$work/$target/crashes"
    log="$work/$target/log"
    # The first corpus directory is written to (new inputs); the checked-in
    # seeds are only read.
    if cargo fuzz run --fuzz-dir fuzz --sanitizer none --target-dir "$target_dir" "$target" \
        "$work/$target/corpus" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -artifact_prefix="$work/$target/crashes/" -print_final_stats=1 \
        >"$log" 2>&1; then
        verdict="ok"
    else
        verdict="FAILED (log: $log)"
        failed=1
        grep -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | head -20 >&2 || true
    fi
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
    corpus="$(find "$work/$target/corpus" -type f | wc -l)"
    report+=("$(printf '%-14s %10s runs in %ss  %-18s %5s new inputs  %s' \
        "$target" "${runs:-?}" "$seconds" "${cov:-cov: ?}" "$corpus" "$verdict")")
done

if [ "$failed" -eq 0 ]; then
    printf '\ncargo fuzz, %ss per target, no crash:\n' "$seconds"
    rm -rf "$work"
else
    printf '\ncargo fuzz, %ss per target (inputs, logs and crashes under %s):\n' "$seconds" "$work"
fi
printf '  %s\n' "${report[@]}"
exit "$failed"
