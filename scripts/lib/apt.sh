# Installs Debian packages with apt-get, as root or through password-less
# sudo, logging apt's output to a temporary file that is shown on failure.
# Sourced by the install scripts; `apt_install PACKAGE...` returns non-zero
# (after printing apt's last lines) when it cannot install.

apt_install() {
    local as_root=()
    if ! command -v apt-get >/dev/null 2>&1; then
        printf 'apt-get is not available (the project expects a Debian machine)\n' >&2
        return 1
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            as_root=(sudo -n)
        else
            printf 'installing %s needs root (or password-less sudo)\n' "$*" >&2
            return 1
        fi
    fi
    local apt_log
    apt_log="$(mktemp "${TMPDIR:-/tmp}/apt-install.XXXXXX")"
    run_apt() {
        "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get -y -q -o DPkg::Lock::Timeout=600 "$@" >>"$apt_log" 2>&1
    }
    if ! { run_apt update && run_apt install --no-install-recommends "$@"; }; then
        tail -n 40 "$apt_log" >&2 || true
        rm -f "$apt_log"
        return 1
    fi
    rm -f "$apt_log"
}
