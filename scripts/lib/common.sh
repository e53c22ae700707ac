# shellcheck shell=bash disable=SC2034 # the variables are read by the sourcing files
# Sourced by scripts/make-secrets.sh, scripts/lib/stack.sh and scripts/lib/swarm.sh: where the
# repository and its secrets are and their names, the compose command, the Swarm stack's name, how a
# script reports and how it makes a password. Never run on its own.

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

# random_password: 32 alphanumeric characters (~190 bits) from /dev/urandom, for every secret the
# stack generates: no quoting trouble in SQL, shells or URLs.
random_password() {
  local password
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32) || true
  [[ ${#password} -eq 32 ]] || die "could not read 32 random characters from /dev/urandom"
  printf '%s' "$password"
}
