#!/usr/bin/env bash
# Makes the Python interpreter that runs the independent test clients
# (tests/clients/*.py) available, with the packages pinned in
# tests/requirements.txt, and prints its path.
#
# The venv lives outside the clone, in
# "${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}/venv"; the script does nothing
# when the venv already holds exactly tests/requirements.txt.
#
# Usage: bash scripts/install-test-clients.sh   # prints /path/to/venv/bin/python
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
venv="$cache/venv"
python="$venv/bin/python"
requirements="tests/requirements.txt"
stamp="$venv/.sluice-requirements"

log() { printf '%s\n' "$*" >&2; }

if [[ -x "$python" && -f "$stamp" ]] && cmp -s "$requirements" "$stamp" \
    && "$python" -c 'import websockets, confluent_kafka' 2>/dev/null; then
    log "test clients already installed in $venv"
    printf '%s\n' "$python"
    exit 0
fi

base_python="${SLUICE_BASE_PYTHON:-$(command -v python3)}"
log "creating $venv with $("$base_python" --version 2>&1)"
rm -rf "$venv"
mkdir -p "$cache"
"$base_python" -m venv "$venv"
"$python" -m pip install --quiet --disable-pip-version-check --require-virtualenv \
    -r "$requirements" >&2
cp "$requirements" "$stamp"
log "test clients installed in $venv"
printf '%s\n' "$python"
