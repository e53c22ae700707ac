#!/usr/bin/env bash
# Usage: scripts/reload-proxy.sh   (make reload-proxy)
# nginx re-reads its configuration and certificates (nginx -s reload) in the running stack: new
# workers take new connections, old ones finish theirs, no request is dropped.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

reload_proxy
say "nginx reloaded ($runtime)"
