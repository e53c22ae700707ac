#!/usr/bin/env bash
# Usage: scripts/make-secrets.sh [--force]
# Writes a random password for each database account, and a write token for the API, into ${SECRETS_DIR:-./secrets}.
# Existing files are kept unless --force is given (rotating a password also needs the db side: docs/operations.md).
set -euo pipefail

secrets_dir=${SECRETS_DIR:-./secrets}
# api_tokens holds one write token per line; add a line to hand out a second one (docs/operations.md).
names=(db_root_password db_migrator_password db_app_password db_backup_password db_exporter_password api_tokens)

force=false
case "${1:-}" in
  "") ;;
  --force) force=true ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

# Compose file secrets are bind mounts that keep the host owner and mode, so the files must be
# readable by the containers' non-root users (0644), while the 0700 directory keeps every other
# host user out.
umask 077
mkdir -p "$secrets_dir"
chmod 0700 "$secrets_dir"

for name in "${names[@]}"; do
  file="$secrets_dir/$name"
  if [[ -s $file && $force == false ]]; then
    echo "kept     $file"
    continue
  fi
  # 32 alphanumeric characters (~190 bits): no quoting trouble in SQL, shells or URLs.
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' < /dev/urandom | head -c 32) || true
  [[ ${#password} -eq 32 ]] || { echo "error: could not read 32 random characters from /dev/urandom" >&2; exit 1; }
  tmp=$(mktemp "$secrets_dir/.$name.XXXXXX")
  printf '%s' "$password" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$file"
  echo "created  $file"
done
