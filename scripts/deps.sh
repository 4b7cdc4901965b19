#!/usr/bin/env bash
# Installs what consentd needs to build, run and test on Debian 12 (as root).
# Skips apt entirely when everything is already present.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libmicrohttpd-dev libgnutls28-dev libjansson-dev libsqlite3-dev libssl-dev libcmocka-dev libcurl4-openssl-dev
      python3 python3-yaml sqlite3 curl ca-certificates openssl gnutls-bin procps
      libpq-dev postgresql-15 postgresql-client-15) # the PostgreSQL backend and its tests
if [ "${CONSENTD_BROWSER:-0}" = 1 ]; then
	pkgs+=(chromium fonts-wqy-zenhei) # CJK glyphs for the Chinese screenshots
	# Node.js may come with the machine image (newer than Debian's, whose npm
	# package would conflict with it); install Debian's only when it is absent.
	command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
	command -v npm >/dev/null 2>&1 || pkgs+=(npm)
fi
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
