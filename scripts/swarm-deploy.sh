#!/usr/bin/env bash
# Usage: scripts/swarm-deploy.sh   (make swarm-deploy)
# Deploys the stack SWARM_STACK, or updates it to BACKEND_IMAGE and PROXY_IMAGE, and returns once
# every service runs all its replicas, healthy. An update migrates the database first (the
# migrate job, with the new image), then replaces the backend one replica at a time, each healthy
# before the old one stops; a replica that does not turn healthy rolls the service back to its
# previous image, and this script fails saying so.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/swarm.sh
source "$here/lib/swarm.sh"

swarm_manager
since=$(date +%s)
deployed=false
if docker service inspect "${stack}_migrate" >/dev/null 2>&1; then
  deployed=true
  # The schema first, so the first new replica finds it (the old replicas must keep working on
  # it: a migration adds, and a later release removes what the old code needed).
  "$here/swarm-migrate.sh"
fi

options=(--detach --resolve-image "$resolve_image")
# Nodes pulling from a registry that needs a login get this client's credentials.
[[ -z $registry ]] || options+=(--with-registry-auth)
"$here/swarm-render.sh" | docker stack deploy "${options[@]}" --compose-file - "$stack"
if ! $deployed; then
  # A first deployment: the job starts with the stack, and retries until the database is up.
  wait_job "${stack}_migrate" ""
  say "the database is migrated ($BACKEND_IMAGE)"
fi
wait_converged "$since"
say "$stack runs $BACKEND_IMAGE and $PROXY_IMAGE, every replica healthy"
