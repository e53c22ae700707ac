#!/usr/bin/env bash
# Usage: scripts/make-secrets.sh [--force]
# Writes a random password for each database account, a write token for the API and the database's
# TLS key pair (db_tls_key, db_tls_cert) into ${SECRETS_DIR:-secrets/ of this checkout}.
# Existing files are kept unless --force is given (rotating a password also needs the db side: docs/rotation.md).
set -euo pipefail
# shellcheck source=scripts/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"


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

# A random value each; the TLS key pair is made below. api_tokens holds one write token per line
# (make rotate-token adds one).
for name in "${secret_names[@]}"; do
  [[ $name != db_tls_* ]] || continue
  file="$secrets_dir/$name"
  if [[ -s $file && $force == false ]]; then
    echo "kept     $file"
    continue
  fi
  password=$(random_password)
  printf '%s' "$password" | write_secret "$file"
  echo "created  $file"
done

# The database's TLS certificate, self-signed for the name its clients dial (`db`, on dbnet): each
# client across dbnet trusts exactly this certificate (DB_TLS_CA_FILE), so no CA has a part in it.
# Ten years, as the one MariaDB makes for itself; a new one means restarting the database and its
# clients (docs/deploy.md, "TLS to the database").
cert=$secrets_dir/db_tls_cert
key=$secrets_dir/db_tls_key
if [[ -s $cert && -s $key && $force == false ]]; then
  echo "kept     $cert"
else
  command -v openssl >/dev/null || { echo "error: openssl is required (apt-get install openssl)" >&2; exit 1; }
  tmp=$(mktemp -d "$secrets_dir/.db_tls.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key" 2>/dev/null
  # Its own trust anchor, hence CA:TRUE; clients check the name in subjectAltName.
  openssl req -x509 -new -key "$tmp/key" -sha256 -days 3650 -subj "/CN=db" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,digitalSignature,keyCertSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -addext "subjectAltName=DNS:db" \
    -out "$tmp/cert"
  chmod 0644 "$tmp/key" "$tmp/cert"
  mv -f "$tmp/key" "$key"
  mv -f "$tmp/cert" "$cert"
  echo "created  $cert and $key (the database's TLS certificate, self-signed for DNS:db, 3650 days)"
fi
