#!/usr/bin/env bash
# Builds the example plugins written in other languages (examples/plugins/)
# into WebAssembly components of world `router` (wit/, sluice:plugin@0.1.0):
#
#   OUT_DIR/python-router.wasm   examples/plugins/python-router/app.py (componentize-py)
#   OUT_DIR/js-router.wasm       examples/plugins/js-router/router.js  (jco componentize)
#
# The tools come from scripts/install-plugin-toolchains.sh: SLUICE_COMPONENTIZE_PY
# and SLUICE_JCO, or its default install paths under
# ${SLUICE_CI_CACHE:-~/.cache/sluice-ci}. A component is rebuilt only when its
# source, the WIT or the tool's version changed (OUT_DIR/NAME.inputs holds a
# digest of them).
#
# Usage: bash scripts/build-example-plugins.sh OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

[[ $# -eq 1 ]] || die "usage: bash scripts/build-example-plugins.sh OUT_DIR"
mkdir -p "$1"
out="$(cd "$1" && pwd)"

cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
hint="run \`bash scripts/install-plugin-toolchains.sh\` (scripts/test.sh runs it)"
componentize_py="${SLUICE_COMPONENTIZE_PY:-$cache/venv/bin/componentize-py}"
jco="${SLUICE_JCO:-$cache/node/node_modules/.bin/jco}"
[[ -x "$componentize_py" ]] || die "componentize-py not found at $componentize_py: $hint"
[[ -x "$jco" ]] || die "jco not found at $jco: $hint"

# `stale NAME VERSION FILE...`: true (and sets $digest, $tmp) when
# OUT_DIR/NAME.wasm must be built: its digest of the tool's version, the files
# and the WIT differs from the one recorded at its last build.
stale() {
    local name="$1" version="$2"
    shift 2
    digest="$({
        printf '%s\n' "$version"
        sha256sum "$@" wit/*.wit | sed "s#  $root/#  #"
    } | sha256sum | cut -d' ' -f1)"
    if [[ -f "$out/$name.wasm" && "$(cat "$out/$name.inputs" 2>/dev/null)" == "$digest" ]]; then
        log "$name: up to date ($out/$name.wasm)"
        return 1
    fi
    log "$name: building with $version"
    started=$SECONDS
    # Written under a temporary name and renamed once complete: tests may
    # build concurrently.
    tmp="$out/.$name.$$.wasm"
    trap 'rm -f "$tmp"' EXIT
}

# `finish NAME`: moves the built component into place and records its digest.
finish() {
    local name="$1"
    [[ -s "$tmp" ]] || die "$name: the build wrote no component"
    mv -f "$tmp" "$out/$name.wasm"
    printf '%s\n' "$digest" >"$out/$name.inputs"
    trap - EXIT
    log "$name: $(stat -c %s "$out/$name.wasm") bytes in $((SECONDS - started)) s -> $out/$name.wasm"
}

python_dir="$root/examples/plugins/python-router"
if stale python-router "$("$componentize_py" --version)" "$python_dir/app.py"; then
    # From a copy: componentize-py leaves __pycache__/ next to the sources.
    src="$(mktemp -d)"
    cp "$python_dir/app.py" "$src/"
    "$componentize_py" --quiet --wit-path wit --world router componentize \
        --python-path "$src" app --output "$tmp" >&2 \
        || { rm -rf "$src"; die "python-router: componentize-py failed"; }
    rm -rf "$src"
    finish python-router
fi

js_dir="$root/examples/plugins/js-router"
if stale js-router "jco $("$jco" --version)" "$js_dir/router.js" "$js_dir/package-lock.json"; then
    # `--disable http fetch-event`: the host grants no wasi:http, so the
    # component must not import it (clocks, random and stdio stay; a plugin's
    # stdout and stderr go to the host's log).
    "$jco" componentize "$js_dir/router.js" --wit wit --world-name router \
        --disable http fetch-event --out "$tmp" >&2 \
        || die "js-router: jco componentize failed"
    finish js-router
fi
