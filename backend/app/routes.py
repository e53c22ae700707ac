"""HTTP routes: the HTML page and the posts API."""

import json

from flask import Blueprint, Response, current_app, g, jsonify, render_template, request, url_for
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter

from . import idempotency, posts
from .db import connection
from .errors import ApiError, NotFoundError, ValidationError

bp = Blueprint("posts", __name__)


class PostId(BaseConverter):
    """A post id as the database makes it: ASCII digits without a leading zero.

    Werkzeug's own int converter also takes "0001" and digits of any script ("\uff11"), so one
    post would answer to many URLs. Anything else is no route: 404.
    """

    regex = r"[1-9][0-9]{0,9}"

    def to_python(self, value):
        return int(value)


@bp.record_once
def _register_converter(state):
    # Runs when the blueprint is registered, before its URL rules are compiled.
    state.app.url_map.converters["post_id"] = PostId


@bp.before_app_request
def _encoded_slash_is_no_route():
    # Routes match PATH_INFO, where the server has already decoded %2F into "/", so
    # /api/posts%2F1 would reach post 1. An encoded slash is data, not a separator (RFC 3986 2.2),
    # and no route holds one: the raw URI (gunicorn's RAW_URI, Werkzeug's REQUEST_URI) tells.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    if "%2f" in raw.partition("?")[0].lower():
        raise NotFound()


def _unique_keys(pairs):
    # json.loads keeps the last of two equal keys: {"title": "a", "title": "b"} would be "b".
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise ValidationError(key, "appears more than once")
        seen.add(key)
    return dict(pairs)


def json_body():
    codings = [c.strip().lower() for c in request.headers.get("Content-Encoding", "").split(",")]
    if any(coding not in ("", "identity") for coding in codings):
        # RFC 9110 15.5.16: say which content codings are accepted.
        raise ApiError(
            "send the body uncompressed (Content-Encoding: identity)",
            415,
            "unsupported_media_type",
            {"Accept-Encoding": "identity"},
        )
    if not request.is_json:
        raise ApiError("send the body as application/json", 415, "unsupported_media_type")
    try:
        return current_app.json.loads(request.get_data(), object_pairs_hook=_unique_keys)
    except ValueError:  # JSONDecodeError, and bytes in no encoding JSON allows
        raise ApiError("request body is not valid JSON", 400, "malformed_json") from None
    except RecursionError:
        # json.loads recurses per nesting level; no valid post is nested more than one level.
        raise ApiError("request body is nested too deeply", 400, "malformed_json") from None


def found(post, post_id):
    if post is None:
        raise NotFoundError(f"no post with id {post_id}")
    return post


@bp.get("/")
def index():
    # A shell without data (static/posts.js asks the API): served whatever the database does.
    return render_template("index.html")


@bp.get("/api/posts")
def list_posts():
    limit, before, offset = posts.parse_page(request.args)
    items, next_before = posts.list_posts_json(connection(), limit, before, offset)
    next_page = (
        url_for("posts.list_posts", limit=limit, before=next_before) if next_before else None
    )
    # What jsonify(posts=..., limit=..., offset=..., next=...) sends, with the items as MariaDB
    # encoded them: "posts" sorts last, so it closes the object.
    head = json.dumps({"limit": limit, "next": next_page, "offset": offset}, separators=(",", ":"))
    return Response(f'{head[:-1]},"posts":{items}}}\n', mimetype="application/json")


@bp.post("/api/posts")
def create_post():
    title, body = posts.validate_post(json_body())
    key = idempotency.requested_key(request.headers)
    if key is None:
        return _created(posts.create_post(connection(), title, body))
    idempotency.purge_expired(current_app.extensions["db_engine"])
    conn = connection()
    content = idempotency.content_sha256(title, body)
    replay = idempotency.claim(conn, g.token_sha256, key, content)
    if replay is not None:
        return replay
    response = _created(posts.create_post(conn, title, body))
    # Committed with the post (app.db commits after the request), or rolled back with it.
    idempotency.record(conn, g.token_sha256, key, response)
    return response


def _created(post):
    response = jsonify(post)
    response.status_code = 201
    response.headers["Location"] = url_for("posts.get_post", post_id=post["id"])
    return response


@bp.get("/api/posts/<post_id:post_id>")
def get_post(post_id):
    return jsonify(found(posts.get_post(connection(), post_id), post_id))


@bp.put("/api/posts/<post_id:post_id>")
def update_post(post_id):
    title, body = posts.validate_post(json_body())
    return jsonify(found(posts.update_post(connection(), post_id, title, body), post_id))


@bp.delete("/api/posts/<post_id:post_id>")
def delete_post(post_id):
    if not posts.delete_post(connection(), post_id):
        raise NotFoundError(f"no post with id {post_id}")
    return "", 204
