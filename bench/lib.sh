# shellcheck shell=bash
# lib.sh — what the bench drivers (compare.sh, durable.sh) share: messages,
# argument checks, root and packages, finding a server, the bench build.
#
# Sourced, not run. The sourcing script has `set -euo pipefail`, its usage
# text in the comment at its top (ending at that line), and ROOT set to the
# source tree. Messages name the script that sourced this file.

BENCH_NAME=${0##*/}

# The comment at the top of the script, from its second line to `set -euo`.
usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
    exit "${1:-0}"
}

die() {
    echo "$BENCH_NAME: $*" >&2
    exit 1
}

say() {
    echo "$*" >&2
}

is_count() {
    [[ $1 =~ ^[1-9][0-9]*$ ]]
}

# 12345 -> 12,345 (other text as it is).
commas() {
    sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"
}

as_root() {
    if [[ $(id -u) == 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# apt_install PKG...: install the Debian packages (apt-get update only if the
# first try fails), or die.
apt_install() {
    say "installing $* ..."
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null ||
        { as_root apt-get update >/dev/null &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; } ||
        die "cannot install $*"
}

pkg_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# find_server GIVEN NAME: GIVEN if set, else NAME from PATH (or the sbin
# dirs, outside a user's PATH). Prints the path; 1 if there is none.
find_server() {
    local given=$1 name=$2 d

    if [[ -n $given ]]; then
        echo "$given"
        return 0
    fi
    command -v "$name" 2>/dev/null && return 0
    for d in /usr/sbin /usr/local/sbin /sbin; do
        [[ -x $d/$name ]] && { echo "$d/$name"; return 0; }
    done
    return 1
}

# bench_configure DIR: a RelWithDebInfo tree of ROOT in DIR, without the
# tests. Dies with the end of cmake's output if that fails.
bench_configure() {
    local blog

    blog=$(mktemp)
    if ! cmake -S "$ROOT" -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORQ_TESTS=OFF \
        >"$blog" 2>&1; then
        tail -30 "$blog" >&2
        rm -f "$blog"
        die "cmake failed (scripts/deps.sh installs the dependencies)"
    fi
    rm -f "$blog"
}

# bench_make DIR TARGET...: build the targets in a configured DIR, or die.
bench_make() {
    local dir=$1 blog

    shift
    blog=$(mktemp)
    if ! cmake --build "$dir" -j2 --target "$@" >"$blog" 2>&1; then
        tail -30 "$blog" >&2
        rm -f "$blog"
        die "build failed"
    fi
    rm -f "$blog"
}

# need_tools PATH...: die unless every one is an executable file.
need_tools() {
    local f

    for f in "$@"; do
        [[ -x $f ]] || die "$f is missing (run without --no-build)"
    done
}
