#!/usr/bin/env bash
# Usage: scripts/deploy.sh            (make deploy)    this checkout's backend, without a failed request
#        scripts/deploy.sh rollback   (make rollback)  back to the backend image the last deploy replaced
# docs/deploy.md, "Deploying a new version". Both run the new code's expand migrations first (the
# release before works on an expanded schema; contract migrations wait for make migrate-contract),
# and accept new code once it is ready (/readyz answers: a database round trip) within
# DEPLOY_HEALTH_TIMEOUT seconds (120) and has answered at most DEPLOY_MAX_5XX_PERCENT (5) of the
# requests nginx sent it over DEPLOY_WATCH seconds (15) with a 5xx.
#   compose (production): builds the backend and migrate images, tags the new one with the commit
#     and keeps the running one as :previous, then replaces the replicas one at a time: a new one
#     starts beside the running ones, is accepted, and one old replica stops, finishing its
#     requests. Otherwise the image the old replicas run is the service's again, replicas of it
#     replace the old ones already stopped, the new ones go, and the script exits 1 saying why.
#     rollback does the same with :previous.
#   native: gunicorn's graceful reload (HUP) brings up a new generation of workers with this
#     checkout's code, which is then accepted or not; natively nothing rolls back by itself.
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

# metrics_of REPLICA: the metrics page of its gunicorn (natively, of the one gunicorn).
metrics_of() {
  if [[ $runtime == native ]]; then
    METRICS_BIND=$BACKEND_METRICS_BIND "$PYTHON" -c "$print_metrics"
  else
    docker exec "$1" python -c "$print_metrics"
  fi
}

# accepted REPLICA: whether it turns ready (backend_ready asks /readyz at each scrape) and then
# answers at most max_5xx_percent of the requests nginx sends it over the watch with a 5xx (nginx
# knows a new replica within a second: the upstream re-resolves `backend`). $verdict says why.
accepted() {
  local deadline=$((SECONDS + health_timeout)) all_before bad_before all bad
  until metrics_of "$1" 2>/dev/null | grep '^backend_ready 1' >/dev/null; do
    verdict="not ready within $health_timeout s"
    ((SECONDS < deadline)) || return 1
    sleep 1
  done
  verdict="gave no metrics"
  read -r all_before bad_before < <(answered "$1") || return 1
  sleep "$watch"
  read -r all bad < <(answered "$1") || return 1
  all=$((all - all_before)) bad=$((bad - bad_before))
  verdict="answered $bad of its $all requests with a 5xx in $watch s (limit $max_5xx_percent%)"
  ((bad * 100 <= all * max_5xx_percent))
}

# answered REPLICA: "ALL 5XX", the requests it has answered so far, and those with a 5xx.
answered() {
  metrics_of "$1" | awk '/^http_requests_total\{/ {all += $NF; if ($0 ~ /status="5xx"/) bad += $NF}
    END {printf "%d %d\n", all, bad}'
}

if [[ $runtime == native ]]; then
  [[ $action == deploy ]] ||
    die "natively there is no image to go back to: check out the release before, then make deploy"
  migrated=$(run_migrate 2>&1) ||
    die "the expand migrations failed, the workers have not changed:
$(tail -n 20 <<<"$migrated")"
  say "expand migrations done"
  restart_backends
  accepted native ||
    die "the new workers $verdict; natively nothing rolls back by itself: check out the release before, then make deploy"
  say "the new workers are ready; they $verdict"
  say "deployed $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo "this checkout")"
  exit 0
fi

project=$("${compose[@]}" config | sed -n 's/^name: //p')
image=$project-backend
old_ids=$("${compose[@]}" ps --quiet backend)
[[ -n $old_ids ]] || die "no backend replica runs: start production first (make prod-up)"
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

# start_replica: one more backend replica, of the service's image; prints its id.
start_replica() {
  local before
  before=$("${compose[@]}" ps --all --quiet backend | sort)
  "${compose[@]}" up --detach --no-deps --no-recreate \
    --scale "backend=$(($(wc -l <<<"$before") + 1))" backend >/dev/null 2>&1 || return 1
  comm -13 <(echo "$before") <("${compose[@]}" ps --all --quiet backend | sort)
}

# stop_replica REPLICA: SIGTERM; gunicorn stops accepting and finishes what it serves
# (graceful_timeout, 20 s); nginx sends a request that finds it gone to another replica.
stop_replica() {
  docker stop --time 30 "$1" >/dev/null
  docker rm "$1" >/dev/null
}

new="" new_ids="" stopped=0
# give_up REASON: the old image is the service's again. The failing new replica goes, as many
# replicas of the old image as old ones stopped start (healthy before the other new replicas
# go, finishing their requests), and the script exits 1.
give_up() {
  local id
  docker tag "$running" "$image"
  [[ -z $new ]] || stop_replica "$new" 2>/dev/null || true
  for _ in $(seq "$stopped"); do
    if ! id=$(start_replica) || ! wait_healthy "$id" "$health_timeout"; then
      say "warning: a replica of the image before did not turn healthy: ${id:-none started}"
    fi
  done
  for id in $new_ids; do
    [[ $id == "$new" ]] || stop_replica "$id" 2>/dev/null || true
  done
  die "rolled back: $1; the image before serves again"
}

for old in $old_ids; do
  new=$(start_replica) || give_up "compose could not start a new replica"
  new_ids+="$new "
  wait_healthy "$new" "$health_timeout" ||
    give_up "new replica ${new:0:12} not ready within $health_timeout s ($(docker inspect --format \
      '{{.State.Status}}, {{.State.Health.Status}}' "$new")): $(last_health_output "$new")"
  accepted "$new" || give_up "new replica ${new:0:12} $verdict"
  say "new replica ${new:0:12} is ready; it $verdict"
  stop_replica "$old"
  stopped=$((stopped + 1))
  say "old replica ${old:0:12} stopped"
done
if [[ $action == deploy ]]; then
  say "deployed $image:$commit"
else
  say "rolled back to $image:previous"
fi
