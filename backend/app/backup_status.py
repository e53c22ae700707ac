"""The backup service's status as metrics: `python -m app.backup_status --backup-dir DIR`.

The monitoring profile's backup-metrics service runs it as the backups' owner (uid 999) with
BACKUP_DIR mounted read-only, on METRICS_BIND (default 0.0.0.0:9101), for Prometheus alone.
"""

import argparse
import glob
import os
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily

from .metrics import serve

DEFAULT_BIND = "0.0.0.0:9101"


class BackupCollector:
    """backup_last_success_timestamp_seconds and backup_last_run_failed, read the way
    scripts/backup-service.sh's healthcheck reads them: the newest backup that has its
    checksum file, and the status line the last run left in .last-run."""

    def __init__(self, directory, database):
        self.directory, self.database = Path(directory), database

    def collect(self):
        good = [
            path
            for path in self.directory.glob(f"{glob.escape(self.database)}-[0-9]*T[0-9]*Z.sql.gz")
            if path.with_name(path.name + ".sha256").is_file()
        ]
        newest = max((path.stat().st_mtime for path in good), default=0)
        try:
            last_run = (self.directory / ".last-run").read_text()
        except OSError:
            last_run = ""
        yield GaugeMetricFamily(
            "backup_last_success_timestamp_seconds",
            "When the newest good backup was written (Unix time); 0: there is none.",
            value=newest,
        )
        yield GaugeMetricFamily(
            "backup_last_run_failed",
            "1 when the backup service's last run failed.",
            value=int(last_run.startswith("failed")),
        )


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m app.backup_status",
        description="Serve the backup service's status as metrics on METRICS_BIND.",
    )
    parser.add_argument("--backup-dir", required=True, help="the backup service's BACKUP_DIR")
    args = parser.parse_args(argv)
    registry = CollectorRegistry()
    registry.register(BackupCollector(args.backup_dir, os.environ.get("DB_NAME", "app")))
    bind = os.environ.get("METRICS_BIND", DEFAULT_BIND)
    serve(bind, registry)
    print(f"backup status of {args.backup_dir} on http://{bind}/metrics", flush=True)
    # The server runs in a daemon thread; SIGTERM (compose stop) ends the process.
    threading.Event().wait()


if __name__ == "__main__":
    main()
