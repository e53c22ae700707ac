# shellcheck shell=bash
# Sourced by the operation scripts (backup-now, restore, rotate-secret, reload-proxy, db-shell):
# reaches the running stack, whichever runtime runs it. Never run on its own.
#   STACK_RUNTIME=compose: production, `docker compose -f compose.yaml -f compose.prod.yaml`
#     (COMPOSE_COMMAND replaces "docker compose"; COMPOSE_PROJECT_NAME and .env apply as usual).
#   STACK_RUNTIME=native: the processes `make native-up` started, described by the file it writes
#     (NATIVE_STACK_ENV, default .run/native/stack.env): DB_HOST, DB_PORT, DB_SOCKET,
#     BACKEND_PID_FILE, BACKEND_METRICS_BIND, PROXY_PID_FILE, PYTHON, MIGRATE_ENV_FILE.
#   Unset or empty: native while that stack's nginx runs, else compose.
#   STACK_RUNTIME=swarm: the stack `make swarm-deploy` deployed (SWARM_STACK), through its
#     containers on this node: run these on the node labelled db=true (docs/swarm.md).
# Whichever runtime, the secrets are the files in SECRETS_DIR (default ./secrets), read on this host.

# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

native_env=${NATIVE_STACK_ENV:-$repo/.run/native/stack.env}
# native_runs: the native stack's nginx is alive. Its description alone proves nothing: a stack
# that died with its machine leaves the file behind.
native_runs() {
  [[ -r $native_env ]] && (
    # shellcheck source=/dev/null
    source "$native_env" && kill -0 "$(<"$PROXY_PID_FILE")"
  ) 2>/dev/null
}
runtime=${STACK_RUNTIME:-}
if [[ -z $runtime ]]; then
  if native_runs; then runtime=native; else runtime=compose; fi
fi
case $runtime in
  compose)
    compose+=(-f "$repo/compose.yaml" -f "$repo/compose.prod.yaml")
    ;;
  native)
    [[ -r $native_env ]] || die "no native stack: $native_env is missing (start one with make native-up)"
    # shellcheck source=/dev/null
    source "$native_env"
    ;;
  swarm) ;;
  *) die "STACK_RUNTIME=$runtime: must be compose, native or swarm" ;;
esac

# swarm_container SERVICE: a running container of the Swarm service SERVICE on this node.
swarm_container() {
  local id
  id=$(docker ps --quiet --filter "label=com.docker.swarm.service.name=${swarm_stack}_$1" | head -n 1)
  [[ -n $id ]] ||
    die "no container of ${swarm_stack}_$1 runs on this node: run this where it runs (docker service ps ${swarm_stack}_$1)"
  echo "$id"
}

# service_exec SERVICE COMMAND...: run COMMAND in SERVICE's container, with stdin passed through.
service_exec() {
  local service=$1
  shift
  if [[ $runtime == swarm ]]; then
    docker exec -i "$(swarm_container "$service")" "$@"
  else
    "${compose[@]}" exec -T "$service" "$@"
  fi
}

# db_exec COMMAND...: run COMMAND where the database runs (inside the db container, or here),
# with stdin passed through.
db_exec() {
  if [[ $runtime == native ]]; then
    "$@"
  else
    service_exec db "$@"
  fi
}

# A mariadb client that takes the password from the first line of stdin and the rest of stdin as
# its input: the password never appears on a command line, in an environment or in a file.
# (--defaults-extra-file must be the first option.)
# shellcheck disable=SC2016
client_reading_password='IFS= read -r password
exec mariadb --defaults-extra-file=<(printf "[client]\nuser=%s\npassword=\"%s\"\n" "$0" "$password") "$@"'

# db_client USER PASSWORD_FILE MARIADB_OPTION...: the mariadb client where the db runs, as USER
# with the password in PASSWORD_FILE (read here, on this host), SQL on stdin. Root uses the
# socket (it has no network login); every other account logs in over TCP, as its consumers do.
db_client() {
  local user=$1 password_file=$2 password
  shift 2
  [[ -r $password_file ]] || die "cannot read $password_file (SECRETS_DIR=$secrets_dir)"
  password=$(<"$password_file")
  local where=(--protocol=socket)
  if [[ $runtime == native ]]; then
    where=(--protocol=socket "--socket=$DB_SOCKET")
    [[ $user == root ]] || where=(--protocol=tcp "--host=$DB_HOST" "--port=$DB_PORT")
  elif [[ $user != root ]]; then
    where=(--protocol=tcp --host=127.0.0.1 --port=3306)
  fi
  # utf8mb4: the 10.11 client's default is utf8mb3, which cannot carry an emoji (11.x: utf8mb4).
  { printf '%s\n' "$password"; cat; } |
    db_exec bash -c "$client_reading_password" "$user" --default-character-set=utf8mb4 "${where[@]}" "$@"
}

# root_sql: SQL on stdin, run as root over the socket; tab-separated rows out.
root_sql() {
  db_client root "$secrets_dir/db_root_password" --batch --skip-column-names
}

# native_workers: pids of the gunicorn workers under the native master, one a line.
native_workers() {
  pgrep -P "$(<"$BACKEND_PID_FILE")" | sort
}

# health CONTAINER: its health check's status (starting, healthy, unhealthy).
health() { docker inspect --format '{{.State.Health.Status}}' "$1"; }

# wait_healthy CONTAINER SECONDS: returns 0 once CONTAINER is healthy, 1 after SECONDS or once
# it no longer runs.
wait_healthy() {
  local deadline=$((SECONDS + $2))
  until [[ $(health "$1") == healthy ]]; do
    ((SECONDS < deadline)) && [[ $(docker inspect --format '{{.State.Running}}' "$1") == true ]] ||
      return 1
    sleep 1
  done
}

# last_health_output CONTAINER: what its last health check printed, on one line.
last_health_output() {
  docker inspect --format '{{with .State.Health}}{{range .Log}}{{.Output}}{{end}}{{end}}' "$1" |
    tail -n 3 | tr '\n' ' '
}

# restart_backends: every backend process starts again and so reads its secret files anew,
# one replica (compose, Swarm) or one generation of workers (native) at a time, while the others
# serve.
restart_backends() {
  if [[ $runtime == swarm ]]; then
    # A rolling update to the same image, in the service's own order (compose.swarm.yaml:
    # start-first, each new task healthy before the old one stops).
    docker service update --quiet --force --detach=false "${swarm_stack}_backend" >/dev/null
    say "backend service ${swarm_stack}_backend updated, task by task"
  elif [[ $runtime == compose ]]; then
    local id ids fail_timeout
    # nginx sends a replica that failed a request (refused while it restarted) nothing for
    # fail_timeout, and answers 502 while every replica is marked so: the next one restarts
    # only once nginx may use this one again.
    fail_timeout=$(sed -n 's/.*fail_timeout=\([0-9]*\)s.*/\1/p' "$repo/proxy/templates/upstream.conf.template")
    [[ -n $fail_timeout ]] || die "no fail_timeout=<seconds>s in proxy/templates/upstream.conf.template"
    ids=$("${compose[@]}" ps --quiet backend)
    for id in $ids; do
      # A restart mounts the secret files again: a running container keeps the inode it
      # started with, and the atomic rename gave the file a new one.
      docker restart --time 30 "$id" >/dev/null
      wait_healthy "$id" 120 ||
        die "backend container ${id:0:12} is $(health "$id") 120 s after its restart: $(last_health_output "$id")"
      say "backend replica ${id:0:12} restarted and healthy"
      [[ $id == "$(tail -n 1 <<<"$ids")" ]] || sleep "$fail_timeout"
    done
  else
    [[ -r $BACKEND_PID_FILE ]] || die "gunicorn is not running ($BACKEND_PID_FILE is missing)"
    local before now
    before=$(native_workers)
    # gunicorn's graceful reload: new workers (which build their app, and read the secret
    # files, after the fork) start first; the old ones finish their requests and exit.
    kill -HUP "$(<"$BACKEND_PID_FILE")"
    for _ in $(seq 600); do
      now=$(native_workers)
      [[ -n $now ]] && [[ -z $(comm -12 <(echo "$before") <(echo "$now")) ]] &&
        [[ $(wc -l <<<"$now") -ge $(wc -l <<<"$before") ]] && break
      sleep 0.1
    done
    [[ -z $(comm -12 <(echo "$before") <(echo "$now")) ]] ||
      die "gunicorn still runs workers from before the reload after 60 s: ${now//$'\n'/ }"
    say "gunicorn reloaded: workers ${before//$'\n'/ } replaced by ${now//$'\n'/ }"
  fi
}

# The metrics of the gunicorn master beside it (METRICS_BIND in its environment), in the
# backend's own Python: the slim image has neither curl nor wget.
# shellcheck disable=SC2016
print_metrics='import os, urllib.request
port = os.environ["METRICS_BIND"].rpartition(":")[2]
print(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode())'

# replica_metrics REPLICA: the metrics page of a backend replica's gunicorn master (natively, of
# the one gunicorn, whatever REPLICA says).
replica_metrics() {
  if [[ $runtime == native ]]; then
    METRICS_BIND=$BACKEND_METRICS_BIND "$PYTHON" -c "$print_metrics"
  else
    docker exec "$1" python -c "$print_metrics"
  fi
}

# backend_schema_heads: "REPLICA HEADS" for each live gunicorn worker of every backend replica,
# HEADS being the migration heads its code ships (the backend_schema_heads metric).
backend_schema_heads() {
  local id
  if [[ $runtime == native ]]; then
    replica_metrics native | heads_of_workers native
  else
    for id in $("${compose[@]}" ps --quiet backend); do
      replica_metrics "$id" | heads_of_workers "${id:0:12}"
    done
  fi
}
# heads_of_workers REPLICA: the backend_schema_heads lines of a metrics page, as "REPLICA HEADS".
heads_of_workers() { sed -n "s/^backend_schema_heads{.*heads=\"\([^\"]*\)\".*} 1\.0\$/$1 \1/p"; }

# run_migrate ARGS...: python -m app.migrate ARGS as the migrate service runs (compose: its
# image, on dbnet; natively: this checkout's code, in the environment the native stack gave it).
# On Swarm, the migrate job's image without a network: for what needs no database (--heads,
# --revisions); the job itself migrates (scripts/swarm-migrate.sh).
run_migrate() {
  if [[ $runtime == swarm ]]; then
    docker run --rm --network none "$(docker service inspect --format \
      '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${swarm_stack}_migrate")" python -m app.migrate "$@"
  elif [[ $runtime == native ]]; then
    (
      set -a
      # shellcheck source=/dev/null
      source "$MIGRATE_ENV_FILE"
      set +a
      cd "$repo/backend" && exec "$PYTHON" -m app.migrate "$@"
    )
  else
    "${compose[@]}" run --rm --no-deps -T migrate python -m app.migrate "$@"
  fi
}

# restart_backup_service: the backup service reads its secret file anew, and proves it with a
# backup (compose only; natively every `make backup` reads the file).
restart_backup_service() {
  [[ $runtime == compose ]] || return 0
  [[ -n $("${compose[@]}" ps --quiet backup) ]] || return 0
  "${compose[@]}" restart --timeout 30 backup >/dev/null
  "${compose[@]}" exec -T backup /opt/stack/scripts/backup.sh >/dev/null ||
    die "the restarted backup service could not take a backup"
  say "backup service restarted; it took a backup with the new password"
}

# proxy_workers: the pids of nginx's worker processes, one a line (the container's own pids under
# compose); a process that exits while they are read is left out.
proxy_workers() {
  if [[ $runtime == native ]]; then
    pgrep -P "$(<"$PROXY_PID_FILE")" | sort || true
  else
    # /proc, as not every nginx image has ps: nginx writes its process title over its cmdline.
    service_exec proxy sh -c 'grep -ls "^nginx: worker process" /proc/[0-9]*/cmdline' |
      cut -d/ -f3 | sort || true
  fi
}

# reload_proxy: nginx re-reads its configuration and certificate, gracefully: the old workers
# finish their requests. Returns once that is done (new workers serve, every old one has exited),
# so what follows meets only the new configuration.
reload_proxy() {
  [[ $runtime != swarm ]] ||
    die "on Swarm the proxy's configuration and certificate change by deploy: docs/swarm.md (Docker Swarm)"
  local before now deadline=$((SECONDS + 30))
  if [[ $runtime == compose ]]; then
    # A configuration nginx would refuse is reported here, not only in its error log.
    service_exec proxy nginx -t -q || die "nginx refuses the new configuration; it keeps the old one"
    before=$(proxy_workers)
    service_exec proxy nginx -s reload
  else
    [[ -r $PROXY_PID_FILE ]] || die "nginx is not running ($PROXY_PID_FILE is missing)"
    before=$(proxy_workers)
    kill -HUP "$(<"$PROXY_PID_FILE")"
  fi
  while ((SECONDS < deadline)); do
    now=$(proxy_workers)
    [[ -n $now && -z $(comm -12 <(echo "$before") <(echo "$now")) ]] && return 0
    sleep 0.2
  done
  die "nginx still runs workers from before the reload after 30 s (${now//$'\n'/ }): a refused configuration (see its error log), or a request that has not finished"
}
