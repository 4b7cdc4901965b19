#!/bin/sh
# Bulk filter and import benchmark (not a test): see bench_filter.py.
#   tests/bench/bench_filter.sh [BUILD_DIR] [N]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
n=${2:-1000000}
exec python3 "$here/bench_filter.py" --binary "$build/consentd" -n "$n"
