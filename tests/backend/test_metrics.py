"""Backend metrics (app/metrics.py): what is counted, under which labels, and how gunicorn's
master serves the sum of its workers on a port of its own."""

import datetime
import os
import signal
import socket
import ssl
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from app import backup_status, create_app, metrics
from app.config import Config
from native.stack import children
from tests.stack import free_port, migration_heads, wait_until
from tests.stack.compose import ROOT

from .conftest import Gunicorn


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(url):
    """{(name, sorted labels): value} of one scrape of URL."""
    text = requests.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def counted(samples, route, status, method="GET"):
    labels = (("method", method), ("route", route), ("status", status))
    return samples.get(("http_requests_total", labels), 0.0)


# --- labels ----------------------------------------------------------------------------------
def test_requests_are_counted_by_route_template_never_by_raw_path(client):
    route = "/api/posts/<post_id>"
    before = sample("http_requests_total", method="GET", route=route, status="4xx")
    assert client.get("/api/posts/999999991").status_code == 404
    assert client.get("/api/posts/999999992").status_code == 404
    after = sample("http_requests_total", method="GET", route=route, status="4xx")
    assert after - before == 2
    assert (
        sample("http_requests_total", method="GET", route="/api/posts/999999991", status="4xx") == 0
    )


def test_unknown_paths_and_methods_share_one_label_each(client):
    before = sample("http_requests_total", method="other", route="(unmatched)", status="4xx")
    assert client.get("/no/such/page/1").status_code == 404
    assert client.open("/no/such/page/2", method="BREW").status_code in (404, 405)
    assert sample("http_requests_total", method="GET", route="(unmatched)", status="4xx") >= 1
    after = sample("http_requests_total", method="other", route="(unmatched)", status="4xx")
    assert after - before == 1


def test_a_write_refused_before_any_database_work_is_counted_and_timed(client):
    labels = {"method": "DELETE", "route": "/api/posts/<post_id>"}
    before = sample("http_requests_total", **labels, status="4xx")
    timed_before = sample("http_request_duration_seconds_count", **labels)
    assert client.delete("/api/posts/1").status_code == 401
    assert sample("http_requests_total", **labels, status="4xx") - before == 1
    assert sample("http_request_duration_seconds_count", **labels) - timed_before == 1


def test_latency_lands_in_the_buckets_of_its_route(client):
    labels = {"method": "GET", "route": "/healthz"}
    before = sample("http_request_duration_seconds_bucket", **labels, le="5.0")
    assert client.get("/healthz").status_code == 200
    assert sample("http_request_duration_seconds_bucket", **labels, le="5.0") - before == 1
    assert sample("http_requests_in_progress") == 0


# --- the database pool -----------------------------------------------------------------------
def test_pool_gauges_count_connections_in_use_and_return_to_zero(client, app):
    assert client.get("/api/posts").status_code == 200
    assert sample("db_pool_checked_out") == 0
    engine = app.extensions["db_engine"]
    with engine.connect():
        assert sample("db_pool_checked_out") == 1
    assert sample("db_pool_checked_out") == 0
    # Per app: DB_POOL_SIZE 4 + DB_MAX_OVERFLOW 2 (the other apps of this session add theirs).
    assert sample("db_pool_limit") >= 6


def test_a_request_that_finds_the_pool_exhausted_is_counted(migrated, app_env):
    config = Config.from_env({**app_env, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0"})
    app = create_app(config)
    engine = app.extensions["db_engine"]
    before = sample("db_pool_timeouts_total")
    try:
        with engine.connect():  # the only connection, held
            started = time.monotonic()
            response = app.test_client().get("/api/posts")
        assert response.status_code == 503
        assert time.monotonic() - started >= config.pool_timeout
        assert sample("db_pool_timeouts_total") - before == 1
        # Positive control: with the connection back, the same request is served and not counted.
        assert app.test_client().get("/api/posts").status_code == 200
        assert sample("db_pool_timeouts_total") - before == 1
    finally:
        engine.dispose()


# --- measured at scrape time -----------------------------------------------------------------
def make_certificate(tmp_path, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.crt", tmp_path / "server.key"
    cert_file.write_bytes(certificate.public_bytes(Encoding.PEM))
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return certificate, cert_file, key_file


@pytest.mark.parametrize(
    "not_after",
    # UTCTime up to 2049, GeneralizedTime from 2050 on (RFC 5280).
    [datetime.datetime(2027, 3, 4, 5, 6, 7), datetime.datetime(2051, 1, 2, 3, 4, 5)],
    ids=["utctime", "generalizedtime"],
)
def test_certificate_expiry_is_read_from_der(tmp_path, not_after):
    not_after = not_after.replace(tzinfo=datetime.UTC)
    certificate, _, _ = make_certificate(tmp_path, not_after)
    der = certificate.public_bytes(Encoding.DER)
    assert metrics.certificate_not_after(der) == not_after.timestamp()


def collect(collector):
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


def test_certificate_probe_reports_what_the_server_serves_and_a_failed_handshake(tmp_path):
    not_after = datetime.datetime(2027, 6, 1, tzinfo=datetime.UTC)
    _, cert_file, key_file = make_certificate(tmp_path, not_after)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    listener = context.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True)
    port = listener.getsockname()[1]

    def serve():
        # Each collection is a handshake of its own; closing the listener ends the loop.
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        registry = collect(metrics.CertificateCollector(f"127.0.0.1:{port}", "localhost"))
        target = {"target": f"127.0.0.1:{port}"}
        assert registry.get_sample_value("tls_probe_success", target) == 1
        expiry = registry.get_sample_value("tls_certificate_expiry_timestamp_seconds", target)
        assert expiry == not_after.timestamp()
    finally:
        # shutdown() wakes the thread's accept(); close() alone would leave the port listening.
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(5)
    # Nothing listens there now: the probe says so, and reports no expiry.
    registry = collect(metrics.CertificateCollector(f"127.0.0.1:{port}", "localhost"))
    assert registry.get_sample_value("tls_probe_success", target) == 0
    assert registry.get_sample_value("tls_certificate_expiry_timestamp_seconds", target) is None


def test_readiness_is_1_only_when_readyz_answers_200(gunicorn):
    ready = collect(metrics.ReadinessCollector(gunicorn.port))
    assert ready.get_sample_value("backend_ready") == 1
    nobody = collect(metrics.ReadinessCollector(free_port()))
    assert nobody.get_sample_value("backend_ready") == 0


def test_backup_status_follows_the_newest_good_backup_and_the_last_run(tmp_path, monkeypatch):
    # The backup service's own script, as backup-metrics runs it (compose.yaml).
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path))
    monkeypatch.setenv("BACKUP_INTERVAL", "6h")
    registry = collect(backup_status.BackupCollector(ROOT / "scripts" / "backup-service.sh"))
    assert registry.get_sample_value("backup_last_success_timestamp_seconds") == 0
    assert registry.get_sample_value("backup_last_run_failed") == 0
    # The healthcheck's limit, two intervals, is the alert's.
    assert registry.get_sample_value("backup_max_age_seconds") == 2 * 6 * 3600
    good, unfinished = tmp_path / "app-20260101T000000Z.sql.gz", "app-20260102T000000Z.sql.gz"
    good.write_bytes(b"")
    (tmp_path / "app-20260101T000000Z.sql.gz.sha256").write_text("0  x\n")
    os.utime(good, (1767225600, 1767225600))
    # Newer, but without its checksum file: not a good backup.
    (tmp_path / unfinished).write_bytes(b"")
    (tmp_path / ".last-run").write_text("failed 2026-01-02T00:00:00Z mariadb-dump exited 2\n")
    assert registry.get_sample_value("backup_last_success_timestamp_seconds") == 1767225600
    assert registry.get_sample_value("backup_last_run_failed") == 1


def test_backup_status_fails_the_scrape_when_the_script_refuses(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path))
    monkeypatch.setenv("BACKUP_INTERVAL", "daily")
    collector = backup_status.BackupCollector(ROOT / "scripts" / "backup-service.sh")
    with pytest.raises(RuntimeError, match="BACKUP_INTERVAL=daily"):
        list(collector.collect())


# --- gunicorn: the master serves the sum of its workers --------------------------------------
def test_metrics_are_served_on_their_own_port_not_the_application_port(gunicorn):
    assert requests.get(f"{gunicorn.url}/metrics", timeout=10).status_code == 404
    assert requests.get(gunicorn.metrics_url, timeout=10).status_code == 200


def test_counts_of_a_killed_worker_stay_in_the_sum_and_its_gauges_go(gunicorn):
    for _ in range(10):
        assert requests.get(f"{gunicorn.url}/healthz", timeout=10).status_code == 200
    before = counted(scrape(gunicorn.metrics_url), "/healthz", "2xx")
    assert before >= 10
    workers = children(gunicorn.proc.pid)
    os.kill(workers[0], signal.SIGKILL)
    wait_until(
        lambda: (
            workers[0] not in children(gunicorn.proc.pid)
            and len(children(gunicorn.proc.pid)) == len(workers)
        ),
        15,
        "gunicorn to replace the killed worker",
    )
    samples = scrape(gunicorn.metrics_url)
    assert counted(samples, "/healthz", "2xx") == before
    # The dead worker's live gauges were dropped (child_exit): no in-progress request is left.
    assert samples[("http_requests_in_progress", ())] == 0
    # Its files are gone too (counts folded into the master's): recycled workers leave none.
    assert not [f for f in os.listdir(metrics_dir(gunicorn)) if f.endswith(f"_{workers[0]}.db")]
    # Positive control: the live workers' files are there.
    assert [f for f in os.listdir(metrics_dir(gunicorn)) if f.endswith(f"_{workers[1]}.db")]


def test_each_live_worker_names_the_migration_heads_its_code_ships(gunicorn):
    # What make migrate-contract reads: the schema every running worker was written for.
    def reported():
        return {
            dict(labels)["pid"]: dict(labels)["heads"]
            for (name, labels), value in scrape(gunicorn.metrics_url).items()
            if name == "backend_schema_heads" and value == 1
        }

    shipped = ",".join(sorted(migration_heads().values()))
    workers = children(gunicorn.proc.pid)
    expected = {str(pid): shipped for pid in workers}
    wait_until(lambda: reported() == expected, 15, f"every worker to report {shipped}")
    os.kill(workers[0], signal.SIGKILL)
    wait_until(
        lambda: len(reported()) == len(workers) and str(workers[0]) not in reported(),
        15,
        "the killed worker's series to go and its replacement's to come",
    )


def metrics_dir(server):
    return server.log_file.parent / "metrics"


def test_counts_of_an_earlier_run_are_not_summed_in(migrated, app_env, tmp_path):
    # What a previous gunicorn left behind: a million requests to /healthz.
    stale_dir = tmp_path / "metrics"
    stale_dir.mkdir()
    stale = MmapedDict(str(stale_dir / "counter_999999.db"))
    key = mmap_key(
        "http_requests_total",
        "http_requests_total",
        ("method", "route", "status"),
        ("GET", "/healthz", "2xx"),
        "",
    )
    stale.write_value(key, 1e6, 0)
    stale.close()
    server = Gunicorn(app_env, tmp_path / "gunicorn.log")
    try:
        server.wait_healthy()
        samples = scrape(server.metrics_url)
        assert 1 <= counted(samples, "/healthz", "2xx") < 1000
        assert samples[("backend_ready", ())] == 1
    finally:
        server.stop()
