#!/usr/bin/env bash
# Makes sure the C libraries the build links are present: OpenSSL's headers
# (librdkafka's TLS and SASL/SCRAM use the system OpenSSL) and pkg-config,
# which finds them. Debian's `libssl-dev` and `pkg-config`; installed with
# apt-get only when missing, so a second run does nothing.
#
# Usage: bash scripts/install-build-deps.sh
set -euo pipefail
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

packages=(libssl-dev pkg-config)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    printf 'build dependencies present: %s\n' "${packages[*]}" >&2
    exit 0
fi
printf 'installing %s with apt-get...\n' "${missing[*]}" >&2
apt_install "${missing[@]}" || {
    printf 'install-build-deps.sh: could not install %s; install them by hand (apt-get install %s)\n' \
        "${missing[*]}" "${missing[*]}" >&2
    exit 1
}
