#!/usr/bin/env bash
# check-install: `cmake --install` of a build into a temporary prefix puts
# the binary, the systemd unit, the example config and policy, the docs and
# every command's --help text where docs/operations.md says; the installed
# binary answers --version with the project version and its store backends.
# In a Release build it also checks the hardening: PIE, full RELRO
# (BIND_NOW), fortified calls and the stack protector.
# Usage: check-install.sh BUILD_DIR VERSION [BUILD_TYPE]
set -euo pipefail
build="$1"
version="$2"
build_type="${3:-}"
prefix="$(mktemp -d /tmp/consentd-install-XXXXXX)"
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
fail=0
for f in bin/consentd lib/systemd/system/consentd.service share/consentd/consentd.conf.example \
	share/consentd/example-policy.json share/doc/consentd/operations.md \
	share/consentd/help/consentd.txt share/consentd/help/consentd-init.txt \
	share/consentd/help/consentd-serve.txt share/consentd/help/consentd-audit.txt; do
	if [ ! -s "$prefix/$f" ]; then
		echo "check-install: $f is missing or empty" >&2
		fail=1
	fi
done
grep -q -- "--database" "$prefix/share/consentd/help/consentd-init.txt" ||
	{ echo "check-install: init's help does not mention --database" >&2; fail=1; }
out="$("$prefix/bin/consentd" --version)"
case "$out" in
"consentd $version (store backends: sqlite"*) ;;
*) echo "check-install: --version says: $out" >&2; fail=1 ;;
esac
# The example config is one the server accepts: policy check the policy.
"$prefix/bin/consentd" policy check "$prefix/share/consentd/example-policy.json" >/dev/null ||
	{ echo "check-install: the installed example policy does not check" >&2; fail=1; }
python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$prefix/share/consentd/consentd.conf.example" ||
	{ echo "check-install: consentd.conf.example is not JSON" >&2; fail=1; }
if [ "$build_type" = Release ]; then
	bin="$prefix/bin/consentd"
	readelf -h "$bin" | grep -q "DYN (Position-Independent" || { echo "check-install: not PIE" >&2; fail=1; }
	readelf -d "$bin" | grep -q "BIND_NOW" || { echo "check-install: no full RELRO (BIND_NOW)" >&2; fail=1; }
	readelf -lW "$bin" | grep -q GNU_RELRO || { echo "check-install: no RELRO segment" >&2; fail=1; }
	nm -D "$bin" | grep -q "__stack_chk_fail" || { echo "check-install: no stack protector" >&2; fail=1; }
	nm -D "$bin" | grep -q "_chk@" || { echo "check-install: no fortified calls" >&2; fail=1; }
fi
exit $fail
