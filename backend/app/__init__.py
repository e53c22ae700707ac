"""Flask application factory: wires the modules, each of which does one thing."""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import db, errors, health, routes
from . import logging as request_logging
from .config import Config


def create_app(config=None):
    config = config or Config.from_env()
    request_logging.configure_logging(config.log_level)

    app = Flask(__name__)
    app.config["APP_CONFIG"] = config
    # Largest valid post: 10,200 characters, each up to 12 bytes when JSON-escaped ("\ud83c\udf89").
    app.config["MAX_CONTENT_LENGTH"] = 128 * 1024

    request_logging.init_app(app)
    db.init_app(app, db.make_engine(config))
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(routes.bp)

    # One trusted hop (nginx): client address, scheme and host come from its X-Forwarded-* headers.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    return app
