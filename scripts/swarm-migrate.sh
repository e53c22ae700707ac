#!/usr/bin/env bash
# Usage: scripts/swarm-migrate.sh   (make swarm-migrate)
# Runs the stack's migrate job again, with BACKEND_IMAGE, and returns once it has completed (or
# fails with its output). scripts/swarm-deploy.sh runs it before every update of a deployed stack.
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

swarm_manager
service=${swarm_stack}_migrate
docker service inspect "$service" >/dev/null 2>&1 ||
  die "no service $service: deploy the stack first (make swarm-deploy)"
known=$(job_tasks "$service")
# Every update of a job runs it again; --force makes one even when the image is the same.
docker service update --detach --force "${update_options[@]}" --image "$BACKEND_IMAGE" \
  "$service" >/dev/null
wait_job "$service" "$known"
say "the database is migrated ($BACKEND_IMAGE)"
