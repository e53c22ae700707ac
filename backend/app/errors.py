"""Errors: typed exceptions in, one JSON shape out: {"error", "message", "request_id"}."""

import logging
import re

from flask import jsonify, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .logging import request_id
from .metrics import POOL_TIMEOUTS

log = logging.getLogger(__name__)
# MariaDB's error for a statement stopped by max_statement_time.
MAX_STATEMENT_TIME_EXCEEDED = 1969


def _one_line(exc):
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


class ApiError(Exception):
    status = 400
    error = "bad_request"
    headers = None

    def __init__(self, message, status=None, error=None, headers=None):
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.error = error or self.error
        self.headers = headers or self.headers


class ValidationError(ApiError):
    status = 422
    error = "validation_failed"

    def __init__(self, field, message):
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFoundError(ApiError):
    status = 404
    error = "not_found"


def error_response(status, error, message, **extra):
    response = jsonify(error=error, message=message, request_id=request_id(), **extra)
    response.status_code = status
    return response


def init_app(app):
    @app.errorhandler(ApiError)
    def _api_error(exc):
        extra = {"field": exc.field} if isinstance(exc, ValidationError) else {}
        response = error_response(exc.status, exc.error, exc.message, **extra)
        response.headers.update(exc.headers or {})
        return response

    # The database is down, restarting, or cut a statement at max_statement_time: a clean 503
    # the client may retry, never a 500 and never a worker held until the request times out.
    @app.errorhandler(OperationalError)
    @app.errorhandler(PoolTimeoutError)
    def _database_unavailable(exc):
        cause = getattr(exc, "orig", None) or exc
        log.warning("database error: %s", _one_line(cause))
        if isinstance(exc, PoolTimeoutError):
            POOL_TIMEOUTS.inc()
        if cause.args and cause.args[0] == MAX_STATEMENT_TIME_EXCEEDED:
            message = "the query took too long and was cancelled; retry shortly"
            return error_response(503, "database_timeout", message)
        message = "the database is unavailable; retry shortly"
        return error_response(503, "database_unavailable", message)

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        name = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        response = error_response(exc.code or 500, name, exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.after_request
    def _no_html_from_the_framework(response):
        # Werkzeug's own redirect (a doubled slash to the canonical URL) bypasses the error
        # handlers and carries an HTML page; say the same in JSON.
        location = response.headers.get("Location")
        if location and 300 <= response.status_code < 400 and response.mimetype == "text/html":
            redirect = jsonify(message=f"moved to {location}", location=location)
            response.set_data(redirect.get_data())
            response.mimetype = "application/json"
        # An answer without a body (DELETE's 204, OPTIONS) has no media type to announce.
        if request.method == "OPTIONS" and response.status_code == 200 and not response.data:
            response.status_code = 204
        if response.status_code == 204:
            response.headers.pop("Content-Type", None)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc):
        # The traceback goes to the log (one JSON line); the client gets no internals.
        log.exception("unhandled exception")
        return error_response(500, "internal_error", "unexpected error; quote the request_id")
