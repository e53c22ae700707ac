"""Write access: POST, PUT, PATCH and DELETE need `Authorization: Bearer <token>`; reads are public.

Tokens come from a file secret (API_TOKENS_FILE, one per line). Several may be valid at once, so a
new token can be handed out before the old one is removed. The check runs before any database
work, compares in constant time, and never logs a token.
"""

import hashlib
import hmac

from flask import g, request

from .errors import ApiError

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Unauthorized(ApiError):
    status = 401
    error = "unauthorized"

    def __init__(self, message, challenge):
        super().__init__(message)
        # RFC 6750: the challenge says which scheme to use and, for a bad token, what went wrong.
        self.headers = {"WWW-Authenticate": challenge}


def _digest(token):
    # Equal-length digests: the comparison takes the same time whatever the token's length.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def init_app(app, tokens):
    accepted = tuple(_digest(token) for token in tokens)

    def matches(token):
        presented = _digest(token)
        found = False
        for digest in accepted:  # no early exit: every token is compared every time
            found |= hmac.compare_digest(digest, presented)
        if found:
            # Which token wrote: its idempotency keys are its own (app.idempotency).
            g.token_sha256 = presented
        return found

    @app.before_request
    def _require_token_for_writes():
        if request.method not in WRITE_METHODS:
            return
        header = request.headers.get("Authorization")
        if header is None:
            raise Unauthorized(
                "writes need an Authorization: Bearer <token> header", 'Bearer realm="api"'
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or not matches(token):
            raise Unauthorized(
                "the bearer token is missing, malformed or not valid",
                'Bearer realm="api", error="invalid_token"',
            )
