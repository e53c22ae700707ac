#!/usr/bin/env bash
# Usage: scripts/swarm-images.sh   (make swarm-images)
# Builds the production backend and proxy images, tags them BACKEND_IMAGE and PROXY_IMAGE (from
# REGISTRY and IMAGE_TAG, scripts/lib/swarm.sh), and pushes them when REGISTRY is set: Swarm nodes
# pull images, they never build. Prints the two names.
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

# Compose builds them, exactly as `make prod-up` does (same files, targets and base images), under
# a project of its own so that a production stack on this host keeps its images.
build_project=${swarm_stack}-images
# compose.prod.yaml requires SERVER_NAME even to build; no image contains it.
SERVER_NAME=${SERVER_NAME:-localhost} "${compose[@]}" -p "$build_project" \
  -f "$repo/compose.yaml" -f "$repo/compose.prod.yaml" build backend proxy >&2
docker tag "$build_project-backend" "$BACKEND_IMAGE"
docker tag "$build_project-proxy" "$PROXY_IMAGE"
docker image rm "$build_project-backend" "$build_project-proxy" >/dev/null
if [[ -n $registry ]]; then
  docker push "$BACKEND_IMAGE" >&2
  docker push "$PROXY_IMAGE" >&2
fi
echo "BACKEND_IMAGE=$BACKEND_IMAGE"
echo "PROXY_IMAGE=$PROXY_IMAGE"
