#!/usr/bin/env bash
# Usage: scripts/swarm-migrate.sh [--contract]   (make swarm-migrate; make migrate-contract RUNTIME=swarm)
# Runs the stack's migrate job again, with BACKEND_IMAGE, and returns once it has completed (or
# fails with its output): the expand migrations (scripts/swarm-deploy.sh runs them before every
# update of a deployed stack), or with --contract every migration, refused while a backend task
# runs another image than BACKEND_IMAGE (docs/deploy.md, "Schema changes: expand, then contract").
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

[[ $# -eq 0 || $* == --contract ]] || die "usage: $0 [--contract]"
swarm_manager
service=${swarm_stack}_migrate
docker service inspect "$service" >/dev/null 2>&1 ||
  die "no service $service: deploy the stack first (make swarm-deploy)"
command="python -m app.migrate${1:+ $1}"
if [[ $* == --contract ]]; then
  # The tasks' image names carry the digest Swarm pinned them to (from a registry).
  others=$(docker service ps --filter desired-state=running --format '{{.Name}} {{.Image}}' \
    "${swarm_stack}_backend" | awk -v image="$BACKEND_IMAGE" '{sub(/@.*/, "", $2)} $2 != image')
  [[ -z $others ]] ||
    die "refused: the contract step is for $BACKEND_IMAGE, but backend tasks run other images:
$others
deploy it first (make swarm-deploy); the schema is unchanged"
fi
known=$(job_tasks "$service")
# Every update of a job runs it again; --force makes one even when the image is the same. The
# command is set each time: the contract step's must not stay for the next run.
docker service update --detach --force "${update_options[@]}" --image "$BACKEND_IMAGE" \
  --args "$command" "$service" >/dev/null
wait_job "$service" "$known"
say "the database is migrated ($command, $BACKEND_IMAGE)"
