"""What crosses dbnet is TLS to the one server its certificate names (make certs: db.crt): the
backend and migrate through the app's own engine, the backup service through backup.sh. Given any
other certificate, as a man in the middle would present, each client refuses to go on."""

import pytest

pytestmark = pytest.mark.compose

# Through the app's configuration and engine, as the backend and migrate connect: the session's
# TLS version, or the error. argv[1]: another certificate to trust instead (its PEM on stdin).
APP_CONNECTION = """
import os, sys
from sqlalchemy import text
from app.config import Config
from app.db import make_engine

env = dict(os.environ)
if len(sys.argv) > 1:
    with open(sys.argv[1], "w") as f:
        f.write(sys.stdin.read())
    env["DB_TLS_CA_FILE"] = sys.argv[1]
engine = make_engine(Config.from_env(env))
try:
    with engine.connect() as conn:
        print(conn.execute(text(
            "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS"
            " WHERE VARIABLE_NAME = 'Ssl_version'"
        )).scalar())
except Exception as error:
    print(error)
    sys.exit(3)
"""
# backup.sh into a scratch directory (the service's own status file stays untouched), trusting
# the certificate on stdin instead when one is given.
BACKUP = """
mkdir -p /tmp/tls-probe && rm -f /tmp/tls-probe/*
if [ -n "$1" ]; then cat > /tmp/other.crt; export DB_TLS_CA_FILE=/tmp/other.crt; fi
BACKUP_DIR=/tmp/tls-probe BACKUP_COPY_COMMAND= /opt/stack/scripts/backup.sh
"""


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


def test_backend_connects_to_the_database_over_tls_and_refuses_another_certificate(stack, impostor):
    trusted = stack.exec("backend", "python", "-c", APP_CONNECTION, timeout=60)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert trusted.stdout.strip() in ("TLSv1.2", "TLSv1.3"), trusted.stdout

    refused = stack.exec(
        "backend", "python", "-c", APP_CONNECTION, "/tmp/other.crt", input=impostor, timeout=60
    )
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout, refused.stdout


def test_backup_dumps_over_tls_and_refuses_another_certificate(stack, impostor):
    trusted = stack.exec("backup", "sh", "-c", BACKUP, "sh", "", timeout=120)
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr

    refused = stack.exec("backup", "sh", "-c", BACKUP, "sh", "other", input=impostor, timeout=120)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert "mariadb-dump of app on db:3306 as backup failed" in refused.stderr, refused.stderr
    assert "certificate" in refused.stderr.lower() or "ssl" in refused.stderr.lower()
