#!/bin/sh
# run.sh - build tern's libFuzzer targets with clang (ASan + UBSan) and run
# each one for SECONDS seconds (default 30) from its seed corpus.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Seeds are read from fuzz/corpus/NAME/ (never written); new corpus entries go
# to BUILD/corpus/NAME/.  Crashes, leaks and timeouts are saved as
# fuzz/crashes/NAME-crash-<sha1> (do not commit them).  FUZZ_BUILD overrides
# the build directory (default: build-fuzz in the source tree); FUZZ_FLAGS adds
# libFuzzer flags (e.g. "-fork=1 -ignore_crashes=1" to keep going after a
# crash).  Exit status 1 when any target failed.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
[ $# -gt 0 ] && shift
build=${FUZZ_BUILD:-$root/build-fuzz}
crashes=$root/fuzz/crashes

case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$root" -Dfuzz=true \
        -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C "$build"

targets=$*
if [ -z "$targets" ]; then
    for exe in "$build"/fuzz/fuzz_*; do
        [ -x "$exe" ] && [ -f "$exe" ] && targets="$targets $(basename "$exe")"
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$crashes"
failed=""
for t in $targets; do
    exe=$build/fuzz/$t
    if [ ! -x "$exe" ]; then
        echo "run.sh: no target $t in $build/fuzz" >&2
        failed="$failed $t"
        continue
    fi
    work=$build/corpus/$t
    mkdir -p "$work"
    seeds=$root/fuzz/corpus/$t
    [ -d "$seeds" ] || seeds=""
    echo "=== $t: $seconds s"
    before=$(ls "$crashes" | grep -c "^$t-" || true)
    if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 ${FUZZ_FLAGS:-} \
        -artifact_prefix="$crashes/$t-" "$work" $seeds >"$build/$t.log" 2>&1 &&
        [ "$(ls "$crashes" | grep -c "^$t-" || true)" = "$before" ]; then
        echo "    ok: $(grep -E 'stat::number_of_executed_units' "$build/$t.log" | tail -1)"
    else
        echo "    FAILED: see $build/$t.log and $crashes/$t-*"
        grep -E 'ERROR|SUMMARY|runtime error' "$build/$t.log" | head -5 | sed 's/^/    /'
        failed="$failed $t"
    fi
done

if [ -n "$failed" ]; then
    echo "failed:$failed"
    exit 1
fi
echo "all targets ran $seconds s without a crash"
