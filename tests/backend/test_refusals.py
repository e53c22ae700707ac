"""gunicorn's refusals (app/refusals.py): the request id nginx sent, found in the bytes gunicorn
read before it refused, and the answer written as JSON. The whole path runs through nginx and a
real gunicorn in tests/e2e/test_error_bodies.py."""

import json
import socket

import pytest
from gunicorn import util
from gunicorn.config import Config
from gunicorn.http import errors, parser

from app import refusals

RID = "0123456789abcdef0123456789abcdef"


def refuse(raw: bytes):
    """Parse RAW as gunicorn does; returns the exception it raised and the JSON it answers."""
    refusals.install()
    request = parser.RequestParser(Config(), iter([raw]), ("127.0.0.1", 1))
    with pytest.raises(errors.ParseException) as raised:
        next(request)
    left, right = socket.socketpair()
    with left, right:
        util.write_error(left, 400, "Bad Request", "Invalid HTTP Header: 'USER-AGENT'")
        left.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := right.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in head
    return raised.value, json.loads(body)


@pytest.mark.parametrize(
    "raw",
    [
        # nginx's order: its own headers first, the client's after.
        b"GET / HTTP/1.1\r\nHost: a\r\nX-Request-ID: %s\r\nUser-Agent: x\x1by\r\n\r\n",
        # A method gunicorn refuses before it reads a header: the id is among the bytes read.
        b"AB / HTTP/1.1\r\nHost: a\r\nX-Request-ID: %s\r\n\r\n",
    ],
)
def test_refusal_names_the_request_id_nginx_sent(raw):
    _, body = refuse(raw % RID.encode())
    assert body == {
        "error": "bad_request",
        "message": "Invalid HTTP Header: 'USER-AGENT'",
        "request_id": RID,
    }
    # Written once: the next refusal on this thread does not inherit it.
    assert refusals.request_id() is None


def test_refusal_without_an_id_says_null():
    _, body = refuse(b"GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\x1by\r\n\r\n")
    assert body["request_id"] is None
