"""The backup service's status as metrics: `python -m app.backup_status --script PATH`.

What judges a backup is scripts/backup-service.sh alone: its `metrics` command prints, in
Prometheus's text format, the facts its healthcheck judges (the newest good backup, the last run)
and the age limit that follows BACKUP_INTERVAL. This serves that output, read anew on each scrape.
The monitoring profile's backup-metrics service runs it as the backups' owner (uid 999) with
BACKUP_DIR mounted read-only and the script beside it, on METRICS_BIND (default 0.0.0.0:9101),
for Prometheus alone.
"""

import argparse
import os
import subprocess
import threading

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from .metrics import serve

DEFAULT_BIND = "0.0.0.0:9101"


class BackupCollector:
    """The metric families `SCRIPT metrics` prints. A script that fails fails the scrape (the
    target's `up` is 0), with its message in this service's log."""

    def __init__(self, script):
        self.script = script

    def collect(self):
        # The script is the operator's (compose.yaml mounts it), never a request's input.
        printed = subprocess.run(  # noqa: S603
            [self.script, "metrics"], capture_output=True, text=True, timeout=10, check=False
        )
        if printed.returncode != 0:
            raise RuntimeError(f"{self.script} metrics: {printed.stderr.strip()}")
        yield from text_string_to_metric_families(printed.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m app.backup_status",
        description="Serve the backup service's status as metrics on METRICS_BIND.",
    )
    parser.add_argument("--script", required=True, help="scripts/backup-service.sh")
    args = parser.parse_args(argv)
    registry = CollectorRegistry()
    registry.register(BackupCollector(args.script))
    bind = os.environ.get("METRICS_BIND", DEFAULT_BIND)
    serve(bind, registry)
    print(f"the status {args.script} reports, on http://{bind}/metrics", flush=True)
    # The server runs in a daemon thread; SIGTERM (compose stop) ends the process.
    threading.Event().wait()


if __name__ == "__main__":
    main()
