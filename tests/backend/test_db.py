"""One engine per process (fork-safe) and one transaction per request."""

import os

from sqlalchemy import text

from app import create_app, posts
from app.config import Config
from app.db import connection


def test_forked_child_gets_a_fresh_pool_and_parent_connections_keep_working(app):
    engine = app.extensions["db_engine"]
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert engine.pool.checkedin() >= 1

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report how many inherited connections its pool still holds
        try:
            os.write(write_end, str(engine.pool.checkedin()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    child_pool_size = int(os.read(read_end, 16))
    os.close(read_end)
    os.waitpid(pid, 0)

    assert child_pool_size == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1


def test_a_request_that_fails_after_writing_leaves_nothing_behind(app_env, write_token):
    app = create_app(Config.from_env(app_env))

    @app.post("/write-then-fail")
    def write_then_fail():
        posts.create_post(connection(), "half-done", "must be rolled back")
        raise RuntimeError("failure after the write")

    try:
        auth = {"Authorization": f"Bearer {write_token}"}
        assert app.test_client().post("/write-then-fail", headers=auth).status_code == 500
        with app.extensions["db_engine"].connect() as conn:
            count = conn.execute(text("SELECT COUNT(*) FROM posts WHERE title = 'half-done'"))
            assert count.scalar() == 0
    finally:
        app.extensions["db_engine"].dispose()
