#!/usr/bin/env bash
# Usage: scripts/make-certs.sh [--force]
# Makes a local development CA and a server certificate (localhost, 127.0.0.1, ::1, $SERVER_NAME) in ${CERTS_DIR:-./certs}.
# Keeps valid files unless --force; re-issues a dev-CA server certificate that lacks SERVER_NAME, expires within 30 days or outlives 90 days.
set -euo pipefail

certs_dir=${CERTS_DIR:-./certs}
server_name=${SERVER_NAME:-localhost}
ca_days=3650       # a local, never-published development CA: ten years spares re-trusting it
# Short-lived like Let's Encrypt's, and within Mozilla's TLS guidelines (at most 366 days, 90
# recommended): `make certs` renews it long before it expires.
leaf_days=90
renew_before=$((30 * 24 * 3600))   # re-issue when less than 30 days are left

force=false
case "${1:-}" in
  "") ;;
  --force) force=true ;;
  *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

command -v openssl >/dev/null || { echo "error: openssl is required (apt-get install openssl)" >&2; exit 1; }

ca_crt=$certs_dir/dev-ca.crt
ca_key=$certs_dir/dev-ca.key
crt=$certs_dir/server.crt
key=$certs_dir/server.key

# The server key is bind-mounted into the proxy container, where the host owner and mode apply and
# nginx runs as uid 101: a 0600 file owned by the host user would be unreadable there. So the server
# key is 0644 inside a 0700 directory: readable in the container, and by nobody else on the host.
# The CA key never leaves the host and stays 0600.
umask 077
mkdir -p "$certs_dir"
chmod 0700 "$certs_dir"

tmp=$(mktemp -d "$certs_dir/.make-certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# install SRC DEST MODE: copy over DEST in place (same inode), so a running container that
# bind-mounts the file sees the new content after `nginx -s reload`. nginx 1.27.4+ keeps the
# certificate it loaded across a reload while the file's inode and mtime, in whole seconds, stay
# the same: a file rewritten within the second of its last write gets the next second as mtime.
install_file() {
  local before
  before=$(stat -c %Y "$2" 2>/dev/null) || before=""
  cp "$1" "$2"
  chmod "$3" "$2"
  [[ $(stat -c %Y "$2") != "$before" ]] || touch -d "@$((before + 1))" "$2"
}

is_ip() {
  [[ $1 =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $1 == *:* ]]
}

# covers NAME: does server.crt name it in its SANs?
covers() {
  local flag=-checkhost
  is_ip "$1" && flag=-checkip
  ! openssl x509 -in "$crt" -noout "$flag" "$1" | grep -q 'does NOT match'
}

# A server certificate that the dev CA did not issue was brought by the operator (e.g. Let's Encrypt):
# never touch it without --force.
if [[ $force == false && -s $crt && -s $key ]] &&
  ! { [[ -s $ca_crt ]] && openssl verify -CAfile "$ca_crt" "$crt" >/dev/null 2>&1; }; then
  echo "kept     $crt (not issued by the development CA: managed by you; --force replaces it)"
  exit 0
fi

new_ca=false
if [[ $force == true || ! -s $ca_crt || ! -s $ca_key ]] ||
  ! openssl x509 -in "$ca_crt" -noout -checkend "$renew_before" >/dev/null; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$tmp/ca.key" -sha256 -days "$ca_days" \
    -subj "/O=Hardened stack/CN=Hardened stack LOCAL DEVELOPMENT CA (do not trust in production)" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$tmp/ca.crt"
  install_file "$tmp/ca.key" "$ca_key" 0600
  install_file "$tmp/ca.crt" "$ca_crt" 0644
  new_ca=true
  echo "created  $ca_crt (development CA, valid $ca_days days) and $ca_key"
else
  echo "kept     $ca_crt"
fi

reason=""
if [[ $force == true || $new_ca == true ]]; then
  reason="new CA"
elif [[ ! -s $crt || ! -s $key ]]; then
  reason="missing"
elif ! openssl x509 -in "$crt" -noout -checkend "$renew_before" >/dev/null; then
  reason="expires within 30 days"
elif openssl x509 -in "$crt" -noout -checkend $(((leaf_days + 1) * 24 * 3600)) >/dev/null; then
  # Still valid beyond a whole lifespan from now: issued by an older version of this script.
  reason="valid for longer than $leaf_days days"
elif ! covers "$server_name"; then
  reason="SERVER_NAME=$server_name is not in its SANs"
fi

if [[ -z $reason ]]; then
  echo "kept     $crt (valid, names $server_name)"
  exit 0
fi

sans="DNS:localhost,IP:127.0.0.1,IP:::1"
if [[ $server_name != localhost && $server_name != 127.0.0.1 && $server_name != ::1 ]]; then
  if is_ip "$server_name"; then sans+=",IP:$server_name"; else sans+=",DNS:$server_name"; fi
fi

cat >"$tmp/leaf.ext" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EXT
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server.key" 2>/dev/null
openssl req -new -key "$tmp/server.key" -subj "/CN=$server_name" -out "$tmp/server.csr"
openssl x509 -req -in "$tmp/server.csr" -CA "$ca_crt" -CAkey "$ca_key" \
  -set_serial "0x$(openssl rand -hex 16)" -days "$leaf_days" -sha256 \
  -extfile "$tmp/leaf.ext" -out "$tmp/server.crt" 2>/dev/null
# server.crt is the leaf only: the dev CA has no intermediates, and the root itself is never sent.
install_file "$tmp/server.key" "$key" 0644
install_file "$tmp/server.crt" "$crt" 0644
echo "created  $crt ($reason; SANs $sans; valid $leaf_days days) and $key"
echo "next: trust $ca_crt in your browser or use it with curl --cacert $ca_crt;" \
  "a running proxy picks the new files up with: docker compose exec proxy nginx -s reload"
