#!/usr/bin/env bash
# Usage: images="$(scripts/prepare-docker.sh)"; export $images   (as `make test` does)
# Starts the Docker engine (installed by make deps) where it can (root), then on a machine without
# a registry builds stand-ins for the official images at the shipped versions (monitoring's too, and
# the oldest supported MariaDB for the upgrade test), printing KEY=VALUE lines.
set -euo pipefail

# Registry-free stand-ins: ../shared/offline-images/ beside this checkout (its README says how
# they are made), where the machine has it.
offline_build=${OFFLINE_IMAGES_BUILD:-$(dirname "$0")/../../shared/offline-images/build}

# stdout carries only the KEY=VALUE lines; everything else goes to stderr.
log() { echo "prepare-docker: $*" >&2; }

engine_answers() { timeout 30 docker info >/dev/null 2>&1; }

# The compose tier's engine is started here when it can be; where it cannot, the tests skip that
# tier and say why.
ensure_engine() {
  engine_answers && return 0
  if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null; then
    log "no Docker here: make deps installs it (docker.io)"
    return 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    log "no Docker engine answers; as root, start it (systemctl start docker)"
    return 1
  fi
  local state
  state=$(systemctl is-system-running 2>/dev/null) || true
  if [[ -n $state && $state != offline ]]; then
    log "starting the docker service"
    systemctl start docker >&2 || true
  elif ! engine_answers; then
    log "starting dockerd (log: /var/log/dockerd.log)"
    # Its own session and no inherited stdout: the caller's $(...) must not wait for dockerd.
    setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &
  fi
  for _ in $(seq 60); do engine_answers && return 0; sleep 1; done
  log "the Docker engine did not answer within 60 s (see /var/log/dockerd.log or journalctl -u docker)"
  return 1
}

if ! ensure_engine; then
  log "no Docker engine: the compose tier will be skipped (the test summary says why)"
  exit 0
fi

if [[ -n ${PYTHON_IMAGE:-}${NGINX_IMAGE:-}${MARIADB_IMAGE:-} ]]; then
  log "using the images given in PYTHON_IMAGE/NGINX_IMAGE/MARIADB_IMAGE"
  exit 0
fi

if [[ -f $offline_build ]]; then
  requirements=$(dirname "$0")/../backend/requirements.txt
  log "no registry here: building stand-in images with $offline_build"
  # The versions compose.yaml ships (--current: nginx 1.30, MariaDB 11.8, Python 3.13), with
  # --monitoring's PROMETHEUS_IMAGE, MYSQLD_EXPORTER_IMAGE and NGINX_EXPORTER_IMAGE as well.
  bash "$offline_build" --current --monitoring -r "$requirements"
  # The oldest supported MariaDB, for the upgrade test (tests/containers/test_mariadb_upgrade.py):
  # the default set's MARIADB_IMAGE, printed under the name that test reads.
  bash "$offline_build" -r "$requirements" | sed -n 's/^MARIADB_IMAGE=/MARIADB_UPGRADE_FROM_IMAGE=/p'
  exit 0
fi

log "Docker engine is running; the official images will be pulled"
