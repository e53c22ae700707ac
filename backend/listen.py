"""Where gunicorn listens: GUNICORN_BIND, "host:port[,host:port...]" (default 0.0.0.0:8000).

Read here only, by gunicorn.conf.py, the container healthcheck (healthcheck.py) and the metrics
readiness probe (app/metrics.py). Standard library only: the healthcheck imports it every 10 s.
"""

import os

DEFAULT_PORT = 8000


def addresses():
    """Every address of GUNICORN_BIND, as gunicorn's `bind` setting takes them."""
    bind = os.environ.get("GUNICORN_BIND", f"0.0.0.0:{DEFAULT_PORT}")
    return [address.strip() for address in bind.split(",")]


def port():
    """The application's port: that of the first address (gunicorn's default without one)."""
    first = addresses()[0]
    return int(first.rsplit(":", 1)[1]) if ":" in first else DEFAULT_PORT
