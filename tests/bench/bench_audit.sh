#!/usr/bin/env bash
# bench_audit: what the audit trail costs, as ratios measured in one run on
# one machine. Not run by ctest; never a timed test.
#
#   (a) POST /v1/consent/check over TLS keep-alive with wrk, 64 connections:
#       audit on (each reply waits for its fsync'd entry) vs. audit off
#       (CONSENTD_BENCH_NO_AUDIT=1), and the bare libmicrohttpd TLS ceiling
#       from ../shared/bench/baseline.sh. Server on CPU 0, wrk on CPU 1.
#   (b) `consentd audit verify` over ENTRIES generated entries (default 1M).
#
# usage: tests/bench/bench_audit.sh [SECONDS] [CONNECTIONS]
#        tests/bench/bench_audit.sh --smoke BUILD_DIR
#   env: BUILD (build dir, default /tmp/build-bench-audit, Release),
#        ENTRIES (default 1000000), PORT (default 18543), SKIP_BASELINE=1,
#        BASELINE (path of baseline.sh; default ../shared/bench next to the
#        checkout, or next to the directory holding the worktrees)
# --smoke: the same steps at a small size (1 s runs, 4 connections, 2,000
# entries) with the given build as it is (no reconfiguration), untimed; ctest
# runs it (label bench-smoke) so the benchmark cannot rot. Without wrk it
# exits 77 (skipped). In a build without CONSENTD_BENCH the audit-off run is
# reported as skipped instead of failing.
# Goals (docs/audit.md, issue 13): check with audit >= 0.50 of the bare
# libmicrohttpd TLS server, p99 <= 10 ms; verify >= 1,000,000 entries/s.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
smoke=0
if [ "${1:-}" = --smoke ]; then
	smoke=1; BUILD=${2:?usage: bench_audit.sh --smoke BUILD_DIR}; set -- 1 4; ENTRIES=${ENTRIES:-2000}
	command -v wrk >/dev/null || { echo "bench_audit: wrk is not installed; skipped" >&2; exit 77; }
fi
secs=${1:-10}; conns=${2:-64}
build=${BUILD:-/tmp/build-bench-audit}
entries=${ENTRIES:-1000000}
baseline=${BASELINE:-$src/../shared/bench/baseline.sh}
[ -f "$baseline" ] || baseline=$src/../../shared/bench/baseline.sh
port=${PORT:-18543}
bport=$((port + 1))
if [ "$smoke" = 1 ]; then
	# Several checkouts run the suite on one machine: take free ports.
	free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
	port=${PORT:-$(free_port)}; bport=$(free_port)
fi
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ "$smoke" = 0 ]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCONSENTD_BENCH=ON >/dev/null
	cmake --build "$build" -j"$(nproc)" --target consentd >/dev/null
fi
bin=$build/consentd

start_server() { # $1: extra env assignment or ""
	env $1 taskset -c 0 "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" 2>"$work/serve.log" &
	pid=$!
	for _ in $(seq 100); do
		curl -skf "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$work/serve.log"; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

api() { # method path token [json]
	curl -skf -X "$1" "https://127.0.0.1:$port$2" -H "Authorization: Bearer $3" \
		-H 'Content-Type: application/json' ${4:+--data "$4"}
}

run_wrk() { # label
	TOKEN=$mtok CONTACT=$cid taskset -c 1 wrk -t1 -c"$conns" -d"${secs}s" --latency \
		-s "$here/check.lua" "https://127.0.0.1:$port/v1/consent/check" | tee "$work/$1.wrk" >&2
	grep '^RESULT' "$work/$1.wrk" | sed 's/^RESULT //'
}

echo "== (a) consent check throughput, ${secs}s, $conns connections" >&2
"$bin" init --data "$work/data" >/dev/null
atok=$("$bin" token create --data "$work/data" --role admin --name bench-admin)
mtok=$("$bin" token create --data "$work/data" --role marketing --name bench-marketing)
start_server ""
cid=$(api POST /v1/contacts "$atok" '{"email":"bench@example.org","collected_for":["marketing"]}' |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
api PUT "/v1/contacts/$cid/consents/marketing" "$atok" '{"channel":"email","status":"granted"}' >/dev/null
before=$(sqlite3 "$work/data/consentd.db" 'SELECT max(seq) FROM audit' 2>/dev/null || echo "?")
on=$(run_wrk audit-on)
stop_server
after=$(sqlite3 "$work/data/consentd.db" 'SELECT max(seq) FROM audit' 2>/dev/null || echo "?")
start_server "CONSENTD_BENCH_NO_AUDIT=1"
off=$(run_wrk audit-off)
stop_server
if ! grep -q 'NOT AUDITED' "$work/serve.log"; then
	# A build without CONSENTD_BENCH ignores the variable and audits anyway.
	[ "$smoke" = 1 ] || { echo "no warning printed for CONSENTD_BENCH_NO_AUDIT" >&2; exit 1; }
	off="rps=0 p50_ms=- p99_ms=- errors=0"
fi
base="rps=0"
if [ "${SKIP_BASELINE:-0}" != 1 ]; then
	base=$(PORT=$bport bash "$baseline" "$secs" "$conns" 2>&1 | tee "$work/base.wrk" |
		awk '/Requests\/sec/ {print "rps=" $2}')
	cat "$work/base.wrk" >&2
fi

echo "== (b) audit verify over $entries entries" >&2
rm -rf "$work/vdata"
"$bin" init --data "$work/vdata" >/dev/null
# libcd_store holds the PostgreSQL backend too when consentd is built with
# libpq, so the generator links libpq whenever it is installed.
pq=$(pkg-config --exists libpq && echo libpq || true)
cc -O2 -std=gnu11 -I"$src" -o "$work/gen_audit" "$here/gen_audit.c" \
	"$build/libcd_store.a" "$build/libcd_audit.a" "$build/libcd_crypto.a" "$build/libcd_base.a" \
	$(pkg-config --cflags --libs sqlite3 openssl jansson $pq) -lpthread
t0=$(date +%s.%N)
"$work/gen_audit" "$work/vdata" "$entries" >&2
t1=$(date +%s.%N)
"$bin" audit verify --data "$work/vdata" >&2
t2=$(date +%s.%N)

val() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" <<<"$2"; }
python3 - "$on" "$off" "$base" "$entries" "$t0" "$t1" "$t2" "$before" "$after" "$smoke" <<'PY'
import sys
on, off, base, n, t0, t1, t2, before, after, smoke = sys.argv[1:]
def kv(s):
    return dict(x.split("=") for x in s.split())
on, off, base = kv(on), kv(off), kv(base)
ron, roff, rbase = float(on["rps"]), float(off["rps"]), float(base["rps"])
if smoke == "1" and (ron <= 0 or int(on["errors"]) != 0):
    sys.exit(f"smoke: the audited check run failed: {on}")
print(f"check, audit on : {ron:10.0f} req/s  p50 {on['p50_ms']} ms  p99 {on['p99_ms']} ms (goal <= 10)  errors {on['errors']}")
print(f"check, audit off: {roff:10.0f} req/s  p50 {off['p50_ms']} ms  p99 {off['p99_ms']} ms  errors {off['errors']}")
if rbase:
    print(f"bare MHD TLS    : {rbase:10.0f} req/s")
    print(f"audit on / bare : {ron / rbase:.2f}   (goal >= 0.50)")
    if roff:
        print(f"audit off / bare: {roff / rbase:.2f}")
if roff:
    print(f"audit cost      : {(1 - ron / roff) * 100:.1f}% of check throughput")
if before != "?" and after != "?":
    print(f"entries written while audited: {int(after) - int(before)}")
n = int(n); gen = float(t1) - float(t0); ver = float(t2) - float(t1)
print(f"generate {n} entries: {gen:.2f} s")
print(f"audit verify {n} entries: {ver:.2f} s = {n / ver:,.0f} entries/s (goal >= 1,000,000)")
PY
