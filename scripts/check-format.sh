#!/usr/bin/env bash
# Checks that the C sources follow .clang-format (clang-format 14, Debian's
# clang-format package), without changing them: exits 1 and lists the files
# that a reformat would change. `scripts/check-format.sh --fix` reformats them
# in place instead. scripts/test.sh (and so CI) runs the check.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fmt=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$fmt" ] || { echo "check-format: clang-format is missing (apt-get install clang-format)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = "--fix" ]; then
	"$fmt" -i --style=file "${files[@]}"
	exit 0
fi
"$fmt" --dry-run -Werror --style=file "${files[@]}"
