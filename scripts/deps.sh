#!/bin/sh
# Install the Debian packages forq needs to build, run and test, if any are
# missing. Safe to run again: it does nothing when everything is present.
# Needs root (or sudo) only when something has to be installed.
#   ./scripts/deps.sh              what the normal and sanitizer passes need
#   ./scripts/deps.sh --valgrind   that, and valgrind
#   ./scripts/deps.sh --fuzz       that, and clang with libFuzzer
set -eu

# systemd: systemd-analyze, for the install/systemd-verify test (a fresh
# Debian image has libsystemd0 but not systemd).
PKGS="gcc make cmake pkg-config
      libevent-dev libmsgpack-dev libsqlite3-dev libcmocka-dev
      libinih-dev libsystemd-dev systemd"

for mode in "$@"; do
    case "$mode" in
    --valgrind) PKGS="$PKGS valgrind" ;;
    # libclang-rt-dev pulls the compiler-rt of Debian's default clang
    # (libclang-rt-14-dev on Debian 12): libFuzzer and the sanitizer runtimes.
    --fuzz) PKGS="$PKGS clang libclang-rt-dev" ;;
    *)
        echo "usage: $0 [--valgrind] [--fuzz]" >&2
        exit 2
        ;;
    esac
done

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps: need root to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh image may have empty package lists; refresh them once.
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
