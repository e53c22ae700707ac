#!/usr/bin/env bash
# Usage: scripts/swarm-secrets.sh   (make swarm-secrets)
# Creates the stack's Swarm secrets (<SWARM_STACK>_<name>) from the files `make secrets` and
# `make certs` wrote in SECRETS_DIR and CERTS_DIR. An existing secret is kept: Swarm secrets cannot
# change (docs/swarm.md says how to replace one). Once created, the files may leave this host,
# but for db_root_password on the db node: make restore and make db-shell log in as root with it.
set -euo pipefail
# shellcheck source=scripts/lib/swarm.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/swarm.sh"

certs_dir=${CERTS_DIR:-$repo/certs}
swarm_manager

# name=file: the secrets compose.swarm.yaml names.
sources=(
  "tls_certificate=$certs_dir/server.crt"
  "tls_key=$certs_dir/server.key"
)
for name in "${secret_names[@]}"; do
  sources+=("$name=$secrets_dir/$name")
done

for source in "${sources[@]}"; do
  name=${swarm_stack}_${source%%=*} file=${source#*=}
  if docker secret inspect "$name" >/dev/null 2>&1; then
    say "kept     $name"
    continue
  fi
  [[ -s $file ]] || die "$file is missing or empty (make secrets; make certs)"
  docker secret create "$name" "$file" >/dev/null
  say "created  $name (from $file)"
done
