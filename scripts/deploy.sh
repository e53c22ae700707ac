#!/usr/bin/env bash
# Usage: scripts/deploy.sh            (make deploy)    this checkout's backend, replica by replica
#        scripts/deploy.sh rollback   (make rollback)  back to the backend image the last deploy replaced
# Production under compose (compose.yaml + compose.prod.yaml), without a failed request;
# docs/deploy.md, "Deploying a new version".
#   deploy: builds the backend and migrate images, tags the new one with the commit and keeps the
#     running one as :previous, runs the expand migrations (the migrate service), then rolls.
#   rollback: rolls to :previous. The schema stays: the release before works on an expanded one,
#     and contract migrations wait for make migrate-contract.
# Rolling: a new replica starts beside each old one. Once every new one is healthy (within
# DEPLOY_HEALTH_TIMEOUT seconds, 120) and has answered at most DEPLOY_MAX_5XX_PERCENT (5) of its
# requests with a 5xx over DEPLOY_WATCH seconds (15), the old ones stop one at a time, finishing
# their requests. Otherwise the new replicas go, the old ones never stopped, the image they run
# is the service's again, and the script exits 1 saying why.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

action=${1:-deploy}
[[ $action == deploy || $action == rollback ]] || die "usage: $0 [rollback]"
[[ $runtime == compose ]] ||
  die "compose only: natively make restart-backend reloads this checkout's code; on Swarm, make swarm-deploy"
health_timeout=${DEPLOY_HEALTH_TIMEOUT:-120}
watch=${DEPLOY_WATCH:-15}
max_5xx_percent=${DEPLOY_MAX_5XX_PERCENT:-5}

project=$("${compose[@]}" config | sed -n 's/^name: //p')
image=$project-backend
old_ids=$("${compose[@]}" ps --quiet backend)
[[ -n $old_ids ]] || die "no backend replica runs: start production first (make prod-up)"
replicas=$(wc -l <<<"$old_ids")
running=$(docker inspect --format '{{.Image}}' "$(head -n 1 <<<"$old_ids")")

if [[ $action == deploy ]]; then
  "${compose[@]}" build --quiet backend migrate
  commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
  docker tag "$image" "$image:$commit"
  docker tag "$running" "$image:previous"
  say "built $image:$commit; the running image stays as $image:previous"
  migrated=$("${compose[@]}" run --rm --no-deps -T migrate 2>&1) ||
    die "the expand migrations failed, no replica changed:
$(tail -n 20 <<<"$migrated")"
  say "expand migrations done"
else
  docker image inspect "$image:previous" >/dev/null 2>&1 ||
    die "no $image:previous: nothing was deployed on this host with make deploy"
  docker tag "$image:previous" "$image"
fi

# new_replicas: the backend containers started beside the old ones, one id a line.
new_replicas() { comm -13 <(sort <<<"$old_ids") <("${compose[@]}" ps --all --quiet backend | sort); }

# give_up REASON: the new replicas stop (finishing their requests) and go, and the service's
# image is the one the old replicas run again.
give_up() {
  local id
  for id in $(new_replicas); do
    docker stop --time 30 "$id" >/dev/null
    docker rm "$id" >/dev/null
  done
  docker tag "$running" "$image"
  die "rolled back: $1; the replicas that ran before still serve"
}

"${compose[@]}" up --detach --no-deps --no-recreate --scale "backend=$((replicas * 2))" backend ||
  give_up "compose could not start new replicas"
new_ids=$(new_replicas)
for id in $new_ids; do
  wait_healthy "$id" "$health_timeout" ||
    give_up "new replica ${id:0:12} is $(health "$id") after $health_timeout s: $(last_health_output "$id")"
done
say "new replicas healthy: $(tr '\n' ' ' <<<"$new_ids" | cut -c 1-80)"

# Their share of 5xx over the watch: the counters of every new replica, before and after.
answered() {
  local id
  for id in $new_ids; do
    docker exec "$id" python -c "$print_metrics"
  done | awk '/^http_requests_total\{/ {all += $NF; if ($0 ~ /status="5xx"/) bad += $NF}
    END {printf "%d %d\n", all, bad}'
}
read -r all_before bad_before < <(answered)
sleep "$watch"
read -r all_after bad_after < <(answered)
all=$((all_after - all_before)) bad=$((bad_after - bad_before))
((bad * 100 <= all * max_5xx_percent)) ||
  give_up "the new replicas answered $bad of their $all requests with a 5xx in $watch s (limit $max_5xx_percent%)"
say "new replicas answered $all requests in $watch s, $bad with a 5xx"

for id in $old_ids; do
  # SIGTERM: gunicorn stops accepting and finishes what it serves (graceful_timeout, 20 s).
  docker stop --time 30 "$id" >/dev/null
  docker rm "$id" >/dev/null
  say "old replica ${id:0:12} stopped"
done
if [[ $action == deploy ]]; then
  say "deployed $image:$commit"
else
  say "rolled back to $image:previous"
fi
