#!/usr/bin/env bash
# Usage: scripts/swarm-render.sh   (make swarm-config)
# Prints the stack file scripts/swarm-deploy.sh deploys: compose.yaml + compose.prod.yaml +
# compose.swarm.yaml as `docker compose config` merges them, in the form `docker stack deploy`
# reads (compose.swarm.yaml's header says why a render step is needed).
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

# The files that become Swarm configs (compose.swarm.yaml), by consumer: an edited file gives
# its group new config names, and only that group's service is replaced.
digest() { (cd "$repo" && cat "$@" | sha256sum | cut -c 1-12); }
CONFIG_DIGEST_DB=$(digest db/conf.d/server.cnf db/initdb.d/*.sh)
CONFIG_DIGEST_BACKUP=$(digest scripts/backup-service.sh scripts/backup.sh scripts/lib/dump-facts.awk)
# No profile: the monitoring and certbot ones do not deploy on Swarm.
export CONFIG_DIGEST_DB CONFIG_DIGEST_BACKUP SWARM_STACK=$swarm_stack COMPOSE_PROFILES=

# What `docker stack deploy` reads differently from compose's output.
stack_file_fixes='
# No top-level name: the stack is named by its argument.
/^name: /d
# cpus as a string.
s/^( +cpus: )([0-9.]+)$/\1"\2"/
# Published ports and tmpfs sizes as numbers.
s/^( +(published|size): )"([0-9]+)"$/\1\3/
# File modes as (octal) numbers.
s/^( +mode: )"(0[0-7]+)"$/\1\2/
'

# --no-normalize: no compose project names on the networks and volumes (the stack names them).
"${compose[@]}" -f "$repo/compose.yaml" -f "$repo/compose.prod.yaml" -f "$repo/compose.swarm.yaml" \
  config --no-normalize | sed -E "$stack_file_fixes"
