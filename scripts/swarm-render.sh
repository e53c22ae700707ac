#!/usr/bin/env bash
# Usage: scripts/swarm-render.sh   (make swarm-config)
# Prints the stack file scripts/swarm-deploy.sh deploys: compose.yaml + compose.prod.yaml +
# compose.swarm.yaml as `docker compose config` merges them, in the form `docker stack deploy`
# reads (compose.swarm.yaml's header says why a render step is needed).
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

# The files that become Swarm configs (compose.swarm.yaml): a change gives them new names.
CONFIG_DIGEST=$(cd "$repo" && cat db/conf.d/server.cnf db/initdb.d/*.sh scripts/backup-service.sh \
  scripts/backup.sh scripts/lib/dump-facts.awk | sha256sum | cut -c 1-12)
export CONFIG_DIGEST SWARM_STACK=$stack

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
