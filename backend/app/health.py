"""Health: /healthz says the process serves; /readyz proves a database round trip."""

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .db import check_answering, lost_before_commit
from .errors import error_response

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    # Goes through the pool, so it turns 200 again by itself when the database is back; no
    # restart needed.
    try:
        check_answering()
        with current_app.extensions["db_engine"].connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        if lost_before_commit(exc):
            raise  # a pooled connection that died: app.db runs the request again
        reason = type(getattr(exc, "orig", None) or exc).__name__
        log.warning("readiness check failed: %s", reason)
        return error_response(503, "database_unavailable", f"database round trip failed ({reason})")
    return jsonify(status="ready")
