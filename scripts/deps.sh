#!/bin/sh
# Install the Debian packages forq needs to build, run and test, if any are
# missing. Safe to run again: it does nothing when everything is present.
# Needs root (or sudo) only when something has to be installed.
set -eu

# systemd: systemd-analyze, for the install/systemd-verify test (a fresh
# Debian image has libsystemd0 but not systemd).
PKGS="gcc make cmake pkg-config
      libevent-dev libmsgpack-dev libsqlite3-dev libcmocka-dev
      libinih-dev libsystemd-dev systemd"

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
