#!/usr/bin/env bash
# Creates the least-privilege accounts migrator, app and backup in ${MARIADB_DATABASE}.
# Run once, on an empty datadir, by the mariadb image's entrypoint and by the native test runner.
set -euo pipefail

: "${MARIADB_DATABASE:?must name the application schema}"
: "${MARIADB_ROOT_PASSWORD:?is exported by the entrypoint from MARIADB_ROOT_PASSWORD_FILE}"

# read_secret FILE: the password in FILE, quoted for a SQL string literal.
read_secret() {
  local file=$1 value
  [[ -r $file ]] || { echo "10-create-accounts: cannot read secret file '$file'" >&2; exit 1; }
  value=$(<"$file")
  [[ -n $value ]] || { echo "10-create-accounts: secret file '$file' is empty" >&2; exit 1; }
  value=${value//\\/\\\\}
  printf "'%s'" "${value//\'/\\\'}"
}

migrator_password=$(read_secret "${DB_MIGRATOR_PASSWORD_FILE:?}")
app_password=$(read_secret "${DB_APP_PASSWORD_FILE:?}")
backup_password=$(read_secret "${DB_BACKUP_PASSWORD_FILE:?}")
schema="\`${MARIADB_DATABASE}\`"

# The root password goes through an anonymous file descriptor, never the command line.
# (--defaults-extra-file must be the first option.)
mariadb --defaults-extra-file=<(printf '[client]\npassword="%s"\n' "$MARIADB_ROOT_PASSWORD") --protocol=socket -uroot <<SQL
-- The statements below carry passwords: they stay out of the binary log, which is shipped off the
-- host for point-in-time recovery. The entrypoint's own setup runs like this; a script that opens
-- its own session does not inherit it.
SET SESSION sql_log_bin = 0;

-- The entrypoint made it already (MARIADB_DATABASE), with server.cnf's character set and collation.
CREATE DATABASE IF NOT EXISTS ${schema};

-- migrate service: schema changes and data migrations, nothing outside the app schema.
CREATE USER IF NOT EXISTS 'migrator'@'%' IDENTIFIED BY ${migrator_password};
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES ON ${schema}.* TO 'migrator'@'%';

-- backend: data only. It can neither change the schema nor grant anything.
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY ${app_password};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.* TO 'app'@'%';

-- backup (scripts/backup.sh): read-only; what mariadb-dump --single-transaction --master-data=2
-- --routines --triggers --events needs on the app schema, each checked on 10.11 by taking it away:
--   SELECT     the rows and the table definitions;
--   SHOW VIEW  without it the dump stops at the first view;
--   TRIGGER    without it triggers are left out of the dump, silently;
--   EVENT      without it --events stops the dump (SHOW EVENTS is refused even with no event).
-- Nothing extra for the binary-log position: with --single-transaction and binary logging on
-- (db/conf.d/server.cnf), mariadb-dump (10.11 and 11.x alike) reads it inside its consistent
-- snapshot from the status variables Binlog_snapshot_file/_position, which any account may read,
-- and takes no global read lock (RELOAD) nor runs SHOW MASTER STATUS (BINLOG MONITOR). No LOCK
-- TABLES: a single transaction locks no table. No routine privilege: only root can create
-- routines here (migrator has no CREATE ROUTINE), so there are none to dump.
CREATE USER IF NOT EXISTS 'backup'@'%' IDENTIFIED BY ${backup_password};
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON ${schema}.* TO 'backup'@'%';
SQL
echo "10-create-accounts: accounts migrator, app and backup ready on ${MARIADB_DATABASE}"
