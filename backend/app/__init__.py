"""Flask application factory: wires the modules, each of which does one thing."""

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, db, errors, health, metrics, routes
from . import logging as request_logging
from .config import Config


def create_app(config=None):
    config = (config or Config.from_env()).require_api_tokens()
    request_logging.configure_logging(config.log_level)

    app = Flask(__name__)
    app.config["APP_CONFIG"] = config
    # UTF-8 JSON: an emoji costs 4 bytes instead of a 12-byte escaped surrogate pair.
    app.json.ensure_ascii = False
    # Largest valid post: 10,200 characters, each up to 12 bytes when JSON-escaped ("\ud83c\udf89").
    app.config["MAX_CONTENT_LENGTH"] = 128 * 1024

    request_logging.init_app(app)
    metrics.init_app(app)
    # Before any database work: a write without a valid token never opens a connection.
    auth.init_app(app, config.api_tokens)
    engine = db.make_engine(config)
    metrics.instrument_engine(engine, config.pool_size + config.max_overflow)
    db.init_app(app, engine)
    errors.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(routes.bp)

    # One trusted hop (nginx), and only the headers nginx overwrites on every request: the client
    # address and the scheme. The host is nginx's Host header (its server_name and public port);
    # X-Forwarded-Host is never trusted, so a client cannot choose the host of a redirect.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=0)
    return app
