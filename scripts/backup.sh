#!/usr/bin/env bash
# Usage: scripts/backup.sh   (the backup service runs it on schedule; `make backup` runs it now)
# Dumps the app schema as the backup account into BACKUP_DIR: <DB_NAME>-<UTC time>.sql.gz with a
# SHA-256 file beside it, written atomically; keeps the newest BACKUP_KEEP; runs BACKUP_COPY_COMMAND.
set -euo pipefail
# Backups and their checksums are for this user only (the directory is 0700 as well).
umask 077

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
db_host=${DB_HOST:-db}
db_port=${DB_PORT:-3306}
db_name=${DB_NAME:-app}
db_user=${DB_USER:-backup}
password_file=${DB_PASSWORD_FILE:-/run/secrets/db_backup_password}
backup_dir=${BACKUP_DIR:-/backups}
keep=${BACKUP_KEEP:-14}
copy_command=${BACKUP_COPY_COMMAND:-}

# The outcome of the last run, read by `backup-service.sh health`: "ok|failed <UTC time> <message>".
status_file=$backup_dir/.last-run

fail() {
  echo "backup: FAILED: $*" >&2
  printf 'failed %s %s\n' "$(date -u +%FT%TZ)" "$*" >"$status_file.tmp" 2>/dev/null &&
    mv -f "$status_file.tmp" "$status_file" 2>/dev/null
  exit 1
}

[[ $keep =~ ^[1-9][0-9]*$ ]] || fail "BACKUP_KEEP=$keep must be a whole number of at least 1"
[[ -d $backup_dir && -w $backup_dir ]] ||
  fail "cannot write to $backup_dir as uid $(id -u) (on the host: make backup-dir creates it)"
[[ -r $password_file ]] || fail "cannot read the backup account's password file $password_file"

# Another run (the schedule and `make backup` at once) would race on the names and on retention.
exec 9>"$backup_dir/.lock"
flock --nonblock 9 || fail "another backup is running in $backup_dir"
# Left over by a run that was killed: never a finished backup (those are renamed).
rm -f "$backup_dir"/.tmp-*

stamp=$(date -u +%Y%m%dT%H%M%SZ)
# Two runs within one second (a drill right after the schedule): the second waits for its own name.
while [[ -e $backup_dir/$db_name-$stamp.sql.gz ]]; do
  sleep 1
  stamp=$(date -u +%Y%m%dT%H%M%SZ)
done
name=$db_name-$stamp.sql.gz
tmp=$backup_dir/.tmp-$name
trap 'rm -f "$tmp" "$tmp.sha256"' EXIT

# Across a network (DB_TLS_CA_FILE, compose.yaml): TLS to the server that certificate names, or
# no dump. Natively the database is on this host.
tls=()
[[ -z ${DB_TLS_CA_FILE:-} ]] || tls=(--ssl-ca="$DB_TLS_CA_FILE" --ssl-verify-server-cert)

started=$(date +%s)
# --single-transaction: one consistent InnoDB snapshot, no lock on the app's writes.
# --master-data=2 records, as a comment in the dump, the binary-log position of that very
# snapshot (Binlog_snapshot_file/_position: no global read lock and no extra privilege, see
# db/initdb.d/10-create-accounts.sh); point-in-time recovery replays the log from there.
# The password goes through an anonymous file, never the command line.
# (--defaults-extra-file must be the first option.)
if ! mariadb-dump --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$(<"$password_file")") \
  --host="$db_host" --port="$db_port" --user="$db_user" --protocol=tcp "${tls[@]}" \
  --single-transaction --master-data=2 --routines --triggers --events \
  --hex-blob --default-character-set=utf8mb4 "$db_name" 2>"$tmp.err" | gzip -6 >"$tmp"; then
  error=$(tr '\n' ' ' <"$tmp.err")
  rm -f "$tmp.err"
  fail "mariadb-dump of $db_name on $db_host:$db_port as $db_user failed: ${error:-no message}"
fi
rm -f "$tmp.err"
# One pass over the result: a gzip stream that decompresses, mariadb-dump's closing line (a dump
# cut short lacks it), and the recorded binary-log position.
facts=$(gzip -dc "$tmp" | awk -f "$here/lib/dump-facts.awk") ||
  fail "the new dump of $db_name does not decompress"
[[ $facts == *complete=yes* ]] || fail "the dump of $db_name is incomplete (no '-- Dump completed' line)"
position=$(sed -n 's/^position=//p' <<<"$facts")
[[ $position =~ ^[^:]+:[1-9][0-9]*$ ]] ||
  fail "the dump records no binary-log position (${position:-none}): is log_bin on (db/conf.d/server.cnf)?"

# sha256sum's own format, for the file's final name: `sha256sum -c` checks it in place.
(cd "$backup_dir" && sha256sum ".tmp-$name") | sed "s/\.tmp-$name\$/$name/" >"$tmp.sha256"
sync "$tmp" "$tmp.sha256" 2>/dev/null || sync
# The checksum lands first: a backup file without its checksum is never taken for a good one.
mv -f "$tmp.sha256" "$backup_dir/$name.sha256"
mv -f "$tmp" "$backup_dir/$name"
trap - EXIT

size=$(stat -c %s "$backup_dir/$name")
echo "backup: $backup_dir/$name ($size bytes, $(($(date +%s) - started)) s, binlog position $position)"

# Retention: the newest $keep backups stay (names sort by time, and so does the glob).
backups=("$backup_dir/$db_name"-[0-9]*T[0-9]*Z.sql.gz)
for ((i = 0; i < ${#backups[@]} - keep; i++)); do
  rm -f "${backups[i]}" "${backups[i]}.sha256"
  echo "backup: removed ${backups[i]##*/} (BACKUP_KEEP=$keep)"
done

if [[ -n $copy_command ]]; then
  # Runs with BACKUP_FILE and BACKUP_CHECKSUM_FILE set (documented in docs/backup-and-restore.md).
  BACKUP_FILE=$backup_dir/$name BACKUP_CHECKSUM_FILE=$backup_dir/$name.sha256 \
    bash -c "$copy_command" || fail "BACKUP_COPY_COMMAND failed for $name (the backup itself is good)"
  echo "backup: copied $name with BACKUP_COPY_COMMAND"
fi

printf 'ok %s %s\n' "$(date -u +%FT%TZ)" "$name" >"$status_file.tmp"
mv -f "$status_file.tmp" "$status_file"
