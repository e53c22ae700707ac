"""Gunicorn settings: every knob from a GUNICORN_* variable, with production defaults.

Run from anywhere: `gunicorn -c backend/gunicorn.conf.py` (chdir makes `app` importable).
"""

import os
import sys

from gunicorn import glogging

here = os.path.dirname(os.path.abspath(__file__))
if here not in sys.path:
    sys.path.insert(0, here)

# Workers write their metrics to files there, and the master serves the sum (app/metrics.py).
# prometheus_client picks that mode when it is imported, so the variable is set before the app
# (which imports it) is. compose.yaml gives it a tmpfs of its own; the native runner its run dir.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", "/tmp/backend-metrics")  # noqa: S108
# It must exist before that import: metrics without labels open their files at once.
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], mode=0o700, exist_ok=True)

import listen  # noqa: E402
from app import metrics, refusals  # noqa: E402
from app.config import Config, ConfigError  # noqa: E402
from app.logging import JsonFormatter, wsgi_text  # noqa: E402


def env(name, default):
    return os.environ.get(name, default)


chdir = here
wsgi_app = "app:create_app()"
bind = listen.addresses()

# Database budget: workers x (DB_POOL_SIZE + DB_MAX_OVERFLOW) x replicas < max_connections
# (asserted by tests/backend/test_pool_budget.py against the live server).
workers = int(env("GUNICORN_WORKERS", "2"))
# Threads, so that a request waiting on the database never holds up /healthz, static files or
# the page: with the database frozen, each thread that meets it waits at most the read timeout
# (app/db.py) and the others keep serving. Measured (docs/performance.md, "Bounded waits"): with
# sync workers a frozen database made /healthz wait for it too. Keep threads <= DB_POOL_SIZE, so
# no thread waits for a pooled connection.
worker_class = env("GUNICORN_WORKER_CLASS", "gthread")
threads = int(env("GUNICORN_THREADS", "4"))

# A worker whose main loop has been silent this long is stuck (or booting far too slowly): it is
# killed and replaced. Outermost but one of the request path's waits: above the database client's
# (DB_STATEMENT_TIMEOUT + 0.5 s), not above nginx's proxy_read_timeout (5 s).
timeout = int(env("GUNICORN_TIMEOUT", "5"))
# Below compose's stop_grace_period (30s), so in-flight requests finish before SIGKILL.
graceful_timeout = int(env("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Seconds an idle connection stays open (gthread keeps it without holding a thread). nginx reuses
# its connections (proxy/templates/upstream.conf.template) and closes idle ones first: longer
# here, so it is never gunicorn that closes one as nginx sends a request on it (held by
# tests/static/test_nginx_config.py).
keepalive = int(env("GUNICORN_KEEPALIVE", "75"))
# Recycle workers now and then (bounded memory growth); jitter keeps them from restarting together.
# Sized to the throughput: under load a worker reached 1,000 requests every few seconds, and its
# boots (imports, a new pool) took a large share of the read path's CPU (docs/performance.md,
# "Performance"); 100,000 lasts minutes at full load.
max_requests = int(env("GUNICORN_MAX_REQUESTS", "100000"))
max_requests_jitter = int(env("GUNICORN_MAX_REQUESTS_JITTER", "10000"))
# The heartbeat file lives in RAM: faster, and works with a read-only root filesystem.
worker_tmp_dir = env("GUNICORN_WORKER_TMP_DIR", "/dev/shm")  # noqa: S108
# Each worker builds its app and engine after the fork; with preload, app.db disposes the
# inherited pool in the child (os.register_at_fork), so no socket is shared across processes.
preload_app = env("GUNICORN_PRELOAD", "0") == "1"
# gunicorn would take the scheme from X-Forwarded-Proto/-Ssl/-Protocol of peers on this list
# (127.0.0.1 by default: nginx, natively). The app's ProxyFix alone reads nginx's headers.
forwarded_allow_ips = ""
# nginx is the one that refuses oversized requests, with a JSON answer, a request id and a log
# line; gunicorn must never refuse what nginx passed on (tests/e2e/test_header_limits.py), over
# HTTP/1.1 or HTTP/2 (proxy/templates/limits.conf.template: large_client_header_buffers 4 8k).
# 0 is the only value above 8,190 (gunicorn caps any other there): an HTTP/2 path nginx accepts
# is 8 KB Huffman-coded, up to 13,107 bytes once decoded into the request line it passes on.
limit_request_line = 0
# nginx joins an HTTP/2 request's cookie fields into one line, as long as its whole 4 x 8 KB header
# list (gunicorn reads 0 as 8,190, not as unlimited).
limit_request_field_size = 64 * 1024
# gunicorn's maximum: far above the fields nginx accepts (about 1,000, measured on 1.22).
limit_request_fields = 32768
# gunicorn answers a request it refuses (a control byte in a header value...) with an HTML page;
# nginx passes that on. This stack's answer is JSON with the request id, from gunicorn too.
refusals.install()
# No runtime control socket: nothing to write on a read-only root, nothing to secure.
control_socket_disable = True

# Prometheus metrics, served by the master on a port of its own: reachable on the stack's internal
# networks only, never published, and not the port nginx proxies to.
metrics_bind = env("METRICS_BIND", metrics.DEFAULT_BIND)

accesslog = env("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = env("LOG_LEVEL", "info").lower()


class JsonLogger(glogging.Logger):
    """Gunicorn's own and access lines as JSON; access lines and refusals carry the request id."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers + self.access_log.handlers:
            handler.setFormatter(JsonFormatter())
            handler.addFilter(refusals.with_request_id)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        headers = {name.lower(): value for name, value in resp.headers}
        hop = environ.get("werkzeug.proxy_fix.orig") or environ
        status = str(resp.status).split(None, 1)[0]
        fields = {
            # REMOTE_ADDR after ProxyFix: the client address nginx saw.
            "remote_addr": environ.get("REMOTE_ADDR"),
            # The connection the request came over, nginx's end of it: requests that share one
            # show nginx reusing its connections (proxy/templates/upstream.conf.template).
            "peer": f"{hop.get('REMOTE_ADDR')}:{environ.get('REMOTE_PORT')}",
            "method": environ.get("REQUEST_METHOD"),
            "path": wsgi_text(environ.get("PATH_INFO")),
            "query": wsgi_text(environ.get("QUERY_STRING")),
            "status": int(status) if status.isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "bytes": getattr(resp, "sent", None),
            "user_agent": wsgi_text(environ.get("HTTP_USER_AGENT")),
        }
        extra = {"request_id": headers.get("x-request-id"), "fields": fields}
        self.access_log.info("request", extra=extra)


logger_class = JsonLogger


def on_starting(server):
    # Fail fast in the master with one line naming the problem, not once per worker.
    try:
        Config.from_env().require_api_tokens()
    except ConfigError as exc:
        server.log.error("%s", exc)
        sys.exit(1)
    # Once per start, not on every re-read of this file (SIGHUP): a previous run's counters must
    # not be summed into this one's.
    metrics.prepare_multiprocess_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def when_ready(server):
    metrics.serve(metrics_bind, metrics.server_registry(listen.port()))
    server.log.info("metrics on http://%s/metrics", metrics_bind)


def on_reload(server):
    # A HUP's new workers import the app anew, so they run the code on disk now (natively, make
    # deploy): this file's imports keep the master's copy, which its hooks go on using.
    for name in [name for name in sys.modules if name == "app" or name.startswith("app.")]:
        del sys.modules[name]


def child_exit(server, worker):
    # A dead worker's gauges would otherwise be summed in forever, and its files pile up.
    metrics.mark_worker_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])
