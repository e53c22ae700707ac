#!/usr/bin/env bash
# Usage: scripts/swarm-init.sh   (make swarm-init)
# Makes this Docker engine a single-node swarm for trying the stack (a manager already: kept), and
# labels this node, unless another node has the label, to run the database (db=true, where its
# volume and backups live) and the proxy (proxy=true, which publishes HTTP_PORT and HTTPS_PORT). SWARM_ADVERTISE_ADDR: the address
# other nodes will join on (default 127.0.0.1, which no other node can reach; docs/swarm.md).
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

if [[ $(docker info --format '{{.Swarm.LocalNodeState}}') == active ]]; then
  swarm_manager
  say "kept     the swarm this engine is in"
else
  docker swarm init --advertise-addr "${SWARM_ADVERTISE_ADDR:-127.0.0.1}" >/dev/null
  say "created  a single-node swarm (advertised on ${SWARM_ADVERTISE_ADDR:-127.0.0.1})"
fi
# Only where no node has the label yet: db=true must stay on the one node that has the data.
for label in db proxy; do
  if [[ -z $(docker node ls --quiet --filter "node.label=$label=true") ]]; then
    docker node update --label-add "$label=true" "$(docker info --format '{{.Swarm.NodeID}}')" >/dev/null
    say "labelled this node $label=true"
  else
    say "kept     the $label=true label where it is"
  fi
done
