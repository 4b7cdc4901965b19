#!/usr/bin/env bash
# The backend conformance suite on the PostgreSQL backend: a throwaway
# cluster (scripts/pgtest.sh), emptied before each test by dropping and
# recreating its public schema. Usage: conformance-pg.sh STORE_CONFORMANCE
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
conf="$1"
exec "$here/scripts/pgtest.sh" bash -c '
export CONSENTD_STORE_TEST_LOCATION="$CONSENTD_TEST_DATABASE"
export CONSENTD_STORE_TEST_RESET="psql -q \"$CONSENTD_TEST_DATABASE\" -c \"DROP SCHEMA public CASCADE; CREATE SCHEMA public\" >/dev/null 2>&1"
exec "$0"' "$conf"
