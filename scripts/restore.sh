#!/usr/bin/env bash
# Usage: scripts/restore.sh FILE [--until "YYYY-MM-DD HH:MM:SS" (UTC) | --until BINLOG_FILE:POSITION]
# Restores a backup made by backup.sh into the running stack (make restore FILE=... [UNTIL=...]), the
# backend kept off the database meanwhile; --until then replays the binary log up to that point.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

db_name=${DB_NAME:-app}
# Every account but root: the backend (app), the backup service and migrations must neither read
# nor write a half-restored schema.
accounts=(app backup migrator)

usage="usage: $0 FILE [--until \"YYYY-MM-DD HH:MM:SS\" | --until BINLOG_FILE:POSITION]"
file=${1:-}
until=""
[[ -n $file ]] || die "$usage"
shift
case "${1:-}" in
  "") ;;
  --until) until=${2:?$usage}; [[ $# -eq 2 ]] || die "$usage" ;;
  *) die "$usage" ;;
esac

# --- checks: nothing changes before every one has passed -----------------------------------
[[ -f $file ]] || die "refused: no such file: $file"
[[ -f $file.sha256 ]] || die "refused: $file has no checksum file beside it ($file.sha256)"
expected=$(awk 'NR == 1 {print $1}' "$file.sha256")
actual=$(sha256sum <"$file" | awk '{print $1}')
[[ $actual == "$expected" ]] ||
  die "refused: checksum mismatch: $file has SHA-256 $actual, $file.sha256 says ${expected:-nothing}"
gzip_error=$(gzip -t "$file" 2>&1) ||
  die "refused: $file is corrupt or truncated: ${gzip_error##*: }"
facts=$(gzip -dc "$file" | awk -f "$repo/scripts/lib/dump-facts.awk")
fact() { sed -n "s/^$1=//p" <<<"$facts"; }
[[ $(fact complete) == yes ]] ||
  die "refused: $file is truncated: the dump lacks mariadb-dump's closing '-- Dump completed' line"
revision=$(fact revision)
position=$(fact position)
[[ -n $revision ]] ||
  die "refused: $file holds no Alembic revision (table alembic_version): not a backup of this app"

# The revisions this code knows, and its heads, from Alembic: the migrate image's code (on Swarm,
# the migrate job's image; natively, this checkout's).
known=$(run_migrate --revisions) || die "cannot read this code's migrations ($runtime)"
heads=$(run_migrate --heads) || die "cannot read this code's migration heads ($runtime)"
for rev in ${revision//,/ }; do
  [[ ,$known, == *,"$rev",* ]] ||
    die "refused: $file is at schema revision $rev, newer than this code (heads: $heads); restore it with the code that made it"
done

root_error=$(root_sql <<<"SELECT 1" 2>&1 >/dev/null) ||
  die "refused: cannot reach the database as root over its socket ($runtime): ${root_error:-no message}"

# The binary log from the backup's position on: what a plain restore leaves out, what --until
# replays. The first file must still be there (binlog_expire_logs_seconds removes old ones).
binlog_names() {
  root_sql <<<"SHOW BINARY LOGS" | awk -v from="$start_file" '$1 >= from {print $1}'
}
start_file=""
if [[ -n $position ]]; then
  start_file=${position%:*} start_offset=${position##*:}
  [[ $(binlog_names | sed -n 1p) == "$start_file" ]] || start_file=""
fi
if [[ -n $until ]]; then
  [[ -n $position ]] || die "refused: $file records no binary-log position: no point-in-time recovery from it"
  [[ -n $start_file ]] ||
    die "refused: binary log ${position%:*}, where this backup starts, no longer exists (expired: binlog_expire_logs_seconds); pick a newer backup"
  if [[ $until =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}$ ]]; then
    until_epoch=$(date -u -d "$until" +%s 2>/dev/null) || die "refused: --until $until is not a valid time"
    ((until_epoch <= $(date -u +%s))) || die "refused: --until $until (UTC) is in the future"
    replay_stop=(--stop-datetime="$until")
  elif [[ $until =~ ^([^:/]+):([0-9]+)$ ]]; then
    until_file=${BASH_REMATCH[1]}
    binlog_names | grep -xF "$until_file" >/dev/null ||
      die "refused: --until $until: there is no binary log $until_file from $start_file on"
    replay_stop=(--stop-position="${BASH_REMATCH[2]}")
  else
    die "refused: --until $until: expected \"YYYY-MM-DD HH:MM:SS\" (UTC) or BINLOG_FILE:POSITION"
  fi
fi

# binlog_sql FILE... STOP_OPTION...: the statements on the app schema in those binary logs from
# the backup's position on, for the mariadb client. mariadb-binlog reads --stop-datetime in the
# local time zone: UTC here, as the backup names are.
binlog_sql() {
  db_exec env TZ=UTC mariadb-binlog --database="$db_name" --start-position="$start_offset" "$@"
}
# changes_in: how many transactions of a binlog_sql stream changed rows of the app schema.
changes_in() {
  awk -v table_map="Table_map: \`$db_name\`." '
    /[[:space:]]GTID [0-9]+-[0-9]+-[0-9]+/ { transaction++ }
    index($0, table_map) && !(transaction in seen) { seen[transaction] = 1; changes++ }
    END { print changes + 0 }'
}

say "verified $file: SHA-256 matches, complete dump, schema revision $revision (this code's heads: $heads), binlog position ${position:-none}"

# --- from here on the database changes: on failure, say exactly what state it is in -----------
lock_sql() {
  # Account changes stay out of the binary log: it is a history of the data, replayed by
  # point-in-time recovery, which must not lock accounts again.
  echo "SET SESSION sql_log_bin = 0;"
  local account
  for account in "${accounts[@]}"; do echo "ALTER USER IF EXISTS '$account'@'%' ACCOUNT $1;"; done
}
unlock() { lock_sql UNLOCK | root_sql; }

state=untouched
on_exit() {
  local code=$?
  ((code != 0)) || return 0
  case $state in
    locked)
      if unlock >/dev/null 2>&1; then
        echo "$script: FAILED before loading anything: the database is as it was, the accounts are unlocked again" >&2
      else
        echo "$script: FAILED before loading anything: the database is as it was, but the accounts ${accounts[*]} are still LOCKED (the backend answers 503): unlock them with ALTER USER ... ACCOUNT UNLOCK (make db-shell)" >&2
      fi
      ;;
    loading | replaying | checking)
      echo "$script: FAILED while $state: the schema $db_name is PARTLY restored from $file; the accounts ${accounts[*]} stay LOCKED, so the backend answers 503 and nothing writes into it. Fix the cause and run the same restore again, or restore another backup." >&2
      ;;
    unlocking)
      echo "$script: FAILED while unlocking: $db_name is restored from $file, but some of the accounts ${accounts[*]} may still be LOCKED: unlock them with ALTER USER ... ACCOUNT UNLOCK (make db-shell)" >&2
      ;;
  esac
}
trap on_exit EXIT

state=locked
{
  lock_sql LOCK
  # Sessions opened before the lock end too: nobody reads or writes during the restore.
  for account in "${accounts[@]}"; do echo "KILL USER $account;"; done
} | root_sql
in_list=$(printf "'%s'," "${accounts[@]}")
# KILL only marks a session; it ends at its next check, within moments.
for _ in $(seq 50); do
  left=$(root_sql <<<"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER IN (${in_list%,})")
  ((left == 0)) && break
  sleep 0.1
done
((left == 0)) || die "$left session(s) of ${accounts[*]} still open 5 s after KILL USER"
say "backend off the database: accounts ${accounts[*]} locked, their sessions closed (the app answers 503 meanwhile)"

# With nobody writing, close the current binary log: the files up to it hold every change since
# the backup, and whatever this restore writes goes into the next one.
later=0 replay=0
if [[ -n $start_file ]]; then
  root_sql <<<"FLUSH BINARY LOGS"
  binlog_dir=$(root_sql <<<"SELECT @@log_bin_basename")
  binlog_dir=${binlog_dir%/*}
  mapfile -t names < <(binlog_names | sed '$d')
  files=("${names[@]/#/$binlog_dir/}")
  later=$(binlog_sql "${files[@]}" | changes_in)
  if [[ -n $until ]]; then
    if [[ -n ${until_file:-} ]]; then
      mapfile -t names < <(printf '%s\n' "${names[@]}" | awk -v to="$until_file" '$1 <= to')
      files=("${names[@]/#/$binlog_dir/}")
    fi
    replay=$(binlog_sql "${files[@]}" "${replay_stop[@]}" | changes_in)
  fi
fi

state=loading
started=$(date +%s%3N)
{ echo "USE \`$db_name\`;"; gzip -dc "$file"; } | root_sql
took=$(($(date +%s%3N) - started))
say "loaded $file in $((took / 1000)).$((took % 1000 / 100)) s"

if [[ -n $until ]]; then
  state=replaying
  # mariadb-binlog sets each transaction's original GTID; replayed into this same server they
  # would come out of order in its binary log (and break the next mariadb-binlog run on it), so
  # the server numbers them anew.
  binlog_sql "${files[@]}" "${replay_stop[@]}" |
    sed '/^\/\*M\{0,1\}!100001 SET @@session\.gtid_seq_no=[0-9]*\*\/\/\*!\*\/;$/d' |
    root_sql
  say "replayed $replay transaction(s) from the binary log, $position up to $until"
fi

state=checking
restored=$(root_sql <<<"SELECT GROUP_CONCAT(version_num ORDER BY version_num) FROM \`$db_name\`.alembic_version")
[[ $restored == "$revision" ]] ||
  die "the restored schema is at revision '$restored', the backup at '$revision'"

state=unlocking
unlock
state=finished
say "backend back on the database: accounts ${accounts[*]} unlocked"
if [[ $revision != "$heads" ]]; then
  say "schema revision $revision, this code's heads $heads: the migrate service runs the expand migrations (make prod-up), make migrate-contract the contract ones"
fi

echo "restored into $db_name (table, rows):"
tables=$(root_sql <<<"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$db_name' ORDER BY TABLE_NAME")
for table in $tables; do echo "SELECT '$table', COUNT(*) FROM \`$db_name\`.\`$table\`;"; done |
  root_sql | awk '{printf "  %-20s %s\n", $1, $2}'

if ((later - replay > 0)); then
  echo "not restored: $((later - replay)) transaction(s) that changed $db_name after the point restored" \
    "(binary log from $position); to include them, restore with UNTIL=\"YYYY-MM-DD HH:MM:SS\" (UTC) or" \
    "UNTIL=<binlog file>:<position>"
elif [[ -n $start_file ]]; then
  echo "not restored: nothing (no change to $db_name in the binary log after the point restored)"
else
  echo "not restored: unknown (the binary log from this backup's position no longer exists)"
fi
echo "next: take a fresh backup (make backup)"
