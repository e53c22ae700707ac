#!/usr/bin/env bash
# Creates the account of the MySQL exporter (monitoring profile): server status, nothing else.
# Run once, on an empty datadir, by the mariadb image's entrypoint and by the native test runner.
set -euo pipefail

: "${MARIADB_ROOT_PASSWORD:?is exported by the entrypoint from MARIADB_ROOT_PASSWORD_FILE}"

file=${DB_EXPORTER_PASSWORD_FILE:?names the exporter password file (a compose secret)}
[[ -r $file ]] || { echo "30-create-exporter-account: cannot read secret file '$file'" >&2; exit 1; }
password=$(<"$file")
[[ -n $password ]] || { echo "30-create-exporter-account: secret file '$file' is empty" >&2; exit 1; }
password=${password//\\/\\\\}
password=${password//\'/\\\'}

# The root password goes through an anonymous file descriptor, never the command line.
mariadb --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$MARIADB_ROOT_PASSWORD") --protocol=socket -uroot <<SQL
-- The password stays out of the binary log (shipped off the host for point-in-time recovery).
SET SESSION sql_log_bin = 0;

-- The exporter runs only collectors that read global status and variables (compose.yaml:
-- mysqld-exporter), which every account may read: no grant beyond the login (USAGE), so no
-- PROCESS (other sessions' queries), no REPLICATION CLIENT / BINLOG MONITOR (no replication here)
-- and no SELECT anywhere (the posts stay unreadable). Three connections at most, as the
-- exporter's documentation advises, so a stuck exporter cannot take the app's connections.
CREATE USER IF NOT EXISTS 'exporter'@'%' IDENTIFIED BY '${password}' WITH MAX_USER_CONNECTIONS 3;
SQL
echo "30-create-exporter-account: account exporter ready (status only)"
