#!/usr/bin/env bash
# Usage: scripts/swarm-rm.sh   (make swarm-rm)
# Removes the stack SWARM_STACK: its services, networks and configs, and the containers its
# finished migrate job left (Swarm removes those of services only). Its database volume, its
# secrets and the swarm stay.
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

swarm_manager
docker stack rm --detach=false "$swarm_stack"
leftovers=$(docker ps --all --quiet --filter "label=com.docker.stack.namespace=$swarm_stack")
if [[ -n $leftovers ]]; then
  # shellcheck disable=SC2086 # one id per word
  docker rm --force $leftovers >/dev/null
fi
say "removed $swarm_stack (kept: its volume ${swarm_stack}_dbdata, its secrets, the swarm)"
