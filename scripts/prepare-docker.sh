#!/usr/bin/env bash
# Usage: eval "$(scripts/prepare-docker.sh)"   (used by `make test` and `make test-compose`)
# Starts a Docker engine if none answers, and on a machine without a container registry builds
# stand-ins for the official images, printing PYTHON_IMAGE=... lines to export. Progress: stderr.
set -euo pipefail

# Registry-free stand-ins (see shared/offline-images/README.md), if this checkout has them beside it.
offline_build=${OFFLINE_IMAGES_BUILD:-$(dirname "$0")/../../shared/offline-images/build}

log() { echo "prepare-docker: $*" >&2; }

if [[ -n ${PYTHON_IMAGE:-}${NGINX_IMAGE:-}${MARIADB_IMAGE:-} ]]; then
  log "using the images given in PYTHON_IMAGE/NGINX_IMAGE/MARIADB_IMAGE"
  exit 0
fi

if [[ -f $offline_build ]]; then
  # The build script installs docker.io and Compose and starts dockerd when needed.
  log "no registry here: building stand-in images with $offline_build"
  bash "$offline_build" -r "$(dirname "$0")/../backend/requirements.txt"
  exit 0
fi

if docker info >/dev/null 2>&1; then
  log "Docker engine is running; the official images will be pulled"
  exit 0
fi
if command -v dockerd >/dev/null && [[ $(id -u) -eq 0 ]]; then
  log "starting dockerd (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done
  log "dockerd did not answer within 60 s; see /var/log/dockerd.log"
fi
log "no Docker engine: the compose tier will be skipped"
