#!/bin/sh
# bench/run.sh - build tern in release mode, set up Postfix, and run tern and
# Postfix side by side (bench/bench.py); the table goes to stdout and to
# bench/results/latest.md.  Usage: sudo bench/run.sh [--quick] [bench.py options]
# or sudo bench/run.sh --remote [remote.py options] (LDAP tables, issue 14)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
if [ "$(id -u)" -ne 0 ]; then
    echo "bench/run.sh: run as root (private Postfix master, useradd, Maildir delivery)" >&2
    exit 2
fi
script=bench.py
if [ "${1:-}" = "--remote" ]; then
    script=remote.py
    shift
fi
"$here/setup.sh"
# tern's packages and users, and its release build in its own directory
build="$repo/build-release"
"$repo/scripts/setup.sh" build-release -Dbuildtype=release >/dev/null
# bench.py cleans up after itself (try/finally, SIGINT/SIGTERM); this trap
# only forwards a signal to it and waits, bounded
pid=""
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 60 ]; do sleep 1; i=$((i+1)); done; fi; exit 130' INT TERM
TERN_BUILD="$build" timeout --signal=TERM --kill-after=60 3600 /usr/bin/python3 "$here/$script" "$@" &
pid=$!
wait "$pid"
