#!/usr/bin/env bash
# Creates the least-privilege accounts (docs/security.md) in ${MARIADB_DATABASE}.
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
CREATE DATABASE IF NOT EXISTS ${schema} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- migrate service: schema changes and data migrations, nothing outside the app schema.
CREATE USER IF NOT EXISTS 'migrator'@'%' IDENTIFIED BY ${migrator_password};
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, DROP, INDEX, REFERENCES ON ${schema}.* TO 'migrator'@'%';

-- backend: data only. It can neither change the schema nor grant anything.
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY ${app_password};
GRANT SELECT, INSERT, UPDATE, DELETE ON ${schema}.* TO 'app'@'%';

-- backup: what \`mariadb-dump --single-transaction --triggers --events\` reads, read-only.
CREATE USER IF NOT EXISTS 'backup'@'%' IDENTIFIED BY ${backup_password};
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON ${schema}.* TO 'backup'@'%';
SQL
echo "10-create-accounts: accounts migrator, app and backup ready on ${MARIADB_DATABASE}"
