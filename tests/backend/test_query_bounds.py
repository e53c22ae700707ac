"""Every list request costs the same on a table of a million posts, whatever page it asks for, and
no statement of the app account runs longer than DB_STATEMENT_TIMEOUT (2 s by default)."""

import json
import subprocess
import time

import pytest
import requests
from sqlalchemy import text

from app import db, posts
from app.config import Config

ROWS = 1_000_000


@pytest.fixture(scope="module")
def million_posts(mariadb, migrated):
    """(lowest, highest) id of a million posts, inserted in SQL: seconds, not hours of API calls."""
    mariadb.root_sql(
        "USE app;"
        "INSERT INTO posts (title, body, created_at, updated_at)"
        f" SELECT CONCAT('bulk ', seq), 'x', NOW(6), NOW(6) FROM seq_1_to_{ROWS};"
    )
    lowest, highest = mariadb.root_sql(
        "SELECT MIN(id), MAX(id) FROM app.posts WHERE title LIKE 'bulk %'"
    ).split()
    yield int(lowest), int(highest)
    mariadb.root_sql(f"DELETE FROM app.posts WHERE id BETWEEN {lowest} AND {highest}")


@pytest.fixture(scope="module")
def app_engine(app_env):
    engine = db.make_engine(Config.from_env(app_env))
    yield engine
    engine.dispose()


def rows_read(conn, **page):
    """Rows MariaDB read to answer one list request (its Handler_read_* counters)."""

    def handler_reads():
        status = conn.execute(text("SHOW SESSION STATUS LIKE 'Handler_read%'"))
        return sum(int(value) for _, value in status)

    before = handler_reads()
    items = json.loads(posts.list_posts_json(conn, **page)[0])
    after = handler_reads()
    # SHOW STATUS reads a few rows of its own; measure them once and take them out.
    own = handler_reads() - after
    return len(items), after - before - own


def test_deepest_page_reads_as_few_rows_as_the_first(app_engine, million_posts):
    lowest, highest = million_posts
    with app_engine.connect() as conn:
        first = rows_read(conn, limit=100)
        deepest = rows_read(conn, limit=100, before=lowest + 100)
        # Positive control: an offset walks the index, and the counters see it.
        offset = rows_read(conn, limit=100, offset=posts.OFFSET_MAX)
    assert first[0] == deepest[0] == 100
    assert first[1] <= 2 * 100, first
    assert deepest[1] <= 2 * 100, deepest
    assert offset[1] >= posts.OFFSET_MAX, offset


def test_deepest_page_through_the_api(writer, million_posts):
    lowest, _ = million_posts
    before = lowest + 200
    ids = [p["id"] for p in writer.get(f"/api/posts?limit=100&before={before}").json["posts"]]
    assert len(ids) == 100
    assert ids == sorted(ids, reverse=True) and ids[0] < before
    # Timings for the reader (not asserted: machines are shared and noisy).
    for query in ("limit=100", f"limit=100&before={lowest + 100}"):
        started = time.perf_counter()
        assert writer.get(f"/api/posts?{query}").status_code == 200
        print(f"GET /api/posts?{query}: {1000 * (time.perf_counter() - started):.1f} ms")


@pytest.fixture
def posts_locked(mariadb):
    """Holds a write lock on posts from a root session, so any read of it waits."""
    session = subprocess.Popen(
        [
            "mariadb",
            f"--defaults-extra-file={mariadb.run_dir / 'root.cnf'}",
            "--protocol=socket",
            "-uroot",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=mariadb._client_env(),
    )
    session.stdin.write("LOCK TABLES app.posts WRITE; SELECT SLEEP(30);\n")
    session.stdin.flush()
    time.sleep(0.5)  # the lock is taken in microseconds; the session needs to log in first
    try:
        yield
    finally:
        session.kill()  # the lock dies with the session
        session.wait(10)


def test_a_query_that_would_run_long_is_cut_off_with_a_clean_503(gunicorn, posts_locked):
    started = time.monotonic()
    response = requests.get(f"{gunicorn.url}/api/posts", timeout=20)
    waited = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "database_timeout"
    # The statement was stopped by the server (DB_STATEMENT_TIMEOUT, 2 s), not by a client timeout.
    assert waited < 15, f"the request took {waited:.1f} s"
    # Not a hung worker: /healthz is served by the same gunicorn meanwhile.
    assert requests.get(f"{gunicorn.url}/healthz", timeout=10).status_code == 200
