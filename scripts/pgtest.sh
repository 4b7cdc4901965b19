#!/usr/bin/env bash
# pgtest.sh: runs one command against a throwaway PostgreSQL cluster.
#
#   scripts/pgtest.sh COMMAND [ARGS...]
#
# initdb in a temporary folder (as the unprivileged `postgres` user when run
# as root, via runuser), a server on a free loopback port with fsync on,
# then COMMAND with CONSENTD_TEST_DATABASE set to a libpq URI of the empty
# database `consentd` (the superuser `consentd_test`, trust on loopback
# only) and CONSENTD_TEST_PG_ADMIN to the maintenance database, so a test
# can create and drop databases of its own. The server is stopped and the
# folder removed at the end, also when COMMAND fails or is interrupted.
# Exits with COMMAND's status, 77 when no PostgreSQL server is installed. PostgreSQL 15 from Debian (scripts/deps.sh).
set -euo pipefail

bindir=""
for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
	if [ -x "$d/initdb" ]; then bindir="$d"; break; fi
done
if [ -z "$bindir" ]; then
	echo "pgtest: PostgreSQL server binaries not found (apt-get install postgresql-15)" >&2
	exit 77 # ctest's SKIP_RETURN_CODE
fi

dir="$(mktemp -d /tmp/consentd-pg-XXXXXX)"
as_pg=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	as_pg=(runuser -u postgres --)
fi
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

cleanup() {
	"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U consentd_test --auth=trust -E UTF8 \
	--no-instructions >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 2; }
# In postgresql.conf rather than on the command line, so a test can stop
# and start the server again with plain pg_ctl (CONSENTD_TEST_PG_CTL).
printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nfsync = on\nsynchronous_commit = on\nmax_connections = 200\n" \
	"$port" "$dir" >>"$dir/data/postgresql.conf"
pg_ctl_cmd="${as_pg[*]} $bindir/pg_ctl -D $dir/data -l $dir/server.log -w -t 60"
$pg_ctl_cmd start >/dev/null || { cat "$dir/server.log" >&2; exit 2; }
"$bindir/../bin/createdb" -h 127.0.0.1 -p "$port" -U consentd_test consentd 2>/dev/null ||
	psql -h 127.0.0.1 -p "$port" -U consentd_test -d postgres -qc 'CREATE DATABASE consentd' >/dev/null

export CONSENTD_TEST_DATABASE="postgresql://consentd_test@127.0.0.1:$port/consentd"
export CONSENTD_TEST_PG_ADMIN="postgresql://consentd_test@127.0.0.1:$port/postgres"
# "$CONSENTD_TEST_PG_CTL stop -m fast" / "... start": a database outage.
export CONSENTD_TEST_PG_CTL="$pg_ctl_cmd"
set +e
"$@"
rc=$?
set -e
exit $rc
