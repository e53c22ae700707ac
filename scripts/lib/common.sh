# shellcheck shell=bash disable=SC2034 # the variables are read by the sourcing files
# Sourced by scripts/make-secrets.sh, scripts/lib/stack.sh and scripts/lib/swarm.sh: where the
# repository and its secrets are and their names, the compose command, the Swarm stack's name, how a
# script reports, and how it makes and writes a secret. Never run on its own.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=$(basename "$0" .sh)
secrets_dir=${SECRETS_DIR:-$repo/secrets}
# COMPOSE_COMMAND replaces "docker compose" (the tests' pinned binary).
read -ra compose <<<"${COMPOSE_COMMAND:-docker compose}"
# Every file make-secrets.sh writes into SECRETS_DIR: a password per database account, the API
# write tokens (one per line), and the database's TLS key pair. compose.yaml mounts each.
secret_names=(db_root_password db_migrator_password db_app_password db_backup_password
  db_exporter_password api_tokens db_tls_cert db_tls_key)
# The stack `make swarm-deploy` deploys; its secrets, configs and volume carry the name.
swarm_stack=${SWARM_STACK:-hardened-stack-swarm}

die() {
  echo "$script: $*" >&2
  exit 1
}

say() { echo "$script: $*"; }

# write_secret FILE: stdin becomes FILE atomically (a reader sees the old or the new contents),
# mode 0644: compose's file secrets are bind mounts that keep the host mode, read by the
# containers' non-root users; the 0700 SECRETS_DIR keeps every other host user out.
write_secret() {
  local tmp
  tmp=$(mktemp "$(dirname "$1")/.$(basename "$1").XXXXXX")
  cat >"$tmp" || { rm -f "$tmp"; die "could not write $1"; }
  chmod 0644 "$tmp"
  mv -f "$tmp" "$1"
}

# random_password: 32 alphanumeric characters (~190 bits) from /dev/urandom, for every secret the
# stack generates: no quoting trouble in SQL, shells or URLs.
random_password() {
  local password
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32) || true
  [[ ${#password} -eq 32 ]] || die "could not read 32 random characters from /dev/urandom"
  printf '%s' "$password"
}
