#!/usr/bin/env bash
# Usage: scripts/install-deps.sh
# Installs the Debian packages the test tiers run natively (MariaDB, nginx, openssl, wrk),
# skipping what is already there. Needs root (or sudo) on Debian/Ubuntu.
set -euo pipefail

# Servers live in sbin, which a non-root PATH may lack.
PATH=$PATH:/usr/sbin:/sbin

# command the tests run -> Debian package that provides it
declare -A packages=(
  [mariadbd]=mariadb-server [mariadb]=mariadb-client [nginx]=nginx [openssl]=openssl
  [wrk]=wrk [update-ca-certificates]=ca-certificates
)

missing=()
for cmd in "${!packages[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${packages[$cmd]}")
done
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all present (${!packages[*]}, python3 venv)"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
command -v apt-get >/dev/null || { echo "deps: missing ${missing[*]} and no apt-get here; install them by hand" >&2; exit 1; }

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
# --no-install-recommends keeps the native test servers minimal; their services are never
# started by the package (no systemd in CI containers), the tests start their own instances.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "deps: installed ${missing[*]}"
