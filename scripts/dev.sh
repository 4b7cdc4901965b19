#!/usr/bin/env bash
# One command to a running consentd: installs dependencies, builds, creates
# data/ (config, dev TLS certificate, keys, example policy, SQLite file) on
# first run, creates API tokens for each role, loads demo contacts, prints how
# to call the API, and keeps serving in the foreground (Ctrl-C stops it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/deps.sh
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" --target consentd   # the tests are scripts/test.sh's job
bin=$root/build/consentd
data=${CONSENTD_DATA:-$root/data}
listen=${CONSENTD_LISTEN:-127.0.0.1:8443}
port=${listen##*:}
tokens=$data/dev-tokens.env
fresh=0
if [ ! -f "$data/consentd.conf" ]; then
	"$bin" init --data "$data" --listen "$listen"
	umask 077
	: >"$tokens"
	for role in admin support marketing auditor; do
		echo "${role^^}_TOKEN=$("$bin" token create --data "$data" --role "$role" --name "dev-$role" 2>/dev/null)" >>"$tokens"
	done
	fresh=1
fi
"$bin" serve --data "$data" --listen "$listen" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
# shellcheck disable=SC1090
. "$tokens"
api() { curl -sS --cacert "$data/tls/cert.pem" -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }
if [ "$fresh" = 1 ]; then
	for who in "Ada Lovelace|ada@example.org|+441632960001|marketing" \
		   "Grace Hopper|grace@example.org|+441632960002|marketing" \
		   "Alan Turing|alan@example.org|+441632960003|service" \
		   "Mary Seacole|mary@example.org|+441632960004|care"; do
		IFS='|' read -r name email phone purpose <<<"$who"
		body=$(printf '{"name":"%s","email":"%s","phone":"%s","collected_for":["service","%s"],"source":"demo"}' \
			"$name" "$email" "$phone" "$purpose")
		id=$(api -X POST "https://127.0.0.1:$port/v1/contacts" -d "$body" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
		if [ "$purpose" = marketing ]; then
			api -X PUT "https://127.0.0.1:$port/v1/contacts/$id/consents/marketing" \
				-d '{"channel":"email","status":"granted","source":"demo-signup","collection_method":"web_form"}' >/dev/null
		fi
	done
	echo "demo: 4 contacts loaded (2 with marketing email consent)"
fi
cat <<TXT

consentd is serving https://127.0.0.1:$port  (data: $data)
API tokens, one per role, are in $tokens (mode 0600). Try:

  . $tokens
  curl --cacert $data/tls/cert.pem https://127.0.0.1:$port/healthz
  curl --cacert $data/tls/cert.pem -H "Authorization: Bearer \$MARKETING_TOKEN" \\
       -H 'Content-Type: application/json' https://127.0.0.1:$port/v1/consent/check \\
       -d '{"email":"ada@example.org","purpose":"marketing","channel":"email"}'
  curl --cacert $data/tls/cert.pem -H "Authorization: Bearer \$ADMIN_TOKEN" \\
       "https://127.0.0.1:$port/v1/contacts?email=ada@example.org&purpose=service"

Ctrl-C stops the server. docs/ has the API reference and operations guide.
TXT
wait $pid
