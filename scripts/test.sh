#!/bin/sh
# test.sh - install dependencies, build, and run every test:
#   1. cmocka unit tests and pytest integration tests on the normal build;
#   2. the same again on an ASan+UBSan build (any sanitizer report fails);
#   3. once: the Debian package, built, installed in a throwaway root, mail
#      in and out, purged (scripts/pkg-test.sh, docs/packaging.md).
# The last line is "N passed, M failed".
#   scripts/test.sh [--quick]     --quick skips the sanitizer pass
set -u
cd "$(dirname "$0")/.."
TOP=$(pwd)
RESULTS=$TOP/build-results
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

scripts/setup.sh build || exit 1
passes="build"
if [ "${1:-}" != "--quick" ]; then
    scripts/setup.sh build-asan -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debug || exit 1
    passes="build build-asan"
fi

export ASAN_OPTIONS=abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for b in $passes; do
    echo "== unit tests ($b)"
    meson test -C "$b" --print-errorlogs --no-rebuild -q
    cp "$b/meson-logs/testlog.json" "$RESULTS/unit-$b.json" 2>/dev/null
    echo "== integration tests ($b)"
    # daemons stopped by signals do not free everything: leak checks are for
    # the unit tests; memory errors still abort any process.  Most integration
    # tests wait on peers and timers, so three workers share the two cores;
    # --dist loadfile keeps each file (and its module fixtures) on one worker.
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
    TERN_BUILD=$TOP/$b TERN_SANITIZED=$([ "$b" = build-asan ] && echo 1 || echo 0) \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider -n 3 --dist loadfile tests/integration \
        --junitxml="$RESULTS/integration-$b.xml"
done
echo "== package test (once)"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/pkg --junitxml="$RESULTS/package.xml"
/usr/bin/python3 scripts/summarize.py "$RESULTS"
