"""Database engine: one per process; one transaction per write request, none for reads.

Each gunicorn worker builds its app, and so its engine, after the fork (preload is off). Should
an engine exist before a fork anyway (GUNICORN_PRELOAD=1, or any forking server), the child
drops the inherited pool without closing the parent's sockets (dispose(close=False)).
"""

import os
import weakref

from flask import current_app, g, request
from sqlalchemy import create_engine

from .auth import WRITE_METHODS

_engines = weakref.WeakSet()
# A write request's statements form one transaction at InnoDB's default level; reads run without.
WRITE_ISOLATION = "REPEATABLE READ"


def _dispose_inherited_pools():
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_inherited_pools)


def connect_args(config, read_timeout=30, statement_timeout=None):
    """PyMySQL arguments. The request path bounds every statement (statement_timeout, seconds);
    migrations (app.migrate) pass none and a read timeout long enough for DDL on a large table."""
    session = "SET time_zone = '+00:00'"
    if statement_timeout:
        # MariaDB stops the statement itself and frees its locks; the client gets error 1969.
        session += f", max_statement_time = {float(statement_timeout)}"
    tls = {}
    if config.db_tls_ca_file:
        # Across a network: TLS or no connection, to the server that certificate names.
        tls = {"ssl_ca": config.db_tls_ca_file, "ssl_verify_identity": True}
    return {
        **tls,
        "connect_timeout": config.connect_timeout,
        # A query that hangs on a half-dead server fails instead of pinning a worker forever.
        "read_timeout": read_timeout,
        "write_timeout": read_timeout,
        # Timestamps are stored and returned in UTC, whatever the server's time zone.
        "init_command": session,
    }


def make_engine(config):
    engine = create_engine(
        config.database_url,
        # A read is one SELECT, which needs no transaction: in autocommit mode a GET costs no COMMIT
        # round trip, nor a ROLLBACK when its connection goes back to the pool. Measured: -20% CPU
        # (app + MariaDB) per list request (docs/operations.md, "Performance"). connection()
        # opens a transaction for writes.
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        # Checks a connection before use, so a restarted server costs one retry, not an error.
        pool_pre_ping=True,
        pool_recycle=config.pool_recycle,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=config.pool_timeout,
        connect_args=connect_args(config, statement_timeout=config.statement_timeout),
    )
    _engines.add(engine)
    return engine


def init_app(app, engine):
    app.extensions["db_engine"] = engine

    # Commit before the response leaves, so a failed commit answers 500, never a false 201.
    @app.after_request
    def _commit(response):
        conn = g.get("db_conn")
        if conn is not None and request.method in WRITE_METHODS and conn.in_transaction():
            if response.status_code < 400:
                conn.commit()
            else:
                conn.rollback()
        return response

    @app.teardown_request
    def _release(exc):
        conn = g.pop("db_conn", None)
        if conn is not None:
            conn.close()  # back to the pool; rolls back anything left open


def connection():
    """The request's connection. A write request's statements form one transaction, committed at
    the end of a successful request; a read's statements run in autocommit mode."""
    if "db_conn" not in g:
        conn = current_app.extensions["db_engine"].connect()
        if request.method in WRITE_METHODS:
            conn.execution_options(isolation_level=WRITE_ISOLATION)
        g.db_conn = conn
    return g.db_conn
