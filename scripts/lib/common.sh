# shellcheck shell=bash disable=SC2034 # the variables are read by the sourcing files
# Sourced by scripts/lib/stack.sh and scripts/lib/swarm.sh: where the repository and its secrets
# are, the compose command, the Swarm stack's name, and how a script reports. Never run on its own.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=$(basename "$0" .sh)
secrets_dir=${SECRETS_DIR:-$repo/secrets}
# COMPOSE_COMMAND replaces "docker compose" (the tests' pinned binary).
read -ra compose <<<"${COMPOSE_COMMAND:-docker compose}"
# The stack `make swarm-deploy` deploys; its secrets, configs and volume carry the name.
swarm_stack=${SWARM_STACK:-hardened-stack-swarm}

die() {
  echo "$script: $*" >&2
  exit 1
}

say() { echo "$script: $*"; }
