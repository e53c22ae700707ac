"""One engine per process (fork-safe), one transaction per write request, and one database round
trip per read, with connections that died in the pool replaced without a failed request."""

import os
import uuid
from contextlib import closing

from sqlalchemy import text

from app import create_app, posts
from app.config import Config
from app.db import connection
from tests.backend.conftest import connect

READS = 10


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


def commands_received(probe):
    """Commands MariaDB has received from every client: statements (Questions) and pings
    (Com_admin_commands, which Questions leaves out)."""
    with probe.cursor() as cursor:
        cursor.execute(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', 'Com_admin_commands')"
        )
        return sum(int(value) for _, value in cursor.fetchall())


def test_a_read_costs_one_round_trip_to_the_database(client, app_env):
    with closing(connect(app_env)) as probe:
        assert client.get("/api/posts").status_code == 200  # the pool holds a connection now
        before = commands_received(probe)
        for _ in range(READS):
            assert client.get("/api/posts").status_code == 200
        after = commands_received(probe)
    # One SELECT per read, nothing before it; plus the probe's own SHOW STATUS.
    assert after - before == READS + 1


def kill_pooled_connections(probe):
    """What a database restart does to the pool, without the restart: every other connection of
    the app account ends (an account may end its own)."""
    with probe.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM information_schema.PROCESSLIST"
            " WHERE user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1) AND id <> CONNECTION_ID()"
        )
        for (thread,) in cursor.fetchall():
            cursor.execute(f"KILL CONNECTION {int(thread)}")


def test_connections_that_died_in_the_pool_cost_no_failed_request(client, writer, app_env):
    title = f"after the pool's connections died {uuid.uuid4().hex[:8]}"
    with closing(connect(app_env)) as probe:
        assert client.get("/api/posts").status_code == 200  # the pool holds a connection now
        kill_pooled_connections(probe)
        assert client.get("/api/posts").status_code == 200
        kill_pooled_connections(probe)
        assert client.get("/readyz").status_code == 200
        kill_pooled_connections(probe)
        created = writer.post("/api/posts", json={"title": title, "body": "stored once"})
        assert created.status_code == 201, created.get_json()
        with probe.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM posts WHERE title = %s", (title,))
            assert cursor.fetchone() == (1,)
