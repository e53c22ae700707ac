"""The runtime account has DML rights only: the schema and grants are out of its reach."""

import pymysql
import pytest

from .conftest import connect


@pytest.fixture
def app_conn(app_env, migrated):
    conn = connect(app_env, autocommit=True)
    yield conn
    conn.close()


def test_app_account_can_read_and_write_posts(app_conn):
    with app_conn.cursor() as cur:
        cur.execute("INSERT INTO posts (title, body) VALUES ('priv', 'ok')")
        cur.execute("SELECT title FROM posts WHERE id = LAST_INSERT_ID()")
        assert cur.fetchone() == ("priv",)
        cur.execute("DELETE FROM posts WHERE id = LAST_INSERT_ID()")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id INT)",
        "DROP TABLE posts",
        "ALTER TABLE posts ADD COLUMN intruder INT",
        "GRANT SELECT ON app.posts TO 'backup'@'%'",
        "CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'",
        "TRUNCATE TABLE posts",
        "SELECT COUNT(*) FROM mysql.user",
    ],
    ids=["create", "drop", "alter", "grant", "create-user", "truncate", "read-mysql-schema"],
)
def test_app_account_is_refused(app_conn, statement):
    with app_conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as refused:
        cur.execute(statement)
    # 1142 table command denied, 1044/1045 database/access denied, 1227 needs a privilege.
    assert refused.value.args[0] in (1044, 1045, 1142, 1227), refused.value.args
