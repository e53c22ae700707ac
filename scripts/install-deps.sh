#!/usr/bin/env bash
# Usage: scripts/install-deps.sh   (make deps)
# Installs the Debian packages the test tiers and the browser test use, skipping what is
# installed; stops and disables the system services of the servers it installs (not Docker's:
# the container tiers need its engine). Root or sudo. `make test` installs nothing itself.
set -euo pipefail

packages=(mariadb-server mariadb-client nginx openssl wrk ca-certificates)
# envsubst, which renders proxy/templates natively as the nginx image's entrypoint does.
packages+=(gettext-base)
# promtool, which the static tier runs on monitoring/ (the package's server is not used).
packages+=(prometheus)
# The browser test: headless Chromium, its WebDriver, NSS's certutil (to trust the dev CA) and a
# colour emoji font for the screenshot. Where the package sources lack them (Ubuntu ships Chromium
# only as a snap) they are left out, and the browser test skips, saying why.
browser=(chromium chromium-driver libnss3-tools fonts-noto-color-emoji)
# The system service each server package starts on installation (Debian's unit names).
declare -A services=([mariadb-server]=mariadb [nginx]=nginx [prometheus]=prometheus)

# By package database, not by command: the servers live in sbin, which a non-root PATH lacks.
installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

missing=()
for package in "${packages[@]}" "${browser[@]}"; do
  installed "$package" || missing+=("$package")
done
# The container tiers' engine and client: Debian's docker.io, unless Docker's own docker-ce is.
installed docker.io || installed docker-ce || missing+=(docker.io)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "deps: all present (${packages[*]} ${browser[*]}, docker, python3 venv)"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "deps: missing ${missing[*]}; run as root or install sudo" >&2; exit 1; }
  sudo=(sudo)
fi
command -v apt-get >/dev/null || { echo "deps: missing ${missing[*]} and no apt-get here; install them by hand" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
wanted=()
for package in "${missing[@]}"; do
  if [[ " ${browser[*]} " == *" $package "* ]] && ! apt-cache show "$package" >/dev/null 2>&1; then
    echo "deps: $package is not in this system's package sources; the browser test will skip" >&2
  else
    wanted+=("$package")
  fi
done
[[ ${#wanted[@]} -gt 0 ]] || exit 0
echo "deps: installing ${wanted[*]}"
# --no-install-recommends keeps the native test servers minimal.
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
echo "deps: installed ${wanted[*]}"

# Under systemd the packages start their services and enable them at boot, holding ports 80, 3306
# and 9090 that the stack publishes; the tests start their own servers. Only what this run installed
# is touched: a server that was already there is the machine owner's business.
state=$(systemctl is-system-running 2>/dev/null) || true
if [[ -z $state || $state == offline ]]; then
  exit 0
fi
units=()
for package in "${wanted[@]}"; do
  if [[ -n ${services[$package]:-} ]]; then units+=("${services[$package]}"); fi
done
if [[ ${#units[@]} -gt 0 ]]; then
  if ! out=$("${sudo[@]}" systemctl disable --now "${units[@]}" 2>&1); then
    echo "deps: could not stop and disable ${units[*]}: $out" >&2
    exit 1
  fi
  echo "deps: stopped and disabled the system services ${units[*]} (installed by this run; the" \
    "tests start their own servers). To run them as services: systemctl enable --now ${units[*]}"
fi
