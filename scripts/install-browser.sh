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
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

bin="/usr/bin/chromium"
package="chromium"

log() { printf '%s\n' "$*" >&2; }
fail() {
    log "install-browser.sh: $*"
    log "install Debian's \`$package\` package by hand (apt-get install $package), then run the tests again."
    exit 1
}

if [[ ! -x "$bin" ]]; then
    log "installing $package with apt-get (this takes a minute or two)..."
    start=$SECONDS
    apt_install "$package" || fail "apt-get could not install $package (output above)."
    [[ -x "$bin" ]] || fail "apt-get installed $package but $bin is still missing."
    log "$package installed in $((SECONDS - start)) s"
fi

version="$("$bin" --version 2>/dev/null)" \
    || fail "$bin is installed but \`$bin --version\` fails; reinstall $package."
log "$version at $bin"
printf '%s\n' "$bin"
