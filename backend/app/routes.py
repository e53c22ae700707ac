"""HTTP routes: the HTML page and the posts API."""

from flask import Blueprint, jsonify, render_template, request, url_for
from werkzeug.exceptions import BadRequest

from . import posts
from .db import connection
from .errors import ApiError, NotFoundError

bp = Blueprint("posts", __name__)


def json_body():
    if not request.is_json:
        raise ApiError("send the body as application/json", 415, "unsupported_media_type")
    try:
        return request.get_json()
    except BadRequest:
        raise ApiError("request body is not valid JSON", 400, "malformed_json") from None


def found(post, post_id):
    if post is None:
        raise NotFoundError(f"no post with id {post_id}")
    return post


@bp.get("/")
def index():
    return render_template("index.html", posts=posts.list_posts(connection()))


@bp.get("/api/posts")
def list_posts():
    limit, offset = posts.parse_page(request.args)
    items = posts.list_posts(connection(), limit, offset)
    return jsonify(posts=items, limit=limit, offset=offset)


@bp.post("/api/posts")
def create_post():
    title, body = posts.validate_post(json_body())
    post = posts.create_post(connection(), title, body)
    location = url_for("posts.get_post", post_id=post["id"])
    return jsonify(post), 201, {"Location": location}


@bp.get("/api/posts/<int:post_id>")
def get_post(post_id):
    return jsonify(found(posts.get_post(connection(), post_id), post_id))


@bp.put("/api/posts/<int:post_id>")
def update_post(post_id):
    title, body = posts.validate_post(json_body())
    return jsonify(found(posts.update_post(connection(), post_id, title, body), post_id))


@bp.delete("/api/posts/<int:post_id>")
def delete_post(post_id):
    if not posts.delete_post(connection(), post_id):
        raise NotFoundError(f"no post with id {post_id}")
    return "", 204
