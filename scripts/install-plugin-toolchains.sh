#!/usr/bin/env bash
# Installs the toolchains that build the example plugins in other languages
# (examples/plugins/), outside the clone, and prints where they are:
#
# - componentize-py (Python -> component), pinned in
#   examples/plugins/python-router/requirements.txt, into the test venv
#   "${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}/venv" (made by
#   scripts/install-test-clients.sh, which this script runs first);
# - jco and componentize-js (JavaScript -> component), pinned by
#   examples/plugins/js-router/package.json and its package-lock.json, with
#   npm into "${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}/node". Needs
#   node >= 20.19 and npm. (`npm install` on the lockfile rather than `npm ci`:
#   the registry serves only some platforms' optional native packages, so the
#   lockfile lacks the others and `npm ci` would refuse it; `npm install`
#   still installs exactly the locked versions.) package.json's `overrides`
#   make jco use the pinned componentize-js (0.23.0; jco 1.35.0 asks for
#   ^0.22, whose components route 3-4x slower here) and preview2-shim 0.26.0
#   (0.26.1 dropped the default filesystem preopen jco's own tools rely on).
#
# Each half does nothing when what it would install is already there (a
# stamp holds the requirements file, or package.json + lockfile, it
# installed): ~0.4 s in all.
#
# Usage: bash scripts/install-plugin-toolchains.sh
# Prints shell assignments for scripts/test.sh to eval:
#   SLUICE_COMPONENTIZE_PY=/path/to/venv/bin/componentize-py
#   SLUICE_JCO=/path/to/node/node_modules/.bin/jco
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
log() { printf '%s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# --- Python: componentize-py in the test venv --------------------------------
requirements="examples/plugins/python-router/requirements.txt"
python="$(bash scripts/install-test-clients.sh)"
venv="$(dirname "$(dirname "$python")")"
componentize_py="$venv/bin/componentize-py"
py_stamp="$venv/.sluice-plugin-requirements"
if [[ -x "$componentize_py" && -f "$py_stamp" ]] && cmp -s "$requirements" "$py_stamp" \
    && "$componentize_py" --version >/dev/null 2>&1; then
    log "componentize-py already installed in $venv"
else
    log "installing $(grep -v '^#' "$requirements" | tr '\n' ' ')into $venv"
    "$python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
        -r "$requirements" >&2
    "$componentize_py" --version >/dev/null || die "$componentize_py does not run"
    cp "$requirements" "$py_stamp"
fi
log "$("$componentize_py" --version)"

# --- JavaScript: jco + componentize-js with npm ------------------------------
command -v node >/dev/null || die "node is not installed (need >= 20.19, with npm)"
command -v npm >/dev/null || die "npm is not installed (need it with node >= 20.19)"
node_version="$(node --version)"
IFS=. read -r major minor _ <<<"${node_version#v}"
if ((major < 20 || (major == 20 && minor < 19))); then
    die "node $node_version is too old for jco (need >= 20.19)"
fi

package="examples/plugins/js-router"
node_dir="$cache/node"
jco="$node_dir/node_modules/.bin/jco"
js_stamp="$node_dir/.sluice-pins"
pins() { cat "$package/package.json" "$package/package-lock.json"; }
if [[ -x "$jco" && -f "$js_stamp" ]] && pins | cmp -s - "$js_stamp"; then
    log "jco already installed in $node_dir"
else
    log "installing jco and componentize-js ($package/package-lock.json) into $node_dir"
    rm -rf "$node_dir"
    mkdir -p "$node_dir"
    cp "$package/package.json" "$package/package-lock.json" "$node_dir/"
    npm install --prefix "$node_dir" --no-audit --no-fund --loglevel=error >&2
    [[ -x "$jco" ]] || die "npm ci did not install $jco"
    pins >"$js_stamp"
fi
log "jco $("$jco" --version) (node $node_version)"

printf 'SLUICE_COMPONENTIZE_PY=%q\n' "$componentize_py"
printf 'SLUICE_JCO=%q\n' "$jco"
