#!/usr/bin/env bash
# Usage: scripts/db-shell.sh [mariadb option...]   (make db-shell; SQL on stdin works too)
# The mariadb client as root over the database's socket, in the running stack. The password is
# read from SECRETS_DIR here and never appears on a command line or in an environment.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

password_file=$secrets_dir/db_root_password
if [[ ! -t 0 ]]; then
  db_client root "$password_file" "$@"
elif [[ $runtime == native ]]; then
  # (--defaults-extra-file must be the first option.)
  mariadb --defaults-extra-file=<(printf '[client]\nuser=root\npassword="%s"\n' "$(<"$password_file")") \
    --default-character-set=utf8mb4 --protocol=socket --socket="$DB_SOCKET" "$@"
else
  # Interactive: stdin is the terminal, so the password reaches the container as a client option
  # file in its /tmp (a tmpfs only uid 999, the server's own user, can read), removed on exit.
  option_file=/tmp/.db-shell-$$.cnf
  trap 'db_exec rm -f "$option_file"' EXIT
  printf '[client]\nuser=root\npassword="%s"\n' "$(<"$password_file")" |
    db_exec sh -c "umask 077 && cat >'$option_file'"
  client=(mariadb --defaults-extra-file="$option_file" --default-character-set=utf8mb4 --protocol=socket "$@")
  if [[ $runtime == swarm ]]; then
    docker exec -it "$(swarm_container db)" "${client[@]}"
  else
    "${compose[@]}" exec db "${client[@]}"
  fi
fi
