#!/usr/bin/env bash
# Makes the Autobahn TestSuite's `wstest` (the reference WebSocket protocol
# fuzzer) available outside the clone, and prints the path of a wrapper that
# runs it.
#
# wstest is a Python 2.7 program and bookworm has no Python 2, so the script
# takes Debian bullseye's python2.7 packages (plus the libssl1.1 and libffi7
# that its extension modules link) from Debian's archive through a private
# apt configuration (the system's sources and package state are not touched),
# unpacks them with `dpkg -x`, makes a Python 2.7 venv with virtualenv
# 20.21.1 (the last release that creates 2.7 environments), and installs
# autobahntestsuite there with every dependency pinned. Nothing is installed
# system-wide: all of it lives in
# "${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}/autobahn", and the script does
# nothing when the stamp there matches this recipe.
#
# Usage: bash scripts/install-autobahn.sh   # prints /path/to/wstest on stdout
set -euo pipefail

version="25.10.1"
virtualenv_version="20.21.1"
suite="bullseye"
packages=(python2.7 python2.7-minimal libpython2.7-minimal libpython2.7-stdlib
    libpython2.7 libpython2.7-dev python2.7-dev libssl1.1 libffi7)
# autobahntestsuite pins its direct dependencies; these are the rest, as pip
# resolved them on 2.7 when this was written. Pinned so that a later release
# which forgets python_requires cannot break the install.
pins=(Automat==22.10.0 PyHamcrest==1.10.1 attrs==21.4.0 cffi==1.15.1
    constantly==15.1.0 enum34==1.1.10 hyperlink==21.0.0 idna==2.10
    ipaddress==1.0.23 linecache2==1.0.0 pyasn1==0.5.1 pyasn1-modules==0.3.0
    pycparser==2.21 traceback2==1.4.0 typing==3.10.0.0 ujson==2.0.3
    wsaccel==0.6.6)
cache="${SLUICE_CI_CACHE:-$HOME/.cache/sluice-ci}"
dir="$cache/autobahn"
root="$dir/root"
venv="$dir/venv"
wrapper="$dir/bin/wstest"
stamp="$dir/.installed"
want="autobahntestsuite==$version virtualenv==$virtualenv_version $suite: ${packages[*]} pins: ${pins[*]}"

log() { printf '%s\n' "$*" >&2; }

installed() {
    [[ -x "$wrapper" && -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]
}

if installed; then
    log "wstest $version already installed at $wrapper"
    printf '%s\n' "$wrapper"
    exit 0
fi

mkdir -p "$cache"
# Two runs at once (say a test script and a developer) would build into the
# same folder; the second waits, then finds the first one's install.
exec 9>"$cache/.autobahn.lock"
flock 9
if installed; then
    log "wstest $version already installed at $wrapper"
    printf '%s\n' "$wrapper"
    exit 0
fi

command -v gcc >/dev/null 2>&1 || { log "install-autobahn.sh: needs gcc (wsaccel is a C extension)"; exit 1; }
base_python="${SLUICE_BASE_PYTHON:-$(command -v python3)}"
multiarch="$(gcc -print-multiarch)"

# The venvs hold absolute paths, so they are built in place rather than
# moved; the stamp is written last, and anything left without it by an
# interrupted run is wiped here. The apt state, the .debs and the Python 3
# venv that runs virtualenv are only needed while building: they go in a
# temporary folder.
rm -rf "$dir"
mkdir -p "$dir/bin"
work="$(mktemp -d "${TMPDIR:-/tmp}/autobahn-build.XXXXXX")"
build_log="$work/build.log"
trap 'rm -rf "$work"' EXIT
# Turn a Ctrl-C or kill into an exit, so the EXIT trap still cleans up.
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs a step with its output in the log, shown only when the step fails.
run() {
    if ! "$@" >>"$build_log" 2>&1; then
        log "install-autobahn.sh: failed: $*"
        tail -n 40 "$build_log" >&2 || true
        exit 1
    fi
}

log "installing wstest (autobahntestsuite $version on Debian $suite's Python 2.7) in $dir..."
start=$SECONDS

# A private apt: its own sources (bullseye, from the same Debian archive the
# system uses), lists, cache and an empty package status. APT_CONFIG is read
# before anything else, and it points Dir::Etc::main and ::parts away from
# /etc/apt so none of the system's settings or update hooks run.
apt="$work/apt"
mkdir -p "$apt/parts" "$apt/sources.d" "$apt/preferences.d" "$apt/lists/partial" \
    "$apt/cache/archives/partial" "$apt/state" "$work/debs"
: >"$apt/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt/sources.list" <<EOF
deb [signed-by=$keyring] http://deb.debian.org/debian $suite main
deb [signed-by=$keyring] http://deb.debian.org/debian-security $suite-security main
EOF
cat >"$apt/apt.conf" <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::parts "$apt/parts";
Dir::Etc::sourcelist "$apt/sources.list";
Dir::Etc::sourceparts "$apt/sources.d";
Dir::Etc::preferences "/dev/null";
Dir::Etc::preferencesparts "$apt/preferences.d";
Dir::State "$apt/state";
Dir::State::lists "$apt/lists";
Dir::State::status "$apt/status";
Dir::Cache "$apt/cache";
Acquire::Languages "none";
Acquire::Retries "3";
// As the system's apt is set up here: the archive may serve a snapshot whose
// Release file is past its Valid-Until date.
Acquire::Check-Valid-Until "false";
// Downloads go to folders the user owns; as root, apt would otherwise drop
// to _apt, which cannot write there.
APT::Sandbox::User "$(id -un)";
EOF
export APT_CONFIG="$apt/apt.conf"
run apt-get -q update
(cd "$work/debs" && run apt-get -q download "${packages[@]}")
unset APT_CONFIG
for deb in "$work/debs"/*.deb; do
    run dpkg -x "$deb" "$root"
done
# A dangling link to /etc/python2.7 (Debian's apport hook): not wanted here.
rm -f "$root/usr/lib/python2.7/sitecustomize.py"

lib="$root/usr/lib/$multiarch"
# The interpreter finds its prefix ($root/usr) from its own path; its
# extension modules (_ssl, _ctypes) need the unpacked libssl1.1 and libffi7.
export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
unset PYTHONHOME PYTHONPATH
python2="$root/usr/bin/python2.7"
run "$python2" -c 'import ssl, ctypes, zlib'

run "$base_python" -m venv "$work/venv3"
run "$work/venv3/bin/python" -m pip install --quiet --disable-pip-version-check \
    "virtualenv==$virtualenv_version"
# virtualenv seeds the 2.7 venv with the pip, setuptools and wheel it bundles;
# its app-data cache stays in the temporary folder.
run "$work/venv3/bin/python" -m virtualenv --no-periodic-update \
    --app-data "$work/virtualenv-data" -p "$python2" "$venv"

printf '%s\n' "${pins[@]}" >"$work/constraints.txt"
# wsaccel's C compile needs the unpacked headers: pyconfig.h includes
# <$multiarch/python2.7/pyconfig.h>, hence $root/usr/include too.
export CFLAGS="-I$root/usr/include -I$root/usr/include/python2.7 -I$root/usr/include/$multiarch/python2.7"
export LDFLAGS="-L$lib"
run env PIP_NO_PYTHON_VERSION_WARNING=1 "$venv/bin/python" -m pip install \
    --disable-pip-version-check --no-cache-dir --no-warn-script-location \
    --constraint "$work/constraints.txt" "autobahntestsuite==$version"
run "$venv/bin/python" -c 'import autobahntestsuite.wstest, wsaccel.utf8validator'

# The wrapper runs the entry script through the venv's python (no long
# shebang) with the libraries found and cryptography's warning about
# Python 2 silenced.
cat >"$wrapper.tmp" <<EOF
#!/bin/sh
# Written by scripts/install-autobahn.sh: runs wstest $version.
LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
PYTHONWARNINGS="ignore:Python 2 is no longer supported"
export LD_LIBRARY_PATH PYTHONWARNINGS
unset PYTHONHOME PYTHONPATH
exec "$venv/bin/python" "$venv/bin/wstest" "\$@"
EOF
chmod 0755 "$wrapper.tmp"
mv -f "$wrapper.tmp" "$wrapper"
run "$wrapper" --autobahnversion
printf '%s\n' "$want" >"$stamp"
log "wstest $version installed at $wrapper in $((SECONDS - start)) s"
printf '%s\n' "$wrapper"
