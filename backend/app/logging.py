"""Logging: JSON lines on stdout; each request's lines carry its request id.

The id comes from the X-Request-ID header (nginx sets it to $request_id), or is generated,
and is echoed in the response.
"""

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (too long, quotes, control characters) is replaced, so it cannot forge log lines.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id():
    """The current request's id, or None outside a request."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _VALID_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
    return g.request_id


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# The value of an access_token parameter (RFC 6750 2.3), its name percent-encoded too, as Werkzeug
# decodes it. Such requests are refused (app/auth.py) but still logged, by gunicorn (query) and
# Werkzeug's development server (request line), and no token may reach a log.
_ACCESS_TOKEN_VALUE = re.compile(
    r"((?:a|%61)(?:c|%63)(?:c|%63)(?:e|%65)(?:s|%73)(?:s|%73)(?:_|%5f)"
    r"(?:t|%74)(?:o|%6f)(?:k|%6b)(?:e|%65)(?:n|%6e)=)[^&\s\"']*",
    re.IGNORECASE,
)


def redact(text):
    """TEXT with the value of every access_token parameter replaced by [redacted]."""
    return _ACCESS_TOKEN_VALUE.sub(r"\1[redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra `fields`."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            # Terminal colours (Werkzeug's development server adds them) are no part of a message.
            "message": redact(_ANSI_ESCAPE.sub("", record.getMessage())),
        }
        rid = getattr(record, "request_id", None) or request_id()
        if rid:
            entry["request_id"] = rid
        for name, value in (getattr(record, "fields", None) or {}).items():
            entry[name] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            entry["exc_info"] = redact(self.formatException(record.exc_info))
        # ASCII JSON: what a client sends can put U+0085 or U+2028 (line breaks to many readers)
        # or a lone surrogate (not encodable as UTF-8) into a message; escaped, each entry stays
        # one line of valid UTF-8.
        return json.dumps(entry, ensure_ascii=True, default=str)


def wsgi_text(value):
    """A WSGI string (the raw bytes as latin-1, PEP 3333) as the UTF-8 text the client sent;
    bytes that are not UTF-8 become U+FFFD."""
    if value is None:
        return None
    return value.encode("latin-1", "replace").decode("utf-8", "replace")


def configure_logging(level="INFO"):
    """Send every logger to stdout as JSON (idempotent: replaces its own handler)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_app_json", False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler._app_json = True
    root.addHandler(handler)
    root.setLevel(level)


def init_app(app):
    @app.before_request
    def _assign_request_id():
        request_id()

    @app.after_request
    def _echo_request_id(response):
        response.headers[REQUEST_ID_HEADER] = request_id()
        return response
