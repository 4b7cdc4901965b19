#!/usr/bin/env bash
# The whole test suite, from nothing: installs dependencies, builds, and runs
# ctest (unit, fuzz-corpus replay, integration). Then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the unit tests, the
# fuzz replays and the integration tests under them. The include boundaries
# and the formatting (.clang-format, clang-format 14) are checked first.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
CONSENTD_BROWSER=1 bash scripts/deps.sh
jobs=$(nproc)

# Cheap checks first, so a crossed library boundary fails in seconds. The
# same checks (and the OpenAPI linter) also run as ctest tests labelled lint.
echo "== source boundaries (scripts/check-includes.py)"
python3 scripts/check-includes.py --self-test >/dev/null
python3 scripts/check-includes.py
echo "== formatting (scripts/check-format.sh; --fix reformats)"
bash scripts/check-format.sh

echo "== build and test (RelWithDebInfo)"
bash scripts/build.sh "$root/build"
# Every prerequisite is installed above, so here a skipped scenario is a
# failure (a test that silently stopped testing), not a pass.
(cd build && CONSENTD_NO_SKIP=1 ctest --output-on-failure -j"$jobs" --timeout 900)

echo "== build and test with ASan + UBSan (clang: a second compiler's warnings too)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
bash scripts/build.sh "$root/build-asan" -DCONSENTD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang
(cd build-asan && ctest --output-on-failure -j"$jobs" --timeout 900 -L "unit|fuzz|integration" -LE "slow")
