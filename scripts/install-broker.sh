#!/usr/bin/env bash
# Makes the Kafka-protocol broker that the end-to-end tests start available
# at a stable path outside the clone, and prints that path.
#
# The broker is tansu, compiled from its crates.io package with the
# `libsql` feature so it can keep its data in a SQLite file: one process, no
# other service. It is built at opt-level 1 with many codegen units: the
# tests need a correct broker, not its last 10% of speed, and this halves
# the build (about 15 minutes on 2 cores, 25-30 at the release defaults).
# The binary is cached in
# "${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}/bin" and the script does nothing
# when the pinned version is already there.
#
# Usage: bash scripts/install-broker.sh   # prints /path/to/tansu on stdout
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
version="0.6.0"
features="libsql"
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
bin="$cache/bin/tansu"
stamp="$cache/bin/.tansu-version"
opt_level=1
codegen_units=64
want="tansu $version features=$features opt-level=$opt_level codegen-units=$codegen_units"

log() { printf '%s\n' "$*" >&2; }

if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "tansu $version already installed at $bin"
    printf '%s\n' "$bin"
    exit 0
fi

mkdir -p "$cache/bin"
# A private target dir (not the project's CARGO_TARGET_DIR, which .ci/run
# sets); run from the clone so rust-toolchain.toml picks the compiler.
build_dir="$(mktemp -d "${TMPDIR:-/tmp}/tansu-build.XXXXXX")"
trap 'rm -rf "$build_dir"' EXIT

log "building tansu $version (--features $features) from crates.io; this takes a while..."
start=$SECONDS
(
    cd "$repo"
    unset CARGO_TARGET_DIR
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=$opt_level
    export CARGO_PROFILE_RELEASE_CODEGEN_UNITS=$codegen_units
    export CARGO_PROFILE_RELEASE_DEBUG=false
    cargo install tansu --version "=$version" --locked \
        --no-default-features --features "$features" \
        --root "$build_dir/root" --target-dir "$build_dir/target" >&2
)
# Move into place atomically so an interrupted build never leaves a broken binary.
install -m 0755 "$build_dir/root/bin/tansu" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
printf '%s\n' "$want" >"$stamp"
log "tansu $version installed at $bin in $((SECONDS - start)) s"
printf '%s\n' "$bin"
