#!/usr/bin/env bash
# Usage: scripts/backup-now.sh   (make backup)
# Takes one backup now with scripts/backup.sh, where the running stack takes them: in the backup
# service's container (compose, swarm), or here as the backup account (native). Last line: the new file.
set -euo pipefail
# shellcheck source=scripts/lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

backup_dir=${BACKUP_DIR:-$repo/backups}

if [[ $runtime != native ]]; then
  [[ $runtime == swarm || -n $("${compose[@]}" ps --quiet backup 2>/dev/null) ]] ||
    die "the backup service is not running (production starts it: make prod-up)"
  output=$(service_exec backup /opt/stack/scripts/backup.sh) || die "the backup failed (see above)"
else
  # Natively the directory belongs to whoever runs the stack.
  [[ -d $backup_dir ]] || mkdir -m 0700 "$backup_dir"
  output=$(DB_HOST=$DB_HOST DB_PORT=$DB_PORT DB_USER=backup \
    DB_PASSWORD_FILE=$secrets_dir/db_backup_password BACKUP_DIR=$backup_dir \
    "$repo/scripts/backup.sh") || die "the backup failed (see above)"
fi
echo "$output"
# backup.sh names the file as it sees it (/backups/... in the container): here it is in BACKUP_DIR.
name=$(sed -n 's|^backup: .*/\([^/ ]*\.sql\.gz\) (.*|\1|p' <<<"$output" | tail -n 1)
[[ -n $name ]] || die "backup.sh named no file"
echo "$backup_dir/$name"
