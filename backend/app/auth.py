"""Write access: POST, PUT, PATCH and DELETE need `Authorization: Bearer <token>`; reads are public.

Tokens come from a file secret (API_TOKENS_FILE, one per line). Several may be valid at once, so a
new token can be handed out before the old one is removed. The check runs before any database
work, compares in constant time, and never logs a token. A token sent any other way (RFC 6750's
`access_token` query or form parameter) is refused whatever the method: URLs end up in logs, browser
histories and Referer headers.
"""

import hashlib
import hmac

from flask import g, request

from .errors import ApiError

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


CHALLENGE = 'Bearer realm="api"'


class Unauthorized(ApiError):
    status = 401
    error = "unauthorized"

    def __init__(self, message, challenge):
        super().__init__(message)
        # RFC 6750: the challenge says which scheme to use and, for a bad token, what went wrong.
        self.headers = {"WWW-Authenticate": challenge}


class TokenOutsideTheHeader(Unauthorized):
    # RFC 6750 3.1: an unsupported way of sending a token (or two ways at once) is invalid_request.
    status = 400
    error = "invalid_request"

    def __init__(self):
        super().__init__(
            "send the token in an Authorization: Bearer <token> header, not in the URL or body",
            f'{CHALLENGE}, error="invalid_request"',
        )


def _token_outside_the_header():
    if "access_token" in request.args:
        return True
    # Only a form body can carry one (RFC 6750 2.2); a JSON body is not parsed here.
    form = request.mimetype == "application/x-www-form-urlencoded"
    return form and "access_token" in request.form


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
        if _token_outside_the_header():
            raise TokenOutsideTheHeader()
        if request.method not in WRITE_METHODS:
            return
        header = request.headers.get("Authorization", "")
        # RFC 7235: credentials = auth-scheme [ 1*SP token68 ]; the scheme is case-insensitive.
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            # RFC 6750 3.1: no bearer token was sent (none, or another scheme): no error code.
            raise Unauthorized("writes need an Authorization: Bearer <token> header", CHALLENGE)
        token = token.lstrip(" ")
        if not token or not matches(token):
            raise Unauthorized(
                "the bearer token is missing, malformed or not valid",
                f'{CHALLENGE}, error="invalid_token"',
            )
