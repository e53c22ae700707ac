#!/usr/bin/env bash
# Usage: scripts/migrate-contract.sh   (make migrate-contract)
# Runs the contract migrations (python -m app.migrate --contract): those that drop, rename or
# narrow what the release before used. Refuses while any backend worker runs code written for
# other migrations than the ones it would run (on Swarm: a task runs another image than the
# migrate job's): deploy the release to every replica first.
# docs/deploy.md, "Schema changes: expand, then contract".
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

# Swarm: every backend task runs the migrate job's image, on whichever node.
[[ $runtime != swarm ]] || exec "$(dirname "${BASH_SOURCE[0]}")/swarm-migrate.sh" --contract

heads=$(run_migrate --heads) || die "cannot read the migrations' heads ($runtime)"
running=$(backend_schema_heads) ||
  die "cannot read which schema the backend workers need: is the backend running?"
[[ -n $running ]] || die "no backend worker reports the schema it needs: is the backend running?"
behind=$(awk -v heads="$heads" '$2 != heads {print "  replica " $1 ": code for " $2}' <<<"$running" | sort -u)
[[ -z $behind ]] ||
  die "refused: the contract step is for code with migrations $heads, but backend workers run other code:
$behind
deploy this release to every replica first; the schema is unchanged"
say "every backend worker ($(wc -l <<<"$running")) runs code for migrations $heads"

run_migrate --contract
say "contract migrations done: the schema has every migration up to $heads"
