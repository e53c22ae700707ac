"""Errors: typed exceptions in, one JSON shape out: {"error", "message", "request_id"}."""

import logging
import re

from flask import jsonify
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from .logging import request_id

log = logging.getLogger(__name__)


class ApiError(Exception):
    status = 400
    error = "bad_request"

    def __init__(self, message, status=None, error=None):
        super().__init__(message)
        self.message = message
        self.status = status or self.status
        self.error = error or self.error


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
        return error_response(exc.status, exc.error, exc.message, **extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc):
        name = re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        response = error_response(exc.code or 500, name, exc.description or exc.name)
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods))
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc):
        # The traceback goes to the log (one JSON line); the client gets no internals.
        log.exception("unhandled exception")
        return error_response(500, "internal_error", "unexpected error; quote the request_id")
