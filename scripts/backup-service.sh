#!/usr/bin/env bash
# Usage: scripts/backup-service.sh run|health|metrics
# run: scripts/backup.sh every BACKUP_INTERVAL (<n>[s|m|h|d], default 1d); a failed run is retried after 5 min.
# health: exit 1 when the last run failed or the newest good backup is older than two intervals.
# metrics: the same facts in Prometheus's text format, for backup-metrics to serve (the rule that
# judges a backup, and the age limit that follows BACKUP_INTERVAL, live here only).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
backup_dir=${BACKUP_DIR:-/backups}
db_name=${DB_NAME:-app}
interval_text=${BACKUP_INTERVAL:-1d}
# A failure (database restarting, disk full) is worth another try long before the next interval.
retry_after=300

die() {
  echo "backup-service: $*" >&2
  exit 2
}

[[ $interval_text =~ ^([1-9][0-9]*)([smhd]?)$ ]] ||
  die "BACKUP_INTERVAL=$interval_text: expected a number with an optional unit s, m, h or d (1d, 6h, 90m)"
case ${BASH_REMATCH[2]} in
  m) unit=60 ;;
  h) unit=3600 ;;
  d) unit=86400 ;;
  *) unit=1 ;;
esac
interval=$((BASH_REMATCH[1] * unit))

# The healthcheck's limit: two intervals, so one late or failed run is not yet an alarm.
max_age=$((2 * interval))

# newest_good: "<age in seconds> <mtime> <file>" of the newest backup that has its checksum file, or
# nothing.
newest_good() {
  local files i mtime
  # Names sort by time; a glob expands sorted, so the newest is the last.
  files=("$backup_dir/$db_name"-[0-9]*T[0-9]*Z.sql.gz)
  for ((i = ${#files[@]} - 1; i >= 0; i--)); do
    if [[ -f ${files[i]} && -f ${files[i]}.sha256 ]]; then
      mtime=$(stat -c %Y "${files[i]}")
      echo "$(($(date +%s) - mtime)) $mtime ${files[i]##*/}"
      return
    fi
  done
}

last_run() { cat "$backup_dir/.last-run" 2>/dev/null || true; }

health() {
  local last newest age file
  last=$(last_run)
  if [[ $last == failed* ]]; then
    echo "unhealthy: the last backup run failed: ${last#failed }"
    return 1
  fi
  newest=$(newest_good)
  if [[ -z $newest ]]; then
    echo "unhealthy: no good backup in $backup_dir"
    return 1
  fi
  read -r age _ file <<<"$newest"
  if ((age > max_age)); then
    echo "unhealthy: the newest good backup, $file, is ${age} s old (BACKUP_INTERVAL=$interval_text)"
    return 1
  fi
  echo "healthy: newest good backup $file, ${age} s old; last run: ${last:-none yet}"
}

metrics() {
  local newest mtime=0 failed=0
  newest=$(newest_good)
  [[ -z $newest ]] || read -r _ mtime _ <<<"$newest"
  [[ $(last_run) != failed* ]] || failed=1
  cat <<EOF
# HELP backup_last_success_timestamp_seconds When the newest good backup was written (Unix time); 0: there is none.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds $mtime
# HELP backup_last_run_failed 1 when the backup service's last run failed.
# TYPE backup_last_run_failed gauge
backup_last_run_failed $failed
# HELP backup_max_age_seconds The age past which the newest good backup is too old (2 x BACKUP_INTERVAL).
# TYPE backup_max_age_seconds gauge
backup_max_age_seconds $max_age
EOF
}

run() {
  echo "backup-service: a backup of $db_name every $interval_text ($interval s) into $backup_dir"
  # SIGTERM (compose stop) ends the wait below at once instead of after the sleep.
  trap 'exit 0' TERM INT
  local newest age wait
  while :; do
    newest=$(newest_good)
    age=${newest%% *}
    if [[ -z $newest ]] || ((age >= interval)); then
      if "$here/backup.sh"; then
        wait=$interval
      else
        wait=$((interval < retry_after ? interval : retry_after))
      fi
    else
      # Restarted between two runs: keep the schedule the last backup set.
      wait=$((interval - age))
    fi
    sleep "$wait" &
    wait $!
  done
}

case "${1:-}" in
  run) run ;;
  health) health ;;
  metrics) metrics ;;
  *) die "usage: $0 run|health|metrics" ;;
esac
