#!/usr/bin/env bash
# Makes the browser that the browser end-to-end tests drive available, and
# prints its path.
#
# The browser is Debian's `chromium` package, run headless by the tests (no
# chromedriver: the test page reports back to the test over HTTP). The
# package is installed with apt-get only when /usr/bin/chromium is missing,
# so a second run does nothing. Installing needs root (or password-less
# sudo); the script fails with a message saying so otherwise.
#
# Usage: bash scripts/install-browser.sh   # prints /usr/bin/chromium on stdout
set -euo pipefail

bin="/usr/bin/chromium"
package="chromium"

log() { printf '%s\n' "$*" >&2; }
fail() {
    log "install-browser.sh: $*"
    log "install Debian's \`$package\` package by hand (apt-get install $package), then run the tests again."
    exit 1
}

if [[ ! -x "$bin" ]]; then
    command -v apt-get >/dev/null 2>&1 \
        || fail "$bin is missing and apt-get is not available (the tests expect Debian's $package)."
    if [[ "$(id -u)" -eq 0 ]]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        fail "$bin is missing and installing it needs root (or password-less sudo)."
    fi

    log "installing $package with apt-get (this takes a minute or two)..."
    start=$SECONDS
    apt_log="$(mktemp "${TMPDIR:-/tmp}/install-browser.XXXXXX")"
    trap 'rm -f "$apt_log"' EXIT
    apt() {
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get -y -q -o DPkg::Lock::Timeout=600 "$@" >>"$apt_log" 2>&1
    }
    if ! { apt update && apt install --no-install-recommends "$package"; }; then
        tail -n 40 "$apt_log" >&2 || true
        fail "apt-get could not install $package (output above)."
    fi
    [[ -x "$bin" ]] || fail "apt-get installed $package but $bin is still missing."
    log "$package installed in $((SECONDS - start)) s"
fi

version="$("$bin" --version 2>/dev/null)" \
    || fail "$bin is installed but \`$bin --version\` fails; reinstall $package."
log "$version at $bin"
printf '%s\n' "$bin"
