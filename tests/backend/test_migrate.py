"""`python -m app.migrate`: the expand migrations, idempotent, bounded retries, opt-in samples."""

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from app import db, migrate
from app.config import Config

from .conftest import connect, run_migrate


def query(env, sql):
    conn = connect(env, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def test_posts_table_is_utf8mb4_with_the_documented_columns(migrated, migrator_env):
    (create,) = query(migrator_env, "SHOW CREATE TABLE posts")
    ddl = create[1]
    assert "utf8mb4" in ddl
    for column in ("`id`", "`title` varchar(200)", "`body` text", "`created_at`", "`updated_at`"):
        assert column in ddl


def test_running_migrate_again_changes_nothing_and_keeps_data(migrated, migrator_env):
    query(migrator_env, "INSERT INTO posts (title, body) VALUES ('keep me', 'x')")
    before = query(migrator_env, "SELECT COUNT(*) FROM posts")
    result = run_migrate(migrator_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert query(migrator_env, "SELECT COUNT(*) FROM posts") == before
    # The expand branch's head: the contract branch waits for its own step.
    assert query(migrator_env, "SELECT version_num FROM alembic_version") == (("0004",),)


def test_sample_posts_are_seeded_only_when_asked_and_only_into_an_empty_table(
    migrated, migrator_env
):
    query(migrator_env, "DELETE FROM posts")
    assert run_migrate(migrator_env).returncode == 0
    assert query(migrator_env, "SELECT COUNT(*) FROM posts") == ((0,),)

    assert run_migrate({**migrator_env, "SEED_SAMPLE_POSTS": "1"}).returncode == 0
    seeded = query(migrator_env, "SELECT COUNT(*) FROM posts")[0][0]
    assert seeded > 0

    assert run_migrate({**migrator_env, "SEED_SAMPLE_POSTS": "1"}).returncode == 0
    assert query(migrator_env, "SELECT COUNT(*) FROM posts")[0][0] == seeded


def test_migrate_retries_with_backoff_then_gives_up_within_its_time_budget(migrator_env, tmp_path):
    wrong = tmp_path / "wrong_password"
    wrong.write_text("not-the-password")
    started = time.monotonic()
    result = run_migrate(
        {**migrator_env, "DB_PASSWORD_FILE": str(wrong), "MIGRATE_TIMEOUT": "3"}, timeout=30
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert output.count("retry in") >= 2
    assert "after 3s" in output
    assert "not-the-password" not in output
    assert elapsed < 15


def test_migrations_are_not_bound_by_the_request_paths_statement_limit(migrator_env):
    # The request path stops statements after DB_STATEMENT_TIMEOUT; a migration's ALTER of a grown
    # table must run to its end (MariaDB DDL cut halfway is not rolled back).
    config = Config.from_env({**migrator_env, "DB_STATEMENT_TIMEOUT": "1"})
    request_engine, migrate_engine = db.make_engine(config), migrate.make_engine(config)
    try:
        with request_engine.connect() as conn, pytest.raises(OperationalError, match="1969"):
            conn.execute(text("SELECT SLEEP(2)"))
        with migrate_engine.connect() as conn:
            assert conn.execute(text("SELECT SLEEP(2)")).scalar() == 0  # 0: not interrupted
    finally:
        request_engine.dispose()
        migrate_engine.dispose()
