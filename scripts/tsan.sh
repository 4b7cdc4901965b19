#!/usr/bin/env bash
# ThreadSanitizer run: builds consentd with clang -fsanitize=thread into
# build-tsan/ (or $1) and runs the unit and integration tests (not the slow
# ones) under it. Every report goes to a file of its own (TSAN_OPTIONS
# log_path), so a race in the server started by an integration test is seen
# even though the test itself passes; the script fails if any report was
# written, and prints them. Known reports in code we do not own (none yet)
# would go in tests/tsan/suppressions.txt, each with a reason.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build-tsan}
bash "$root/scripts/build.sh" "$dir" -DCONSENTD_TSAN=ON -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang
reports=$dir/tsan-reports
rm -rf "$reports" && mkdir -p "$reports"
export TSAN_OPTIONS="log_path=$reports/tsan halt_on_error=0 second_deadlock_stack=1 history_size=4 suppressions=$root/tests/tsan/suppressions.txt"
status=0
(cd "$dir" && ctest --output-on-failure -j"${CONSENTD_TSAN_JOBS:-2}" --timeout 1200 -L "unit|integration" -LE slow) || status=$?
shopt -s nullglob
files=("$reports"/tsan.*)
if [ ${#files[@]} -gt 0 ]; then
	echo "tsan: ${#files[@]} report file(s) in $reports:"
	grep -h -A3 "^WARNING: ThreadSanitizer" "${files[@]}" | grep -E "WARNING|#0|#1" | sort | uniq -c | sort -rn | head -40
	status=1
else
	echo "tsan: no reports"
fi
exit $status
