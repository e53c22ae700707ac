"""`python -m app.migrate [--contract | --heads | --revisions]`: the schema migrations, as DB_USER
(the migrator).

Without an option, the expand migrations (alembic upgrade expand@head): what the migrate service
runs before any replica changes, since the release before works on an expanded schema. With
--contract, every migration (alembic upgrade heads): run by `make migrate-contract` once every
replica runs this release. --heads prints the heads this code ships, --revisions every revision it
knows (what a backup's schema may be at, scripts/restore.sh); neither touches a database.

A database at revisions this code does not know is taken for a later release's (the release
before, started again after a rollback). It is left as it is when this code can work on it: every
table and column this code uses is there, and every other column of its tables may be left out
of an insert (nullable, or with a default), as a later release's expand migrations leave them.
Otherwise that release's contract step has run, and it is refused, saying what stands in the way.
A contract step that only adds a constraint goes unseen.

The database can report healthy before its init scripts have created the accounts, so the
first connection is retried with exponential backoff for up to MIGRATE_TIMEOUT seconds (60).
Sample posts are inserted only when SEED_SAMPLE_POSTS=1 and the table is empty.
"""

import logging
import os
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from . import idempotency, posts
from .config import Config, ConfigError
from .db import connect_args
from .logging import configure_logging

log = logging.getLogger("app.migrate")
ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"
# Seconds a migration statement may wait for the server: an ALTER of a grown table can take many
# minutes, and an hour still ends a migration whose server died (MIGRATE_READ_TIMEOUT overrides).
READ_TIMEOUT = 3600
SAMPLE_POSTS = [
    ("Welcome", "This post was seeded because SEED_SAMPLE_POSTS=1 (development only)."),
    ("Escaping works", "<script>alert('this stays text')</script>"),
    ("Unicode", "Emoji 🎉 and right-to-left: שלום"),
]


def scripts():
    return ScriptDirectory.from_config(AlembicConfig(str(ALEMBIC_INI)))


def code_heads():
    """The migration heads this code ships (one per phase branch), sorted."""
    return sorted(scripts().get_heads())


def code_revisions():
    """Every migration this code ships, sorted."""
    return sorted(r.revision for r in scripts().walk_revisions())


def pending(current):
    """The migrations of this code that a database at CURRENT (its heads) has not run, sorted."""
    script = scripts()
    ran = {r.revision for r in script.iterate_revisions(current, "base")} if current else set()
    return sorted(set(code_revisions()) - ran)


def unworkable(conn):
    """What in the database this code cannot work with, one phrase each: a column of its tables
    that is missing, or one it does not know that an insert of its cannot leave out."""
    inspector = sa.inspect(conn)
    problems = []
    for table in (posts.posts, idempotency.keys):
        found = inspector.get_columns(table.name) if inspector.has_table(table.name) else []
        names = {column["name"] for column in found}
        problems += [f"lacks {table.name}.{c.name}" for c in table.columns if c.name not in names]
        problems += [
            f"requires {table.name}.{column['name']}"
            for column in found
            if column["name"] not in table.columns
            and not column["nullable"]
            and column.get("default") is None
            and not column.get("autoincrement")
        ]
    return problems


def later_release(conn, current, unknown, argv):
    """The exit status for a database at CURRENT, whose UNKNOWN heads this code does not know."""
    where = f"the database schema is at {','.join(current)}, from a later release"
    if argv == ["--contract"]:
        log.error("refused: %s: its contract step is that release's (make migrate-contract)", where)
        return 1
    problems = unworkable(conn)
    if problems:
        log.error(
            "refused: %s, and %s, which this code cannot work with: that release's contract step "
            "ran. Deploy that release, or restore a backup taken before it (docs/deploy.md)",
            where,
            ", ".join(problems),
        )
        return 1
    log.info(
        "%s (%s unknown here); this code works on it: nothing to do",
        where,
        ",".join(unknown),
    )
    return 0


def connect_with_backoff(engine, timeout, first_delay=0.5, max_delay=5.0):
    """Open a connection, retrying OperationalError with exponential backoff until timeout."""
    deadline = time.monotonic() + timeout
    delay, attempt = first_delay, 1
    while True:
        try:
            return engine.connect()
        except OperationalError as exc:
            remaining = deadline - time.monotonic()
            reason = exc.orig.args if exc.orig is not None else exc
            if remaining <= 0:
                raise TimeoutError(
                    f"database not reachable as this account after {timeout:g}s "
                    f"({attempt} attempts); last error: {reason}; check DB_HOST, DB_PORT, "
                    "DB_USER and its password file, and that db/initdb.d created the account"
                ) from None
            wait = min(delay, max_delay, remaining)
            log.warning(
                "database not ready (attempt %d: %s); retry in %.1fs", attempt, reason, wait
            )
            time.sleep(wait)
            delay, attempt = delay * 2, attempt + 1


def make_engine(config, read_timeout=READ_TIMEOUT):
    """The migration's own engine: one connection, no statement time limit (MariaDB DDL is not
    transactional, so an ALTER cut halfway is worse than a slow one), and a read timeout that
    only a dead server reaches."""
    return sa.create_engine(
        config.database_url,
        poolclass=NullPool,
        connect_args=connect_args(config, read_timeout=read_timeout),
    )


def seed(conn):
    if conn.execute(sa.select(sa.func.count()).select_from(posts.posts)).scalar():
        log.info("posts table is not empty; sample posts skipped")
        return
    for title, body in SAMPLE_POSTS:
        posts.create_post(conn, title, body)
    log.info("inserted %d sample posts", len(SAMPLE_POSTS))


def main(argv):
    configure_logging(os.environ.get("LOG_LEVEL", "INFO").upper())
    if argv not in ([], ["--contract"], ["--heads"], ["--revisions"]):
        log.error("usage: python -m app.migrate [--contract | --heads | --revisions]")
        return 2
    if argv == ["--heads"]:
        print(",".join(code_heads()))
        return 0
    if argv == ["--revisions"]:
        print(",".join(code_revisions()))
        return 0
    target = "heads" if argv == ["--contract"] else "expand@head"
    try:
        config = Config.from_env()
        timeout = float(os.environ.get("MIGRATE_TIMEOUT", "60"))
        read_timeout = int(os.environ.get("MIGRATE_READ_TIMEOUT", READ_TIMEOUT))
    except (ConfigError, ValueError) as exc:
        log.error("%s", exc)
        return 2

    engine = make_engine(config, read_timeout)
    log.info("migrating %s to %s", config.safe_url, target)
    try:
        with connect_with_backoff(engine, timeout) as conn:
            current = sorted(MigrationContext.configure(conn).get_current_heads())
            # Alembic gives each migration its own transaction only on a connection in none.
            conn.rollback()
            unknown = sorted(set(current) - set(code_revisions()))
            if unknown:
                return later_release(conn, current, unknown, argv)
            alembic_cfg = AlembicConfig(str(ALEMBIC_INI))
            alembic_cfg.attributes["connection"] = conn
            command.upgrade(alembic_cfg, target)
            conn.commit()
            if config.seed_sample_posts:
                seed(conn)
                conn.commit()
            current = sorted(MigrationContext.configure(conn).get_current_heads())
    except TimeoutError as exc:
        log.error("migrate failed: %s", exc)
        return 1
    finally:
        engine.dispose()
    waiting = pending(current)
    if waiting:
        log.info(
            "database schema is at %s; contract migrations wait for make migrate-contract: %s",
            ",".join(current),
            ",".join(waiting),
        )
    else:
        log.info("database schema is at %s: every migration of this code ran", ",".join(current))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
