"""Metrics: what the backend counts, and the server that shows it on a port of its own.

Requests by route template (never the raw path) and status class, their latency, requests in
progress, the database pool, readiness, build info, the migration heads each worker's code ships,
and the certificate the proxy serves.
Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode) and the master serves their sum on METRICS_BIND
(gunicorn.conf.py); Flask's development server serves its own. Never on the application's port:
nginx proxies that one to the world, and it answers /metrics with 404.
"""

import glob
import os
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from flask import request
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    multiprocess,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.mmap_dict import MmapedDict
from sqlalchemy import event
from werkzeug.serving import is_running_from_reloader

import listen

DEFAULT_BIND = "0.0.0.0:9100"
# Any other method (clients may send any token) is counted as "other": labels stay bounded.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "(unmatched)"

# Under gunicorn (multiprocess mode) the values go to files that the master sums, and no process
# reads its own registry; registering nowhere lets the workers of a HUP import this module anew
# (gunicorn.conf.py, on_reload) beside the master's copy. Elsewhere the process serves its own.
_REGISTRY = None if "PROMETHEUS_MULTIPROC_DIR" in os.environ else REGISTRY

REQUESTS = Counter(
    "http_requests_total",
    "Requests answered, by method, route template and status class (2xx, 4xx, ...).",
    ["method", "route", "status"],
    registry=_REGISTRY,
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request reaching the app to the response leaving it, by route template.",
    ["method", "route"],
    # From a list read (~2 ms) to nginx's 5 s proxy_read_timeout.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=_REGISTRY,
)
IN_PROGRESS = Gauge(
    "http_requests_in_progress",
    "Requests being served now.",
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out",
    "Database connections in use by requests.",
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
POOL_OVERFLOW = Gauge(
    "db_pool_overflow",
    "Connections open beyond DB_POOL_SIZE (at most DB_MAX_OVERFLOW per worker).",
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
POOL_LIMIT = Gauge(
    "db_pool_limit",
    "Connections the pools may hold: DB_POOL_SIZE + DB_MAX_OVERFLOW per worker.",
    multiprocess_mode="livesum",
    registry=_REGISTRY,
)
SCHEMA_HEADS = Gauge(
    "backend_schema_heads",
    "1 per live worker, labelled with the migration heads its code ships: the schema it was "
    "written for (make migrate-contract waits until every worker's are the migration's).",
    ["heads"],
    multiprocess_mode="liveall",
    registry=_REGISTRY,
)
POOL_TIMEOUTS = Counter(
    "db_pool_timeouts_total",
    "Requests that waited DB_POOL_TIMEOUT for a connection and got none (answered 503).",
    registry=_REGISTRY,
)


# --- the request path ------------------------------------------------------------------------
RULE_KEY = "app.metrics.url_rule"
_rule_labels = {}
# (method, route, status class) -> its counter and histogram: labels() validates and locks on
# every call, a dict lookup does not (the label sets are bounded, so is this).
_series = {}


def route_label(rule):
    """ "/api/posts/<post_id:post_id>" -> "/api/posts/<post_id>": the template, not the path."""
    if rule is None:
        return UNMATCHED
    label = _rule_labels.get(rule.rule)
    if label is None:
        label = _rule_labels[rule.rule] = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule.rule)
    return label


def _record(method, rule, status, seconds):
    key = (method if method in METHODS else "other", route_label(rule), f"{status // 100}xx")
    series = _series.get(key)
    if series is None:
        series = _series[key] = (REQUESTS.labels(*key), LATENCY.labels(*key[:2]))
    series[0].inc()
    series[1].observe(seconds)


class RequestMetrics:
    """WSGI middleware around the Flask app: every request is counted and timed, the ones a
    before_request hook refuses (401) and the ones no route matches (404) included. Cheaper than
    Flask hooks, which reach request and g through proxies: ~20 against ~28 us per request."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status = [500]  # what an exception that escapes the app becomes

        def note_status(line, headers, exc_info=None):
            status[0] = int(line[:3])
            return start_response(line, headers, exc_info)

        IN_PROGRESS.inc()
        try:
            return self.wsgi_app(environ, note_status)
        finally:
            IN_PROGRESS.dec()
            rule = environ.get(RULE_KEY)
            _record(environ["REQUEST_METHOD"], rule, status[0], time.perf_counter() - started)


def init_app(app):
    """Count and time every request the app answers; say which schema this code needs."""
    from .migrate import code_heads  # noqa: PLC0415 - migrate imports the app's modules

    app.wsgi_app = RequestMetrics(app.wsgi_app)
    SCHEMA_HEADS.labels(",".join(code_heads())).set(1)

    @app.teardown_request
    def _pass_on_the_rule(exc):
        # The URL rule Flask matched, for the middleware, which runs after the request context
        # (and Flask's request object) is gone.
        request.environ[RULE_KEY] = request.url_rule

    # Flask's development server (the dev image) has no gunicorn master: its serving process,
    # the reloader's child, serves the metrics itself. Under gunicorn the master does.
    if is_running_from_reloader():
        serve(os.environ.get("METRICS_BIND", DEFAULT_BIND), server_registry(listen.port()))


def instrument_engine(engine, limit):
    """Pool gauges of ENGINE (LIMIT: its pool_size + max_overflow), kept by its pool events,
    which survive engine.dispose()."""
    POOL_LIMIT.inc(limit)
    # Written only when it changes: it rarely does, and each write is a locked file write.
    overflow = [0]

    def _note_overflow():
        now = max(0, engine.pool.overflow())
        if now != overflow[0]:
            overflow[0] = now
            POOL_OVERFLOW.set(now)

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection, record, proxy):
        POOL_CHECKED_OUT.inc()
        _note_overflow()

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_connection, record):
        POOL_CHECKED_OUT.dec()
        _note_overflow()


# --- collected when Prometheus scrapes ---------------------------------------------------------
class BuildInfoCollector:
    """backend_build_info{version, commit} 1, from BUILD_VERSION and BUILD_COMMIT."""

    def collect(self):
        info = InfoMetricFamily("backend_build", "Version and commit of the running backend.")
        info.add_metric(
            [],
            {
                "version": os.environ.get("BUILD_VERSION") or "unknown",
                "commit": os.environ.get("BUILD_COMMIT") or "unknown",
            },
        )
        yield info


class ReadinessCollector:
    """backend_ready: 1 when the app's own /readyz answers 200 within 2 s, asked at each scrape.

    It goes through a worker and the pool as a client's request does, so busy or hung workers
    and a database that is down all read as 0."""

    def __init__(self, port):
        self.url = f"http://127.0.0.1:{port}/readyz"

    def collect(self):
        try:
            with urllib.request.urlopen(self.url, timeout=2) as response:  # noqa: S310
                ready = response.status == 200
        except (OSError, urllib.error.HTTPError):
            ready = False
        yield GaugeMetricFamily(
            "backend_ready", "1 when /readyz answers 200 (database round trip).", value=int(ready)
        )


def _der_elements(data):
    """(tag, content) of each DER element that follows another in DATA."""
    position = 0
    while position < len(data):
        tag, length = data[position], data[position + 1]
        position += 2
        if length & 0x80:  # long form: the next (length & 0x7F) bytes hold the length
            size = length & 0x7F
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        yield tag, data[position : position + length]
        position += length


def certificate_not_after(der):
    """Expiry (Unix time) of an X.509 certificate in DER: tbsCertificate's validity.notAfter."""
    (_, certificate), *_ = _der_elements(der)
    (_, tbs), *_ = _der_elements(certificate)
    fields = list(_der_elements(tbs))
    if fields[0][0] == 0xA0:  # [0] version, absent from v1 certificates
        fields = fields[1:]
    # serialNumber, signature, issuer, validity
    _, not_after = list(_der_elements(fields[3][1]))
    tag, text = not_after[0], not_after[1].decode("ascii")
    # UTCTime (0x17) has a two-digit year (RFC 5280: 50-99 is 19xx), GeneralizedTime four.
    layout = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"
    return datetime.strptime(text, layout).replace(tzinfo=UTC).timestamp()


class CertificateCollector:
    """A blackbox-style probe of the certificate the proxy serves (no blackbox exporter needed):
    tls_probe_success and tls_certificate_expiry_timestamp_seconds, by target.

    What clients get, not the file on disk: a renewed certificate that nginx has not reloaded yet
    still shows its old expiry. Not verified on purpose: an expired or self-signed certificate
    must still be read, to be reported."""

    def __init__(self, address, server_name):
        host, _, port = address.rpartition(":")
        self.address, self.host, self.port = address, host, int(port)
        self.server_name = server_name
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def probe(self):
        with (
            socket.create_connection((self.host, self.port), timeout=2) as raw,
            self.context.wrap_socket(raw, server_hostname=self.server_name) as tls,
        ):
            return certificate_not_after(tls.getpeercert(binary_form=True))

    def collect(self):
        success = GaugeMetricFamily(
            "tls_probe_success", "1 when the TLS handshake succeeded.", labels=["target"]
        )
        expiry = GaugeMetricFamily(
            "tls_certificate_expiry_timestamp_seconds",
            "When the served certificate expires (Unix time).",
            labels=["target"],
        )
        try:
            expiry.add_metric([self.address], self.probe())
            success.add_metric([self.address], 1)
        except (OSError, ValueError, IndexError):
            success.add_metric([self.address], 0)
        yield success
        yield expiry


def server_registry(port):
    """What the metrics server shows: the workers' values (summed from their files in
    multiprocess mode, else this process's), plus what is measured at scrape time."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        registry.register(WorkerSum(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        # The serving process is gunicorn's master: its start time changes when the container
        # (or the native process) restarts.
        ProcessCollector(registry=registry)
    else:
        registry = REGISTRY
    registry.register(BuildInfoCollector())
    registry.register(ReadinessCollector(port))
    probe = os.environ.get("METRICS_TLS_PROBE")
    if probe:
        server_name = os.environ.get("METRICS_TLS_SERVER_NAME") or "localhost"
        registry.register(CertificateCollector(probe, server_name))
    return registry


def serve(bind, registry):
    """Serve REGISTRY on BIND ("host:port", or ":port" for every address) from a daemon thread;
    returns the HTTP server."""
    host, _, port = bind.rpartition(":")
    # Every address only when asked: the container's, which are on internal networks only.
    server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)  # noqa: S104
    return server


# --- gunicorn's master (gunicorn.conf.py) ------------------------------------------------------
def prepare_multiprocess_dir(path):
    """Create PATH, or empty it of an earlier run's value files (stale counters would be summed
    in); only *.db files are removed, whatever else the directory holds."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    for stale in glob.glob(os.path.join(glob.escape(path), "*.db")):
        os.unlink(stale)


# Folding a dead worker's files (child_exit) and reading them (a scrape) both run in gunicorn's
# master: a scrape between two steps of a fold would see its counts twice, or not at all.
_files_lock = threading.Lock()


class WorkerSum:
    """The workers' values, summed from their files (prometheus_client's MultiProcessCollector),
    read while no fold is under way."""

    def __init__(self, path):
        self.collector = multiprocess.MultiProcessCollector(None, path)

    def collect(self):
        with _files_lock:
            return list(self.collector.collect())


def mark_worker_dead(pid, path):
    """A worker is gone: drop its live gauges (in progress, pool), and fold its counters and
    histograms into the master's archive files, so that their counts stay in the sums while the
    files of workers recycled by max_requests do not pile up in PATH (a sized tmpfs)."""
    with _files_lock:
        multiprocess.mark_process_dead(pid, path)
        for kind in ("counter", "histogram"):
            dead = os.path.join(path, f"{kind}_{pid}.db")
            if not os.path.exists(dead):
                continue
            archive = MmapedDict(os.path.join(path, f"{kind}_archive.db"))
            try:
                for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(dead):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            os.unlink(dead)
