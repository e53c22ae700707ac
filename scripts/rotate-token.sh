#!/usr/bin/env bash
# Usage: scripts/rotate-token.sh add|retire   (make rotate-token, then make retire-tokens)
# Rotates the API write tokens (SECRETS_DIR/api_tokens, one per line) without a refused request:
#   add:    appends a new random token, moves every backend to the file one replica (or one
#           generation of workers) at a time, and prints the new token. Every earlier token still
#           works: hand the new one to the writers.
#   retire: once they use it, keeps only the newest token (and the # comment lines), and moves
#           the backends again. The earlier tokens are refused from then on.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

[[ $runtime != swarm ]] ||
  die "Swarm secrets cannot change: rotate a token on Swarm as docs/swarm.md (Docker Swarm) says"
file=$secrets_dir/api_tokens
[[ -r $file ]] || die "cannot read $file (make secrets creates it)"

# token_lines: the file's tokens, as the backend reads them (blank lines and # comments skipped).
token_lines() { grep -v -e '^[[:space:]]*$' -e '^#' "$file" || true; }

# with_new_token: the file as it is, then $new on a line of its own.
with_new_token() {
  cat "$file"
  [[ -z $(tail -c 1 "$file") ]] || echo
  echo "$new"
}
# newest_only: the file's comment lines, then $newest.
newest_only() {
  grep '^#' "$file" || true
  echo "$newest"
}

# replace_tokens COMMAND: the output of COMMAND becomes the file (write_secret), read whole first,
# so a COMMAND that fails leaves the file as it was.
replace_tokens() {
  local tokens
  tokens=$("$1") || die "could not build the new $file"
  printf '%s\n' "$tokens" | write_secret "$file"
}

case "${1:-}" in
  add)
    new=$(random_password)
    replace_tokens with_new_token
    say "added a token to $file ($(token_lines | wc -l) valid now)"
    restart_backends
    say "every backend accepts the new token (printed below) and the earlier ones: hand it to the writers, then run make retire-tokens"
    echo "$new"
    ;;
  retire)
    count=$(token_lines | wc -l)
    if ((count < 2)); then
      say "nothing to retire: $file holds one token"
      exit 0
    fi
    newest=$(token_lines | tail -n 1)
    replace_tokens newest_only
    say "kept the newest token of $file, dropped $((count - 1))"
    restart_backends
    say "every backend refuses the retired tokens now"
    ;;
  *) die "usage: $0 add|retire" ;;
esac
