#!/bin/sh
# install/systemd-verify: systemd-analyze verify finds nothing to say about
# forqd.service and forqd.socket, and systemd-sysusers and systemd-tmpfiles
# accept their snippets.
#   systemd_verify.sh FORQD SOURCE_DIR WORK_DIR
# FORQD is the forqd built in this tree: the service is configured with it as
# ExecStart (verify checks that the program exists), the way
# cmake/install.cmake configures it with the installed one.
#
# systemd-analyze verify exits 0 after many complaints (an unknown key, a
# value it cannot parse: "ignoring"), so any line it prints about our units
# fails the test too. The script first proves that on two broken copies.
set -eu

if [ $# -ne 3 ]; then
    echo "usage: $0 FORQD SOURCE_DIR WORK_DIR" >&2
    exit 2
fi
forqd=$1
src=$2
work=$3

fail() {
    echo "systemd-verify: $*" >&2
    exit 1
}

command -v systemd-analyze >/dev/null 2>&1 ||
    fail "systemd-analyze not found: install the Debian package systemd (./scripts/deps.sh does)"
[ -x "$forqd" ] || fail "$forqd: not built"

rm -rf "$work"
mkdir -p "$work/man/man1" "$work/man/man8"

# Documentation=man:forqd(8) is checked with man(1) when it is installed,
# against the pages of this tree; without man-db only that check is skipped.
cp "$src/man/forqd.8" "$work/man/man8/"
cp "$src/man/forq.1" "$work/man/man1/"
man_opt=--man=no
if command -v man >/dev/null 2>&1; then
    man_opt=--man=yes
else
    echo "systemd-verify: man(1) not installed: Documentation= not checked" >&2
fi

# make_units DIR: the units of this tree in DIR, the service configured.
make_units() {
    mkdir -p "$1"
    sed "s|@FORQ_FULL_SBINDIR@|$(dirname "$forqd")|g" \
        "$src/systemd/forqd.service.in" >"$1/forqd.service"
    cp "$src/systemd/forqd.socket" "$1/forqd.socket"
    if grep -n '@[A-Z_]*@' "$1/forqd.service"; then
        fail "forqd.service.in has a placeholder this script does not set"
    fi
}

# verify DIR: 0 when systemd-analyze has nothing to say about DIR's units;
# else 1, with what it said in DIR/verify.out. Lines about other units (a
# broken unit elsewhere on this machine) are not ours to judge.
verify() {
    status=0
    MANPATH="$work/man" systemd-analyze verify --recursive-errors=no "$man_opt" \
        "$1/forqd.service" "$1/forqd.socket" >"$1/verify.out" 2>&1 || status=$?
    if [ "$status" -ne 0 ] || grep -q 'forq' "$1/verify.out"; then
        return 1
    fi
    return 0
}

# Self-check: a complaint that does not change the exit status (an unknown
# key) and one that does (a missing program) must both fail.
make_units "$work/typo"
sed -i 's/^KillMode=/KilMode=/' "$work/typo/forqd.service"
if verify "$work/typo"; then
    fail "a unit with an unknown key passed; the check is broken"
fi
make_units "$work/noexec"
sed -i 's|^ExecStart=.*|ExecStart=/nonexistent/forqd|' "$work/noexec/forqd.service"
if verify "$work/noexec"; then
    fail "a unit whose ExecStart does not exist passed; the check is broken"
fi

make_units "$work/units"
if ! verify "$work/units"; then
    cat "$work/units/verify.out" >&2
    fail "systemd-analyze verify complained about the units (above)"
fi

# The sysusers.d and tmpfiles.d snippets, applied to an empty root: a line
# either tool cannot use is reported as FILE:LINE (and sysusers fails,
# tmpfiles exits 65). Not being root, tmpfiles creates /etc/forq but cannot
# give it to root (exit 73): not the snippet's fault.
root=$work/root
mkdir -p "$root/etc"
status=0
systemd-sysusers --root="$root" --dry-run "$src/systemd/forq.sysusers" \
    >"$work/sysusers.out" 2>&1 || status=$?
if [ "$status" -ne 0 ] || grep -q 'forq\.sysusers:[0-9]' "$work/sysusers.out"; then
    cat "$work/sysusers.out" >&2
    fail "systemd-sysusers refused forq.sysusers (above)"
fi
status=0
systemd-tmpfiles --root="$root" --create "$src/systemd/forq.tmpfiles" \
    >"$work/tmpfiles.out" 2>&1 || status=$?
if { [ "$status" -ne 0 ] && [ "$status" -ne 73 ]; } ||
    grep -q 'forq\.tmpfiles:[0-9]' "$work/tmpfiles.out" || [ ! -d "$root/etc/forq" ]; then
    cat "$work/tmpfiles.out" >&2
    fail "systemd-tmpfiles refused forq.tmpfiles, or did not create /etc/forq (above)"
fi
echo "systemd-verify: forqd.service, forqd.socket, forq.sysusers and forq.tmpfiles are clean"
