#!/usr/bin/env bash
# check-install: `cmake --install` of a build into a temporary prefix puts
# the binary, the systemd unit, the example config and policy, the docs and
# every command's --help text where docs/operations.md says; the installed
# binary answers --version with the project version and its store backends.
# Usage: check-install.sh BUILD_DIR VERSION
set -euo pipefail
build="$1"
version="$2"
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
exit $fail
