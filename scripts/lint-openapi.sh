#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (pinned in tests/lint/package-lock.json,
# installed with `npm ci` on first use into tests/lint/node_modules). Rules and
# their levels: tests/lint/redocly.yaml. Exit status: 0 clean, 1 problems found.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lint=$root/tests/lint
if [ ! -x "$lint/node_modules/.bin/redocly" ]; then
	command -v npm >/dev/null || { echo "lint-openapi: npm is missing (CONSENTD_BROWSER=1 scripts/deps.sh installs it)" >&2; exit 1; }
	(cd "$lint" && npm ci --no-audit --no-fund --loglevel=error)
fi
cd "$lint"
# No telemetry from CI runs.
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
	./node_modules/.bin/redocly lint --config redocly.yaml "$root/docs/openapi.yaml"
