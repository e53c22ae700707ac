"""workers x (pool_size + max_overflow) x replicas stays below the live max_connections."""

import runpy
from pathlib import Path

from app.config import DEFAULTS

from .conftest import connect

GUNICORN_CONF = Path(__file__).resolve().parents[2] / "backend" / "gunicorn.conf.py"
REPLICAS = 2  # compose.prod.yaml runs two backend replicas


def shipped_workers(monkeypatch, tmp_path):
    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_WORKER_CLASS"):
        monkeypatch.delenv(name, raising=False)
    # The file sets it (for its workers) when unset: this test's own, undone afterwards.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    return runpy.run_path(str(GUNICORN_CONF))["workers"]


def test_shipped_pool_defaults_fit_the_live_max_connections(
    app_env, migrated, monkeypatch, tmp_path
):
    workers = shipped_workers(monkeypatch, tmp_path)
    per_worker = int(DEFAULTS["DB_POOL_SIZE"]) + int(DEFAULTS["DB_MAX_OVERFLOW"])
    conn = connect(app_env)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@max_connections")
            (max_connections,) = cur.fetchone()
    finally:
        conn.close()
    budget = workers * per_worker * REPLICAS
    # Leave room for migrate, backup and an operator's shell.
    assert budget + 3 <= max_connections, (workers, per_worker, REPLICAS, max_connections)


def test_pool_recycle_is_below_the_live_wait_timeout(app_env, migrated):
    conn = connect(app_env)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@global.wait_timeout")
            (wait_timeout,) = cur.fetchone()
    finally:
        conn.close()
    assert int(DEFAULTS["DB_POOL_RECYCLE"]) < wait_timeout
