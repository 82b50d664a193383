#!/bin/sh
# install/man: the man pages format without a single groff warning.
#   man_lint.sh PAGE...
# groff is not a build dependency: without it the test is skipped (exit 77,
# ctest's SKIP_RETURN_CODE), never failed.
set -eu

if ! command -v groff >/dev/null 2>&1; then
    echo "install/man: groff not installed (Debian package groff-base): skipped" >&2
    exit 77
fi
status=0
for page in "$@"; do
    # -ww: every warning; -z: format, print nothing. Warnings go to stderr.
    out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || status=1
    if [ -n "$out" ]; then
        printf '%s:\n%s\n' "$page" "$out" >&2
        status=1
    fi
done
exit $status
