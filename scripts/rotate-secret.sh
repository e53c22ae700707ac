#!/usr/bin/env bash
# Usage: scripts/rotate-secret.sh db_app_password|db_migrator_password|db_backup_password|db_root_password
# Gives the account a new random password without downtime (make rotate-secret NAME=...): both
# passwords valid, new secret file, every consumer moved to it, old password dropped.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

[[ $runtime != swarm ]] ||
  die "Swarm secrets cannot change: rotate one on Swarm as docs/swarm.md (Docker Swarm) says"

name=${1:-}
case $name in
  db_app_password) user=app host=% consumers="the backend" ;;
  db_migrator_password) user=migrator host=% consumers="nothing running (migrate reads it when it next runs)" ;;
  db_backup_password) user=backup host=% consumers="the backup service" ;;
  # Root logs in through the socket only; the scripts read its file on every use.
  db_root_password) user=root host=localhost consumers="nothing running (the scripts read it on every use)" ;;
  *) die "usage: $0 db_app_password|db_migrator_password|db_backup_password|db_root_password" ;;
esac
account="'$user'@'$host'"
file=$secrets_dir/$name
[[ -r $file ]] || die "cannot read $file (make secrets creates it)"
command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"

# native_hash PASSWORD: what MariaDB stores for mysql_native_password, PASSWORD('...'), computed
# here: the passwords themselves never travel in SQL, so no server log can hold them.
native_hash() {
  printf '%s' "$1" | openssl dgst -sha1 -binary | openssl dgst -sha1 -hex | awk '{print "*" toupper($NF)}'
}
# identify HASH...: ALTER USER accepting any of the passwords behind HASH..., run with the binary
# log off for this session: the log is shipped off the host for point-in-time recovery.
identify() {
  local via=() hash
  for hash; do via+=("mysql_native_password USING '$hash'"); done
  local joined
  joined=$(printf ' OR %s' "${via[@]}")
  printf 'SET SESSION sql_log_bin = 0;\nALTER USER %s IDENTIFIED VIA %s;\n' "$account" "${joined# OR }" | root_sql
}
# logs_in FILE: does the account log in with the password in FILE (as its consumers connect)?
logs_in() {
  db_client "$user" "$1" --batch --skip-column-names <<<"SELECT 1" >/dev/null 2>&1
}

old=$(<"$file")
[[ -n $old ]] || die "$file is empty"
new=$(random_password)
root_sql <<<"SELECT 1" >/dev/null || die "cannot reach the database as root ($runtime)"
[[ $(root_sql <<<"SELECT COUNT(*) FROM mysql.user WHERE User = '$user' AND Host = '$host'") == 1 ]] ||
  die "account $account does not exist in this database"
# The consumers log in with the file's password: if the database does not take it, they are
# already broken, and a rotation would hide why.
logs_in "$file" ||
  die "$account does not log in with the password in $file: the file and the database disagree; fix that first"

state=""
on_exit() {
  local code=$?
  ((code != 0)) || return 0
  case $state in
    both) echo "$script: FAILED: $account accepts the old and the new password; $file still holds the old one. Run the rotation again." >&2 ;;
    written) echo "$script: FAILED while moving $consumers: $account accepts both passwords, $file holds the new one. Fix the cause and run the rotation again (it starts from the new one)." >&2 ;;
  esac
}
trap on_exit EXIT

# 1. The account accepts both passwords: consumers still on the old one keep logging in.
state=both
identify "$(native_hash "$old")" "$(native_hash "$new")"
logs_in <(printf '%s' "$new") || die "$account does not log in with the new password"
say "$account accepts the old and the new password"

# 2. The new secret file (write_secret: atomic, make-secrets.sh's mode).
printf '%s' "$new" | write_secret "$file"
state=written
say "wrote $file"

# 3. Every consumer to the new file, one at a time, while the others serve.
case $name in
  db_app_password) restart_backends ;;
  db_backup_password) restart_backup_service ;;
  *) say "consumers: $consumers" ;;
esac

# 4. Only the new password is left.
identify "$(native_hash "$new")"
state=finished
logs_in "$file" || die "$account does not log in with the new password after the old one was dropped"
if logs_in <(printf '%s' "$old"); then
  die "$account still accepts the old password"
fi
say "$account: old password dropped, the new one in use"
