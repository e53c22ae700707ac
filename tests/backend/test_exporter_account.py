"""The MySQL exporter's account (db/initdb.d/30-create-exporter-account.sh): it reads server
status and variables, and nothing of the data; its password stays out of the binary log."""

import re

import pymysql
import pytest

from .conftest import connect, db_env


@pytest.fixture
def exporter(mariadb, secrets_dir):
    return {**db_env(mariadb, secrets_dir, "exporter"), "DB_NAME": ""}


def test_exporter_account_has_no_grant_beyond_its_login(mariadb):
    grants = mariadb.root_sql("SHOW GRANTS FOR 'exporter'@'%'").splitlines()
    assert len(grants) == 1, grants
    assert re.match(r"GRANT USAGE ON \*\.\* TO `exporter`@`%` IDENTIFIED BY PASSWORD ", grants[0])
    assert grants[0].endswith("WITH MAX_USER_CONNECTIONS 3"), grants[0]


def test_exporter_reads_global_status_and_variables(exporter):
    conn = connect(exporter)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
            assert int(cur.fetchone()[1]) >= 1  # this session at least
            cur.execute("SHOW GLOBAL VARIABLES LIKE 'max_connections'")
            assert int(cur.fetchone()[1]) > 0
    finally:
        conn.close()


def test_exporter_cannot_read_the_posts(exporter, app_env, migrated):
    # Positive control: the app account reads them.
    conn = connect(app_env)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM app.posts")
    finally:
        conn.close()
    conn = connect(exporter)
    try:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as refused:
            cur.execute("SELECT COUNT(*) FROM app.posts")
    finally:
        conn.close()
    # 1142: SELECT command denied for the table.
    assert refused.value.args[0] == 1142, refused.value.args


def test_exporter_password_is_not_in_the_binary_log(mariadb, secrets_dir, migrated):
    text = mariadb.binlog_text()
    # Positive control: the migration's own statements are there to be found.
    assert "CREATE TABLE posts" in text
    assert (secrets_dir / "db_exporter_password").read_text() not in text
