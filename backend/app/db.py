"""Database engine: one per process; one transaction per write request, none for reads.

Each gunicorn worker builds its app, and so its engine, after the fork (preload is off). Should
an engine exist before a fork anyway (GUNICORN_PRELOAD=1, or any forking server), the child
drops the inherited pool without closing the parent's sockets (dispose(close=False)).
"""

import logging
import os
import time
import weakref

from flask import current_app, g, request
from pymysql.err import OperationalError as PyMySQLOperationalError
from sqlalchemy import create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError

from .auth import WRITE_METHODS

log = logging.getLogger(__name__)
_engines = weakref.WeakSet()
# A write request's statements form one transaction at InnoDB's default level; reads run without.
WRITE_ISOLATION = "REPEATABLE READ"


def _dispose_inherited_pools():
    for engine in list(_engines):
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_dispose_inherited_pools)


# The request path's waits, innermost first (docs/performance.md, "Bounded waits"): MariaDB stops a
# statement at DB_STATEMENT_TIMEOUT; the client waits this much longer for that error, then gives
# up on a server that does not answer at all (frozen, partitioned). It stays below gunicorn's
# timeout and nginx's proxy_read_timeout, so the app answers before either gives up on it.
REPLY_MARGIN = 0.5
# After a server left a request unanswered, this process does not ask it again for this long:
# requests get 503 at once instead of each waiting out the read timeout in a thread of its own.
HUNG_PAUSE = 2.0
_hung_until = 0.0


def request_read_timeout(config):
    return config.statement_timeout + REPLY_MARGIN


def connect_args(config, read_timeout, statement_timeout=None):
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
        # Also bounds the handshake: a frozen server accepts the TCP connection, then is silent.
        "read_timeout": read_timeout,
        "write_timeout": read_timeout,
        # Timestamps are stored and returned in UTC, whatever the server's time zone.
        "init_command": session,
    }


def make_engine(config):
    engine = create_engine(
        config.database_url,
        # A read is one SELECT, which needs no transaction: in autocommit mode a GET costs no COMMIT
        # round trip, nor a ROLLBACK when its connection goes back to the pool (the saving is in
        # docs/performance.md, "Performance"). connection() opens a transaction for writes.
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        # No pre-ping (a round trip before each request's first statement): a connection that
        # died in the pool is found by the request itself, which runs again (init_app).
        pool_recycle=config.pool_recycle,
        pool_size=config.pool_size,
        max_overflow=config.max_overflow,
        pool_timeout=config.pool_timeout,
        connect_args=connect_args(
            config, request_read_timeout(config), statement_timeout=config.statement_timeout
        ),
    )
    _engines.add(engine)
    event.listen(engine, "handle_error", _note_silence)
    event.listen(engine, "do_connect", _refuse_while_hung)
    return engine


def _timed_out(dbapi_error):
    # PyMySQL's 2003 (connect, handshake) or 2013 (query, ping) with the socket's "timed out": the
    # server did not answer, unlike a refused or reset connection (a stopped server), which fails
    # at once and needs no pause.
    code = dbapi_error.args[0] if dbapi_error.args else None
    return code in (2003, 2013) and "timed out" in str(dbapi_error)


def _note_silence(context):
    global _hung_until
    if _timed_out(context.original_exception):
        _hung_until = time.monotonic() + HUNG_PAUSE


def _refuse_while_hung(*_):
    # Also stops the reconnect SQLAlchemy makes after a pre-ping timed out: one wait, not two.
    if time.monotonic() < _hung_until:
        raise PyMySQLOperationalError(
            2003, f"the database left a request unanswered; not asked again for {HUNG_PAUSE} s"
        )


def check_answering():
    """Raise OperationalError (answered 503) at once while the database is known not to answer,
    before a pooled connection's pre-ping would wait for it."""
    try:
        _refuse_while_hung()
    except PyMySQLOperationalError as exc:
        raise OperationalError("(no statement: the database is not answering)", None, exc) from None


def lost_before_commit(error):
    """True when ERROR says a connection was found dead (the server restarted, or closed it,
    since its last use), not silent. A write commits after its view returns (init_app), so
    nothing the request wrote is stored: it may run again."""
    return (
        isinstance(error, DBAPIError)
        and error.connection_invalidated
        and not _timed_out(error.orig)
    )


def init_app(app, engine):
    app.extensions["db_engine"] = engine

    # A connection that died in the pool fails the first statement sent on it. SQLAlchemy then
    # discards it and every connection opened before it, so the request, run again once, gets a
    # new one: a restarted database costs no failed request, and a read in the steady state one
    # round trip, where a pre-ping on every checkout cost two.
    dispatch = app.dispatch_request

    def dispatch_reconnecting():
        try:
            return dispatch()
        except DBAPIError as error:
            if not lost_before_commit(error):
                raise
        log.info("database connection lost before the request committed; running it again")
        conn = g.pop("db_conn", None)
        if conn is not None:
            conn.close()
        return dispatch()

    app.dispatch_request = dispatch_reconnecting

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


def checkout(engine, isolation_level=None):
    """A pooled connection: in autocommit mode, or ready for one transaction at ISOLATION_LEVEL."""
    conn = engine.connect()
    if isolation_level:
        # Switching the isolation level talks to the driver directly: on a connection that died
        # in the pool it fails with an error SQLAlchemy never sees, so the request would not run
        # again (init_app). A statement proves the connection first; its rollback ends
        # SQLAlchemy's transaction object, and sends nothing in autocommit mode.
        try:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
            conn.execution_options(isolation_level=isolation_level)
        except BaseException:
            conn.close()
            raise
    return conn


def connection():
    """The request's connection. A write request's statements form one transaction, committed at
    the end of a successful request; a read's statements run in autocommit mode."""
    if "db_conn" not in g:
        check_answering()
        isolation = WRITE_ISOLATION if request.method in WRITE_METHODS else None
        g.db_conn = checkout(current_app.extensions["db_engine"], isolation)
    return g.db_conn
