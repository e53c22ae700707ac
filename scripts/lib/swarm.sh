# shellcheck shell=bash disable=SC2034 # the variables are read by the sourcing scripts
# Sourced by the swarm-*.sh scripts: the stack's images, how they reach the nodes, and the waits
# on Swarm. Never run on its own.
#   SWARM_STACK   the stack's name (default hardened-stack-swarm); its secrets and configs carry it.
#   REGISTRY      where nodes pull the images from (host[:port][/path]); unset: this node's images.
#   IMAGE_TAG     the images' tag (default: the commit checked out here).
#   BACKEND_IMAGE, PROXY_IMAGE   the full names, when they come from elsewhere.

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

tag=${IMAGE_TAG:-$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo latest)}
registry=${REGISTRY:+${REGISTRY%/}/}
export BACKEND_IMAGE=${BACKEND_IMAGE:-${registry}hardened-stack-backend:$tag}
export PROXY_IMAGE=${PROXY_IMAGE:-${registry}hardened-stack-proxy:$tag}
# From a registry: pinned to its digest, pulled with this client's login. Local images (one
# node) have neither a digest nor a login.
if [[ -n $registry ]]; then
  deploy_options=(--resolve-image always --with-registry-auth)
  update_options=(--with-registry-auth)
else
  deploy_options=(--resolve-image never)
  update_options=(--no-resolve-image)
fi

swarm_manager() {
  [[ $(docker info --format '{{.Swarm.ControlAvailable}}' 2>/dev/null) == true ]] ||
    die "this Docker engine is not a swarm manager (make swarm-init makes a single-node swarm)"
}

# job_tasks SERVICE: the ids of the replicated job SERVICE's tasks so far (none: no such service).
job_tasks() {
  docker service ps --quiet "$1" 2>/dev/null || true
}

# wait_job SERVICE KNOWN_TASKS: the replicated job SERVICE runs again (tasks other than the
# KNOWN_TASKS ids); returns once one of them completes, fails once its attempts are used up.
wait_job() {
  local service=$1 known=$2 timeout=${SWARM_JOB_TIMEOUT:-300} attempts new states
  local deadline=$((SECONDS + timeout))
  # 0: no limit but the timeout.
  attempts=$(docker service inspect --format '{{.Spec.TaskTemplate.RestartPolicy.MaxAttempts}}' "$service")
  while ((SECONDS < deadline)); do
    new=$(comm -13 <(sort <<<"$known") <(job_tasks "$service" | sort))
    if [[ -n $new ]]; then
      # shellcheck disable=SC2086 # one id per word
      states=$(docker inspect --format '{{.Status.State}}' $new)
      grep -qx complete <<<"$states" && return 0
      if ((attempts > 0 && $(grep -cxE 'failed|rejected' <<<"$states") > attempts)); then
        docker service logs --raw --tail 20 "$service" >&2 || true
        die "$service failed $((attempts + 1)) times (its last output is above)"
      fi
    fi
    sleep 1
  done
  die "$service did not complete within $timeout s (SWARM_JOB_TIMEOUT)"
}

# wait_converged SINCE: every service of the stack runs all its replicas on the image of its spec,
# and none updated since SINCE (epoch seconds) was rolled back or paused. Swarm counts a replica
# once it is healthy.
wait_converged() {
  local since=$1 timeout=${SWARM_DEPLOY_TIMEOUT:-600} name mode replicas state started message
  local pending image deadline=$((SECONDS + timeout))
  while ((SECONDS < deadline)); do
    pending=""
    while IFS='|' read -r name mode replicas; do
      [[ $mode == *job ]] && continue
      IFS='|' read -r image state started message < <(docker service inspect --format \
        '{{.Spec.TaskTemplate.ContainerSpec.Image}}|{{with .UpdateStatus}}{{.State}}|{{.StartedAt.Unix}}|{{.Message}}{{end}}' \
        "$name")
      if [[ -n $state ]] && ((started >= since)); then
        case $state in
          rollback_completed)
            die "$name was rolled back to its previous version; a new replica failed: $(
              docker service ps --no-trunc --format '{{.Error}}' "$name" | grep -m 1 .)" ;;
          paused | rollback_paused) die "$name's update stopped ($state): $message" ;;
          updating | rollback_started) pending+=" $name($state)" && continue ;;
        esac
      fi
      # Right after the deploy, a service may not have begun its update: its old replicas
      # still count as running.
      if docker service ps --no-trunc --filter desired-state=running --format '{{.Image}}' "$name" |
        grep -qvxF "$image"; then
        pending+=" $name(replacing)"
      elif ! [[ ${replicas%% *} =~ ^([0-9]+)/([0-9]+)$ && ${BASH_REMATCH[1]} == "${BASH_REMATCH[2]}" ]]; then
        pending+=" $name($replicas)"
      fi
    done < <(docker stack services --format '{{.Name}}|{{.Mode}}|{{.Replicas}}' "$swarm_stack")
    [[ -z $pending ]] && return 0
    sleep 2
  done
  die "not converged within $timeout s (SWARM_DEPLOY_TIMEOUT):$pending; see docker stack ps $swarm_stack"
}

# wait_served: the proxy on this node passes a request to a backend and returns its answer. Swarm's
# DNS names a replica only once it is healthy, and nginx asks it every second
# (proxy/templates/upstream.conf.template): on a first deploy, whose proxy started before any
# replica, nginx knows none for up to two seconds after every service is healthy.
wait_served() {
  local proxy=${swarm_stack}_proxy port name url deadline=$((SECONDS + 30))
  if [[ $(docker node inspect self --format '{{.Spec.Labels.proxy}}') != true ]]; then
    say "this node runs no proxy (label proxy=true): its path to the backend is not checked from here"
    return 0
  fi
  # The HTTPS port and the first served name as deployed: nginx answers 421 to any other name.
  port=$(docker service inspect --format \
    '{{range .Endpoint.Ports}}{{if eq .TargetPort 8443}}{{.PublishedPort}}{{end}}{{end}}' "$proxy")
  name=$(docker service inspect "$proxy" \
    --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{println .}}{{end}}' |
    sed -n 's/^PROXY_SERVER_NAME=\([^ ]*\).*/\1/p')
  url="https://$name:$port/healthz"
  # --insecure: the question is whether a backend answers, whoever signed the certificate (the
  # dev CA is no trusted one).
  until curl --silent --fail --insecure --max-time 2 --output /dev/null \
    --connect-to "$name:$port:127.0.0.1:$port" "$url"; do
    ((SECONDS < deadline)) || die "the proxy on this node reaches no backend 30 s after the deploy ($url on 127.0.0.1)"
    sleep 0.2
  done
}
