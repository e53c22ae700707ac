#!/usr/bin/env bash
# Usage: scripts/deploy.sh            (make deploy)    this checkout's backend, replica by replica
#        scripts/deploy.sh rollback   (make rollback)  back to the backend image the last deploy replaced
# Without a failed request; docs/deploy.md, "Deploying a new version". Production under compose
# (compose.yaml + compose.prod.yaml), or natively:
#   deploy: builds the backend and migrate images, tags the new one with the commit and keeps the
#     running one as :previous, runs the expand migrations (the migrate service), then rolls.
#   rollback: rolls to :previous. The schema stays: the release before works on an expanded one,
#     and contract migrations wait for make migrate-contract.
# Rolling, one replica at a time: a new replica starts beside the running ones. Once it is healthy
# and ready (/readyz answers: a database round trip) within DEPLOY_HEALTH_TIMEOUT seconds (120),
# and has answered at most DEPLOY_MAX_5XX_PERCENT (5) of its requests (health checks aside) with
# a 5xx over DEPLOY_WATCH seconds (15), one old replica stops, finishing its requests; then the
# next. Otherwise every replica of the new image goes, the image before is the service's again,
# on as many replicas as before, and the script exits 1 saying why.
#   natively: this checkout's expand migrations, then gunicorn's graceful reload (HUP: a new
#     generation of workers imports the code on disk), accepted as a new replica is. Nothing rolls
#     back by itself (no image of the code before), and rollback is refused.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

action=${1:-deploy}
[[ $action == deploy || $action == rollback ]] || die "usage: $0 [rollback]"
[[ $runtime != swarm ]] ||
  die "on Swarm: make swarm-deploy (BACKEND_IMAGE=<the image before> goes back)"
health_timeout=${DEPLOY_HEALTH_TIMEOUT:-120}
watch=${DEPLOY_WATCH:-15}
max_5xx_percent=${DEPLOY_MAX_5XX_PERCENT:-5}

# start_replica: one more backend replica, of the service's image; prints its id.
start_replica() {
  local before output
  before=$("${compose[@]}" ps --all --quiet backend | sort)
  # --no-recreate: the running replicas stay as they are, though their image is no longer the
  # service's.
  output=$("${compose[@]}" up --detach --no-deps --no-recreate \
    --scale "backend=$(($(grep -c . <<<"$before") + 1))" backend 2>&1) ||
    { tail -n 3 <<<"$output" >&2 && return 1; }
  comm -13 <(echo "$before") <("${compose[@]}" ps --all --quiet backend | sort)
}

# stop_replica REPLICA: SIGTERM; gunicorn stops accepting and finishes what it serves
# (graceful_timeout, 20 s); nginx sends a request that finds it gone to another replica.
stop_replica() {
  docker stop --time 30 "$1" >/dev/null
  docker rm "$1" >/dev/null
}

# answered REPLICA: "ALL 5XX", the requests it has answered so far (its health checks and
# readiness probes aside), and those with a 5xx.
answered() {
  replica_metrics "$1" |
    awk '/^http_requests_total\{/ && !/route="\/(healthz|readyz)"/ {
        all += $NF; if ($0 ~ /status="5xx"/) bad += $NF
      } END {printf "%d %d\n", all, bad}'
}

# judge REPLICA: "accepted: ..." once the new replica is healthy, ready (backend_ready asks
# /readyz at each scrape) and within the 5xx limit over the watch (nginx sends it requests within a
# second: the upstream re-resolves `backend`), all within health_timeout; else "rejected: why".
judge() {
  local deadline=$((SECONDS + health_timeout)) before after all_before bad_before all bad
  [[ $runtime == native ]] || wait_healthy "$1" "$health_timeout" || {
    echo "rejected: is not healthy within $health_timeout s ($(docker inspect --format \
      '{{.State.Status}}, {{.State.Health.Status}}' "$1" 2>&1)): $(last_health_output "$1")"
    return
  }
  until replica_metrics "$1" 2>/dev/null | grep '^backend_ready 1' >/dev/null; do
    ((SECONDS < deadline)) || { echo "rejected: is healthy but not ready within $health_timeout s" && return; }
    sleep 1
  done
  before=$(answered "$1") || { echo "rejected: gave no metrics" && return; }
  sleep "$watch"
  after=$(answered "$1") || { echo "rejected: gave no metrics after $watch s" && return; }
  read -r all_before bad_before <<<"$before"
  read -r all bad <<<"$after"
  all=$((all - all_before)) bad=$((bad - bad_before))
  if ((bad * 100 > all * max_5xx_percent)); then
    echo "rejected: answered $bad of its $all requests with a 5xx in $watch s (limit $max_5xx_percent%)"
  else
    echo "accepted: ready, and answered $all requests in $watch s, $bad with a 5xx"
  fi
}

# give_up REASON: every replica of another image than the one before goes (finishing its
# requests); then replicas of the image before start up to the count before the deploy.
give_up() {
  local id
  docker tag "$running" "$image"
  for id in $("${compose[@]}" ps --all --quiet backend); do
    [[ $(docker inspect --format '{{.Image}}' "$id") == "$running" ]] || stop_replica "$id" || true
  done
  "${compose[@]}" up --detach --no-deps --no-recreate --scale "backend=$replicas" backend >/dev/null 2>&1 ||
    die "rolled back: $1; compose could not start the replicas of the image before: make prod-up"
  for id in $("${compose[@]}" ps --quiet backend); do
    wait_healthy "$id" "$health_timeout" ||
      die "rolled back: $1; replica ${id:0:12} of the image before is $(health "$id")"
  done
  die "rolled back: $1; the image before serves again, on $replicas replicas"
}

if [[ $runtime == native ]]; then
  [[ $action == deploy ]] ||
    die "natively there is no image to go back to: check out the release before, then make deploy"
  migrated=$(run_migrate 2>&1) ||
    die "the expand migrations failed, the workers have not changed:
$(tail -n 20 <<<"$migrated")"
  say "expand migrations done"
  restart_backends
  verdict=$(judge native)
  [[ $verdict == accepted:* ]] ||
    die "the new workers ${verdict#rejected: }; natively nothing rolls back by itself: check out the release before, then make deploy"
  say "the new workers are $verdict"
  exit 0
fi

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

for old in $old_ids; do
  new=$(start_replica) || give_up "compose could not start a new replica"
  verdict=$(judge "$new")
  [[ $verdict == accepted:* ]] || give_up "new replica ${new:0:12} ${verdict#rejected: }"
  say "new replica ${new:0:12} $verdict"
  stop_replica "$old" || say "old replica ${old:0:12} was gone already"
  say "old replica ${old:0:12} stopped"
done
if [[ $action == deploy ]]; then
  say "deployed $image:$commit"
else
  say "rolled back to $image:previous"
fi
