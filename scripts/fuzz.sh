#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -DCONSENTD_FUZZ=ON) and runs each
# tests/fuzz/fuzz_<name>.c for N minutes against its corpus.
#
#   scripts/fuzz.sh [MINUTES] [--merge] [--jobs J] [--only NAME]
#
# MINUTES     per target (default 1; fractions allowed, e.g. 0.5)
# --merge     merge new coverage-increasing inputs into tests/fuzz/corpus/<name>/
#             (minimised with -merge=1; review and commit what you keep)
# --jobs J    run J targets at once (default 1)
# --only NAME run only fuzz_NAME
#
# New inputs go to a scratch directory (build-fuzz/corpus/<name>/), so the
# repository changes only with --merge. A crash leaves crash-* files in
# build-fuzz/artifacts/<name>/; add the input to the corpus once it is fixed,
# so ctest replays it forever. Exit status 1 if any target crashed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=1 merge=0 jobs=1 only=""
while [ $# -gt 0 ]; do
	case "$1" in
	--merge) merge=1 ;;
	--jobs) jobs=$2; shift ;;
	--only) only=$2; shift ;;
	-h|--help) sed -n '2,17p' "$0"; exit 0 ;;
	*) minutes=$1 ;;
	esac
	shift
done
build=${CONSENTD_FUZZ_BUILD:-$root/build-fuzz}
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')

echo "== building fuzz targets in $build"
bash "$root/scripts/build.sh" "$build" -DCONSENTD_FUZZ=ON -DCMAKE_C_COMPILER=clang \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo

targets=()
for src in "$root"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	[ -n "$only" ] && [ "$name" != "fuzz_$only" ] && [ "$name" != "$only" ] && continue
	targets+=("$name")
done
[ ${#targets[@]} -gt 0 ] || { echo "no fuzz target matches '$only'" >&2; exit 2; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export CONSENTD_SOURCE_DIR=$root

run_one() {
	local name=$1 corpus=${1#fuzz_}
	local seeds=$root/tests/fuzz/corpus/$corpus scratch=$build/corpus/$corpus art=$build/artifacts/$corpus
	mkdir -p "$scratch" "$art" "$seeds"
	local log=$build/$name.log
	echo "== $name: ${seconds}s (log: $log)"
	local rc=0
	"$build/tests/fuzz/$name" "$scratch" "$seeds" -max_total_time="$seconds" -timeout=10 \
		-rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$art/" \
		>"$log" 2>&1 || rc=$?
	grep -E '^stat::(number_of_executed_units|new_units_added)|^Done|ERROR|SUMMARY' "$log" |
		sed "s/^/   $name: /" || true
	if [ $rc -ne 0 ]; then
		echo "!! $name failed (exit $rc); artifacts in $art" >&2
		return 1
	fi
	if [ $merge = 1 ]; then
		"$build/tests/fuzz/$name" -merge=1 "$seeds" "$scratch" >>"$log" 2>&1
		echo "   $name: corpus now $(ls "$seeds" | wc -l) files"
	fi
}

failed=0
if [ "$jobs" -le 1 ]; then
	for t in "${targets[@]}"; do run_one "$t" || failed=1; done
else
	pids=()
	for t in "${targets[@]}"; do
		run_one "$t" & pids+=($!)
		while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
	done
	for p in "${pids[@]}"; do wait "$p" || failed=1; done
fi
exit $failed
