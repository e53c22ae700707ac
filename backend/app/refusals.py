"""gunicorn's own refusals as the stack's JSON errors: {"error", "message", "request_id"}.

gunicorn refuses some requests that nginx passes on before the app sees them (a control byte in a
header value, a second Content-Type, a method of 1-2 or 21+ letters) and answers them with an HTML
page of its own. install() (from gunicorn.conf.py) swaps in a parser that remembers the bytes it
read and a writer that answers JSON with the request id nginx sent among the first headers. Not
imported by the app: gunicorn's master loads it, and the forked workers inherit it.
"""

import json
import re
import threading

from gunicorn import util
from gunicorn.http import errors, message, parser

# nginx's X-Request-ID comes before any header of the client (proxy/snippets/proxy.conf), and the
# client's own copy is never passed on: the first match is nginx's.
_REQUEST_ID = re.compile(rb"\r\nx-request-id:[ \t]*([A-Za-z0-9._:-]{1,128})[ \t]*\r\n", re.I)
# The names nginx's JSON pages (proxy/snippets/json-errors.conf) and the app use.
_ERRORS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}
# The request this thread refuses, from the parse that failed until its answer is written (sync
# workers have one thread; gthread parses and answers a request in the same pool thread).
_refusing = threading.local()


def request_id():
    """The id of the request gunicorn is refusing in this thread, else None."""
    return getattr(_refusing, "request_id", None)


class Request(message.Request):
    """gunicorn's request, keeping the bytes it has read, so a refusal can name the request."""

    _read = b""

    def __init__(self, *args, **kwargs):
        # Parsing happens here: the request line and headers, then the body's framing.
        _refusing.request_id = None
        try:
            super().__init__(*args, **kwargs)
        except errors.ParseException:
            found = _REQUEST_ID.search(b"\r\n" + bytes(self._read))
            _refusing.request_id = found.group(1).decode("ascii") if found else None
            raise

    def read_into(self, unreader, buf, stop=False):
        super().read_into(unreader, buf, stop)
        self._read = buf


def write_error(sock, status_int, reason, mesg):
    """gunicorn.util.write_error's replacement: the same status, as JSON."""
    try:
        body = (
            json.dumps(
                {
                    "error": _ERRORS.get(status_int, "error"),
                    "message": mesg or reason,
                    "request_id": request_id(),
                }
            ).encode("ascii")
            + b"\n"
        )
        head = (
            f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        util.write_nonblock(sock, head.encode("latin-1") + body)
    finally:
        _refusing.request_id = None


def with_request_id(record):
    """Logging filter for gunicorn's handlers: its lines about a refusal carry the request id."""
    if getattr(record, "request_id", None) is None and request_id():
        record.request_id = request_id()
    return True


def install():
    parser.RequestParser.mesg_class = Request
    util.write_error = write_error
