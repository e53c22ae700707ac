#!/usr/bin/env bash
# Usage: scripts/swarm-deploy.sh   (make swarm-deploy)
# Deploys the stack SWARM_STACK, or updates it to BACKEND_IMAGE and PROXY_IMAGE, and returns once
# every service runs all its replicas, healthy, and the proxy on this node reaches the backend.
# An update migrates the database first (the migrate job, with the new image), then replaces the
# backend one replica at a time, each healthy before the old one stops; a replica that does not
# turn healthy rolls the service back to its previous image, and this script fails saying so.
set -euo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=scripts/lib/swarm.sh
source "$here/lib/swarm.sh"

swarm_manager
since=$(date +%s)
migrate=${swarm_stack}_migrate
if docker service inspect "$migrate" >/dev/null 2>&1; then
  # The schema first, so the first new replica finds it (the old replicas must keep working on
  # it: a migration adds, and a later release removes what the old code needed).
  "$here/swarm-migrate.sh"
fi

# The deploy runs the job again (on a first deploy: for the first time, retrying until the
# database is up): watched as well, a failure is never silent.
known=$(job_tasks "$migrate")
"$here/swarm-render.sh" |
  docker stack deploy --detach "${deploy_options[@]}" --compose-file - "$swarm_stack"
wait_job "$migrate" "$known"
wait_converged "$since"
wait_served
say "$swarm_stack runs $BACKEND_IMAGE and $PROXY_IMAGE, every replica healthy and served"
