"""Idempotency keys for POST (IETF draft "The Idempotency-Key HTTP Header Field").

A client that sends `Idempotency-Key: <key>` may retry the POST after a timeout, a 5xx or a lost
connection: the retry gets the first attempt's answer and never makes a second post. The key is
claimed in the write's own transaction (migration 0003) and its answer stored there before the
commit, so a key and its post are stored together or not at all. The same key with other content
is 422; a key whose first request is still running is 409; keys live 24 hours; each token has a
key space of its own.
"""

import hashlib
import json
import time

import sqlalchemy as sa
from flask import Response
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from .db import checkout
from .errors import ApiError
from .posts import metadata

HEADER = "Idempotency-Key"
KEY_MAX = 255
# Expired keys are deleted this often per process, a batch at a time, outside any request's
# transaction.
PURGE_EVERY = 3600.0
PURGE_BATCH = 1000
DUPLICATE_ENTRY = 1062
LOCK_WAIT_TIMEOUT = 1205

keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("token_sha256", sa.BINARY(32), primary_key=True),
    sa.Column("idempotency_key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("request_sha256", sa.BINARY(32), nullable=False),
    sa.Column("created_at", mysql.DATETIME(fsp=6), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=False),
    sa.Column("location", sa.String(255), nullable=False),
    sa.Column("body", mysql.MEDIUMTEXT, nullable=False),
)
_EXPIRED = keys.c.created_at < sa.text("NOW(6) - INTERVAL 1 DAY")
_last_purge = 0.0


def requested_key(headers):
    """The request's key, or None without the header; ApiError 400 for a malformed one."""
    value = headers.get(HEADER)
    if value is None:
        return None
    # The draft's form is a Structured Field string ("..."); a bare key is accepted as well.
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    # Quote and backslash would be escapes in a Structured Field string: not part of a key.
    if (
        not 1 <= len(value) <= KEY_MAX
        or not value.isascii()
        or not value.isprintable()
        or (set(value) & set('"\\'))
    ):
        raise ApiError(
            f'{HEADER} must be 1 to {KEY_MAX} printable ASCII characters, without " or \\',
            400,
            "invalid_idempotency_key",
        )
    return value


def content_sha256(*parts):
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).digest()


# Every statement on a key runs with no lock wait: another transaction holding the key (its first
# request still running) is a 409 at once, never a wait until that request ends, and a statement
# that never waits for a lock cannot be part of a deadlock.
_INSERT = sa.text(
    "SET STATEMENT innodb_lock_wait_timeout = 0 FOR INSERT INTO idempotency_keys "
    "(token_sha256, idempotency_key, request_sha256, status, location, body) "
    "VALUES (:token, :key, :request, 0, '', '')"
)
_LOCK = sa.text(
    "SET STATEMENT innodb_lock_wait_timeout = 0 FOR SELECT request_sha256, status, location, "
    "body, created_at < NOW(6) - INTERVAL 1 DAY AS expired FROM idempotency_keys "
    "WHERE token_sha256 = :token AND idempotency_key = :key FOR UPDATE"
)
_RECLAIM = sa.text(
    "UPDATE idempotency_keys SET request_sha256 = :request, created_at = NOW(6), status = 0, "
    "location = '', body = '' WHERE token_sha256 = :token AND idempotency_key = :key"
)


def _no_lock_wait(conn, statement, params):
    try:
        return conn.execute(statement, params)
    except DBAPIError as exc:
        if exc.orig is not None and exc.orig.args[:1] == (LOCK_WAIT_TIMEOUT,):
            raise ApiError(
                f"a request with this {HEADER} is still being processed; retry shortly",
                409,
                "idempotency_key_in_use",
            ) from None
        raise


def claim(conn, token_sha256, key, request_sha256):
    """Take KEY for this request in CONN's transaction; returns the stored answer of an earlier
    request with the same key and content, or None when this request is the first."""
    params = {"token": token_sha256, "key": key, "request": request_sha256}
    try:
        _no_lock_wait(conn, _INSERT, params)
        return None
    except DBAPIError as exc:
        if exc.orig is None or exc.orig.args[:1] != (DUPLICATE_ENTRY,):
            raise
    stored = _no_lock_wait(conn, _LOCK, params).one()
    if stored.expired:
        conn.execute(_RECLAIM, params)
        return None
    if stored.request_sha256 != request_sha256:
        raise ApiError(
            f"this {HEADER} was used for a request with other content; use a new key",
            422,
            "idempotency_key_reused",
        )
    response = Response(stored.body, stored.status, mimetype="application/json")
    response.headers["Location"] = stored.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def record(conn, token_sha256, key, response):
    """Store RESPONSE as KEY's answer, in the transaction that claimed it."""
    conn.execute(
        keys.update()
        .where((keys.c.token_sha256 == token_sha256) & (keys.c.idempotency_key == key))
        .values(
            status=response.status_code,
            location=response.headers.get("Location", ""),
            body=response.get_data(as_text=True),
        )
    )


def purge_expired(engine):
    """Delete a batch of expired keys, at most once per PURGE_EVERY seconds per process."""
    global _last_purge
    if time.monotonic() - _last_purge < PURGE_EVERY:
        return
    _last_purge = time.monotonic()
    # READ COMMITTED takes no gap locks, so new keys are never held up by the purge.
    with checkout(engine, "READ COMMITTED") as conn:
        conn.execute(keys.delete().where(_EXPIRED).with_dialect_options(mysql_limit=PURGE_BATCH))
        conn.commit()
