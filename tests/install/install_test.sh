#!/bin/sh
# install/prefix: `cmake --install` into a temporary prefix puts every file
# where it belongs, and the installed libforq is usable on its own: a client
# is built against it three ways (pkg-config, pkg-config --static, CMake's
# find_package) and each build talks to the installed forqd.
#
# Run by ctest, which sets (tests/install/CMakeLists.txt):
#   FORQ_BUILD_DIR, FORQ_TEST_SRC (this directory), FORQ_CMAKE, CC,
#   FORQ_VERSION, FORQ_SANITIZE_FLAGS (the build's -fsanitize=..., if any),
#   and the install directories, relative to the prefix: FORQ_SBINDIR,
#   FORQ_BINDIR, FORQ_LIBDIR, FORQ_INCLUDEDIR, FORQ_MANDIR, FORQ_DOCDIR,
#   FORQ_SYSTEMD_UNITDIR, FORQ_SYSUSERSDIR, FORQ_TMPFILESDIR.
# FORQ_TEST_KEEP=1 keeps the temporary directory.
set -eu

fail() {
    echo "install/prefix: $*" >&2
    exit 1
}

for v in FORQ_BUILD_DIR FORQ_TEST_SRC FORQ_CMAKE CC FORQ_VERSION; do
    eval "val=\${$v:-}"
    [ -n "$val" ] || fail "$v is not set; run this test through ctest"
done
for v in FORQ_SBINDIR FORQ_BINDIR FORQ_LIBDIR FORQ_INCLUDEDIR FORQ_MANDIR FORQ_DOCDIR \
    FORQ_SYSTEMD_UNITDIR FORQ_SYSUSERSDIR FORQ_TMPFILESDIR; do
    eval "val=\${$v:-}"
    case $val in
    "") fail "$v is not set; run this test through ctest" ;;
    /*) fail "$v is absolute ($val): installing into a temporary prefix would write outside it" ;;
    esac
done
san=${FORQ_SANITIZE_FLAGS:-}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/forq-install.XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    if [ -n "${FORQ_TEST_KEEP:-}" ]; then
        echo "install/prefix: kept $tmp" >&2
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# run LOG CMD...: CMD's output goes to LOG, shown only when CMD fails.
run() {
    log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        fail "failed: $*"
    fi
}

# ---------------------------------------------------------------- install
p=$tmp/prefix
lib=$p/$FORQ_LIBDIR
run "$tmp/install.log" "$FORQ_CMAKE" --install "$FORQ_BUILD_DIR" --prefix "$p"

for f in "$FORQ_SBINDIR/forqd" "$FORQ_BINDIR/forq"; do
    [ -x "$p/$f" ] || fail "not installed (or not executable): $f"
done
for f in "$FORQ_LIBDIR/libforq.a" \
    "$FORQ_INCLUDEDIR/forq.h" "$FORQ_INCLUDEDIR/forq_task.h" \
    "$FORQ_LIBDIR/pkgconfig/forq.pc" \
    "$FORQ_LIBDIR/cmake/forq/forqConfig.cmake" \
    "$FORQ_LIBDIR/cmake/forq/forqConfigVersion.cmake" \
    "$FORQ_LIBDIR/cmake/forq/forqTargets.cmake" \
    "$FORQ_SYSTEMD_UNITDIR/forqd.service" "$FORQ_SYSTEMD_UNITDIR/forqd.socket" \
    "$FORQ_SYSUSERSDIR/forq.conf" "$FORQ_TMPFILESDIR/forq.conf" \
    "$FORQ_MANDIR/man8/forqd.8" "$FORQ_MANDIR/man1/forq.1" \
    "$FORQ_DOCDIR/examples/forqd.conf"; do
    [ -f "$p/$f" ] || fail "not installed: $f"
done

# libforq.so -> libforq.so.0 -> libforq.so.VERSION, whose SONAME is libforq.so.0.
[ "$(readlink "$lib/libforq.so")" = libforq.so.0 ] ||
    fail "libforq.so is not a symlink to libforq.so.0"
[ "$(readlink "$lib/libforq.so.0")" = "libforq.so.$FORQ_VERSION" ] ||
    fail "libforq.so.0 is not a symlink to libforq.so.$FORQ_VERSION"
if [ ! -f "$lib/libforq.so.$FORQ_VERSION" ] || [ -L "$lib/libforq.so.$FORQ_VERSION" ]; then
    fail "libforq.so.$FORQ_VERSION is not a file"
fi
readelf -d "$lib/libforq.so.$FORQ_VERSION" | grep -q 'Library soname: \[libforq\.so\.0\]' ||
    fail "the SONAME of libforq.so.$FORQ_VERSION is not libforq.so.0"
# Only the public API is exported (FORQ_API; the rest is hidden).
extra=$(nm -D --defined-only "$lib/libforq.so.0" | awk '!/ forq_/ { printf " %s", $NF }')
[ -z "$extra" ] || fail "libforq.so exports more than forq_*:$extra"

# Both files are configured at install time, with the prefix given then.
grep -qx "ExecStart=$p/$FORQ_SBINDIR/forqd" "$p/$FORQ_SYSTEMD_UNITDIR/forqd.service" ||
    fail "forqd.service: ExecStart is not $p/$FORQ_SBINDIR/forqd"
grep -qx "prefix=$p" "$lib/pkgconfig/forq.pc" || fail "forq.pc: prefix is not $p"

# ---------------------------------------------------------------- clients
src=$FORQ_TEST_SRC
# links_libforq BIN: BIN loads libforq.so.0 (else it has libforq.a inside).
links_libforq() {
    readelf -d "$tmp/$1" | grep -q 'NEEDED.*\[libforq\.so\.0\]'
}
# PKG_CONFIG_PATH comes first; msgpack.pc (for --static) is found in the
# system's directories as usual.
PKG_CONFIG_PATH=$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
export PKG_CONFIG_PATH
# forq.h must build cleanly in a strict C99 program.
cflags="-std=c99 -pedantic -Wall -Wextra -Werror $san"

# shellcheck disable=SC2046,SC2086 # word splitting of flags is intended
run "$tmp/cc-dynamic.log" "$CC" $cflags -o "$tmp/client-pc" "$src/client.c" \
    $(pkg-config --cflags --libs forq)
links_libforq client-pc || fail "client-pc is not linked with libforq.so.0"

# The same flags with --static, but libforq.a taken by name: -lforq would
# pick the shared library that sits next to it.
static_libs=$(pkg-config --static --libs forq | sed 's/-lforq\( \|$\)/-l:libforq.a\1/')
# shellcheck disable=SC2046,SC2086
run "$tmp/cc-static.log" "$CC" $cflags -o "$tmp/client-static" "$src/client.c" \
    $(pkg-config --cflags forq) $static_libs
! links_libforq client-static || fail "client-static is linked with libforq.so.0"

run "$tmp/cmake-configure.log" "$FORQ_CMAKE" -S "$src/cmake-client" -B "$tmp/cmake-client" \
    -DCMAKE_PREFIX_PATH="$p" -DFORQ_PREFIX="$p" -DCMAKE_C_COMPILER="$CC" \
    -DCMAKE_C_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="$san"
run "$tmp/cmake-build.log" "$FORQ_CMAKE" --build "$tmp/cmake-client"
links_libforq cmake-client/client-cmake || fail "forq::forq does not link libforq.so.0"
! links_libforq cmake-client/client-cmake-static || fail "forq::forq_static links libforq.so.0"

# ---------------------------------------------------------------- forqd
# Started by hand here, whatever started this test: no systemd settings.
unset LISTEN_FDS LISTEN_PID LISTEN_FDNAMES NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID \
    STATE_DIRECTORY RUNTIME_DIRECTORY
# -c /dev/null: not /etc/forq/forqd.conf, should this machine have one.
"$p/$FORQ_SBINDIR/forqd" -c /dev/null --listen tcp://127.0.0.1:0 --data "$tmp/data" \
    --workers 1 >"$tmp/forqd.log" 2>&1 &
pid=$!
port=""
i=0
while [ $i -lt 100 ]; do
    port=$(sed -n 's|.*listening on tcp://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$tmp/forqd.log" |
        head -n 1)
    [ -z "$port" ] || break
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$tmp/forqd.log" >&2
        fail "the installed forqd exited at start"
    fi
    sleep 0.1
    i=$((i + 1))
done
[ -n "$port" ] || { cat "$tmp/forqd.log" >&2; fail "forqd logged no 'listening on' line in 10 s"; }

for c in client-pc client-static cmake-client/client-cmake cmake-client/client-cmake-static; do
    out=$(LD_LIBRARY_PATH=$lib "$tmp/$c" "tcp://127.0.0.1:$port") ||
        fail "$c exited with status $?"
    [ "$out" = hello ] || fail "$c printed '$out', not 'hello'"
done

# SIGTERM drains (nothing runs) and exits 0. The shell reaps forqd while
# `sleep` runs, and `wait` still gives its status afterwards.
kill -TERM "$pid"
i=0
while kill -0 "$pid" 2>/dev/null; do
    [ $i -lt 200 ] || { cat "$tmp/forqd.log" >&2; fail "forqd still running 20 s after SIGTERM"; }
    sleep 0.1
    i=$((i + 1))
done
status=0
wait "$pid" || status=$?
pid=""
if [ "$status" -ne 0 ]; then
    cat "$tmp/forqd.log" >&2
    fail "forqd exited with status $status after SIGTERM"
fi
echo "install/prefix: installed, 4 client builds answered 'hello', forqd stopped cleanly"
