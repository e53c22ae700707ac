#!/usr/bin/env bash
# Usage: scripts/restart-backend.sh   (make restart-backend)
# Every backend process starts again, one replica (compose, Swarm) or one generation of gunicorn
# workers (native) at a time while the others serve: after a change to the backend's environment
# or its secret files, no request is dropped.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

restart_backends
say "backend restarted ($runtime)"
