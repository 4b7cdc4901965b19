#!/usr/bin/env bash
# bench_pg: the consent check on PostgreSQL against SQLite, and two instances
# on one PostgreSQL database, side by side in one run on one machine. Not run
# by ctest; never a timed test. Runs its own throwaway cluster
# (scripts/pgtest.sh).
#
#   (a) POST /v1/consent/check, wrk over TLS keep-alive, CONNS connections
#       (default 64), SECONDS (default 10) each: one instance on SQLite, then
#       one on PostgreSQL (same binary, same data). Ratio and p99.
#   (b) two instances on one PostgreSQL database, CONNS/2 connections each,
#       at the same time: total check throughput, and the chain lock each
#       batch held (consentd_audit_batch_lock_seconds on both instances'
#       /metrics), with the projection of how many instances one database
#       sustains at that load per instance.
#
# usage: tests/bench/bench_pg.sh BUILD_DIR [SECONDS] [CONNS]
# Goals (issue 12): PostgreSQL >= 0.5 of SQLite, p99 <= 15 ms at 64 connections.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
if [ -z "${CONSENTD_TEST_DATABASE:-}" ]; then
	exec "$src/scripts/pgtest.sh" "$0" "$@"
fi
bin=${1:?usage: bench_pg.sh BUILD_DIR [SECONDS] [CONNS]}/consentd
secs=${2:-10}
conns=${3:-64}
command -v wrk >/dev/null || { echo "bench_pg: wrk is not installed" >&2; exit 77; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

start() { # data port cpu -> pid in $started
	taskset -c "$3" "$bin" serve --data "$1" --listen "127.0.0.1:$2" 2>>"$work/serve.log" &
	started=$!
	pids+=("$started")
	for _ in $(seq 200); do
		curl -skf "https://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	cat "$work/serve.log"; exit 1
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
api() { # port method path token [json]
	curl -skf -X "$2" "https://127.0.0.1:$1$3" -H "Authorization: Bearer $4" \
		-H 'Content-Type: application/json' ${5:+--data "$5"}
}
prepare() { # data port -> sets mtok and cid
	local atok
	atok=$("$bin" token create --data "$1" --role admin --name "bench-admin-$2-$RANDOM")
	mtok=$("$bin" token create --data "$1" --role marketing --name "bench-marketing-$2-$RANDOM")
	cid=$(api "$2" POST /v1/contacts "$atok" "{\"email\":\"bench.$2.$RANDOM$RANDOM@example.org\",\"collected_for\":[\"marketing\"]}" |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
	api "$2" PUT "/v1/contacts/$cid/consents/marketing" "$atok" '{"channel":"email","status":"granted"}' >/dev/null
}
wrk_run() { # port conns label cpu
	TOKEN=$mtok CONTACT=$cid taskset -c "$4" wrk -t1 -c"$2" -d"${secs}s" --latency \
		-s "$here/check.lua" "https://127.0.0.1:$1/v1/consent/check" >"$work/$3.wrk" 2>&1
	grep '^RESULT' "$work/$3.wrk" | sed 's/^RESULT //'
}
lock() { # port -> "sum count"
	curl -sk "https://127.0.0.1:$1/metrics" |
		awk '/^consentd_audit_batch_lock_seconds_sum/ {s=$2} /^consentd_audit_batch_lock_seconds_count/ {c=$2}
		     END {print s, c}'
}

pgdb() { # a fresh database of the throwaway cluster
	local name="bench_$RANDOM$RANDOM"
	psql -qX "$CONSENTD_TEST_PG_ADMIN" -c "CREATE DATABASE $name" >/dev/null
	echo "${CONSENTD_TEST_DATABASE%/*}/$name"
}

echo "== (a) one instance, SQLite then PostgreSQL: ${secs}s, $conns connections" >&2
p1=$(free_port)
"$bin" init --data "$work/sq" --listen "127.0.0.1:$p1" >/dev/null
start "$work/sq" "$p1" 0
prepare "$work/sq" "$p1"
sq=$(wrk_run "$p1" "$conns" sqlite 1)
sq_lock=$(lock "$p1")
stop "$started"

uri=$(pgdb)
"$bin" init --data "$work/pg" --listen "127.0.0.1:$p1" --database "$uri" >/dev/null
# PG_THREADS: the PostgreSQL instance's HTTP threads. A read on PostgreSQL
# waits for a round trip on the HTTP thread, so more threads than cores keep
# the CPU busy; 0 is consentd's default for PostgreSQL (8 per core, at most
# the pool's readers: docs/operations.md).
python3 - "$work/pg/consentd.conf" "${PG_THREADS:-0}" "${PG_POOL:-0}" <<'PY'
import json, sys
path, threads, pool = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open(path))
c["threads"] = threads
if pool:
    c["database_pool"] = pool
json.dump(c, open(path, "w"))
PY
start "$work/pg" "$p1" 0
prepare "$work/pg" "$p1"
pg=$(wrk_run "$p1" "$conns" pg 1)
pg_lock=$(lock "$p1")
stop "$started"

echo "== (b) two instances on one PostgreSQL database: $((conns / 2)) connections each" >&2
p2=$(free_port)
cp -a "$work/pg" "$work/pg2"
start "$work/pg" "$p1" 0
pa=$started
start "$work/pg2" "$p2" 1
pb=$started
prepare "$work/pg" "$p1"
a0=$(lock "$p1"); b0=$(lock "$p2")
t0=$(date +%s.%N)
wrk_run "$p1" $((conns / 2)) two-a 1 >"$work/two-a.res" &
w1=$!
wrk_run "$p2" $((conns / 2)) two-b 0 >"$work/two-b.res" &
w2=$!
wait "$w1" "$w2"
t1=$(date +%s.%N)
a1=$(lock "$p1"); b1=$(lock "$p2")
stop "$pa"; stop "$pb"

python3 - "$sq" "$pg" "$(cat "$work/two-a.res")" "$(cat "$work/two-b.res")" "$sq_lock" "$pg_lock" \
	"$a0" "$a1" "$b0" "$b1" "$t0" "$t1" "$conns" <<'PY'
import sys
sq, pg, ta, tb, sql, pgl, a0, a1, b0, b1, t0, t1, conns = sys.argv[1:]
kv = lambda s: dict(x.split("=") for x in s.split())
sq, pg, ta, tb = kv(sq), kv(pg), kv(ta), kv(tb)
pair = lambda s: tuple(float(x) for x in s.split())
def mean_ms(s):
    total, n = pair(s)
    return 1000 * total / n if n else 0.0
print(f"check, SQLite     : {float(sq['rps']):8.0f} req/s  p50 {sq['p50_ms']} ms  p99 {sq['p99_ms']} ms  "
      f"errors {sq['errors']}  lock/batch {mean_ms(sql):.3f} ms")
print(f"check, PostgreSQL : {float(pg['rps']):8.0f} req/s  p50 {pg['p50_ms']} ms  p99 {pg['p99_ms']} ms "
      f"(goal <= 15)  errors {pg['errors']}  lock/batch {mean_ms(pgl):.3f} ms")
print(f"PostgreSQL/SQLite : {float(pg['rps']) / float(sq['rps']):.2f} (goal >= 0.50), {conns} connections")
wall = float(t1) - float(t0)
(sa0, ca0), (sa1, ca1), (sb0, cb0), (sb1, cb1) = map(pair, (a0, a1, b0, b1))
lock_s, batches = (sa1 - sa0) + (sb1 - sb0), (ca1 - ca0) + (cb1 - cb0)
total = float(ta["rps"]) + float(tb["rps"])
T = lock_s / batches if batches else 0.0
util = lock_s / wall
print(f"two instances     : {float(ta['rps']):.0f} + {float(tb['rps']):.0f} = {total:.0f} req/s  "
      f"p99 {ta['p99_ms']} / {tb['p99_ms']} ms  errors {ta['errors']}/{tb['errors']}")
print(f"chain lock        : {batches:.0f} batches in {wall:.1f} s = {batches / wall:.0f} batches/s, "
      f"{total / (batches / wall):.1f} requests/batch, mean hold T = {1000 * T:.3f} ms")
print(f"lock utilisation  : {lock_s:.2f} s held / {wall:.1f} s = {100 * util:.1f}% of the chain's capacity")
if T > 0:
    print(f"projection        : the chain sustains 1/T = {1 / T:.0f} batches/s; at {batches / wall / 2:.0f} batches/s "
          f"per instance that is {1 / T / (batches / wall / 2):.1f} instances at this load each "
          f"(= 2 / {util:.3f}), i.e. about {total / util:.0f} audited checks/s for the fleet at "
          f"{total / (batches / wall):.1f} requests a batch")
PY
