"""The backup service as production renders it, and its healthcheck's verdicts
(scripts/backup-service.sh health) on backup directories made to order."""

import os
import subprocess
import time

import pytest

from tests.stack.compose import DEV_FILES, PROD_FILES, ROOT
from tests.static.test_compose_policy import render

SERVICE = ROOT / "scripts" / "backup-service.sh"
DAY = 86400


@pytest.fixture(scope="module")
def backup(secrets_dir):
    return render(PROD_FILES, secrets_dir)["services"]["backup"]


def test_production_runs_the_backup_service_and_development_only_on_request(secrets_dir):
    assert "backup" in render(PROD_FILES, secrets_dir)["services"]
    assert "backup" not in render(DEV_FILES, secrets_dir)["services"]


def test_backup_service_dumps_daily_keeps_14_as_uid_999_on_dbnet_only(backup, secrets_dir):
    # The database's own image, whatever it is: mariadb-dump matches the server.
    assert backup["image"] == render(PROD_FILES, secrets_dir)["services"]["db"]["image"]
    assert backup["user"] == "999:999"
    assert set(backup["networks"]) == {"dbnet"}
    assert backup["environment"]["BACKUP_INTERVAL"] == "1d"
    assert backup["environment"]["BACKUP_KEEP"] == "14"
    assert backup["environment"]["DB_USER"] == "backup"
    assert [s["source"] for s in backup["secrets"]] == ["db_backup_password", "db_tls_cert"]
    mounts = {v["target"]: v for v in backup["volumes"]}
    assert mounts["/backups"]["source"] == str(ROOT / "backups")
    # Read-only, and only the scripts that run in the container: no host operation is there.
    scripts = {target for target in mounts if target.startswith("/opt/stack/scripts")}
    assert scripts == {
        "/opt/stack/scripts/backup-service.sh",
        "/opt/stack/scripts/backup.sh",
        "/opt/stack/scripts/lib/dump-facts.awk",
    }
    assert all(mounts[target]["read_only"] for target in scripts)
    health_command = ["CMD", "/opt/stack/scripts/backup-service.sh", "health"]
    assert backup["healthcheck"]["test"] == health_command
    assert backup["depends_on"]["db"]["condition"] == "service_healthy"
    assert backup["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert backup["restart"] == "unless-stopped"


def test_default_backup_dir_is_outside_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "backups/app-20260101T000000Z.sql.gz"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0


def make_backup(directory, name, age, checksum=True):
    path = directory / f"app-{name}.sql.gz"
    path.write_bytes(b"")
    if checksum:
        (directory / f"app-{name}.sql.gz.sha256").write_text("0  x\n")
    then = time.time() - age
    os.utime(path, (then, then))


def health(directory, interval="1d"):
    env = {"PATH": os.environ["PATH"], "BACKUP_DIR": str(directory), "BACKUP_INTERVAL": interval}
    return subprocess.run(
        [SERVICE, "health"], env=env, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.fixture
def backup_dir(tmp_path):
    path = tmp_path / "backups"
    path.mkdir()
    return path


def test_health_is_good_with_a_backup_younger_than_two_intervals(backup_dir):
    make_backup(backup_dir, "20260101T000000Z", age=2 * DAY - 3600)
    (backup_dir / ".last-run").write_text("ok 2026-01-01T00:00:00Z app-20260101T000000Z.sql.gz\n")
    result = health(backup_dir)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("healthy: newest good backup app-20260101T000000Z.sql.gz")


def test_health_turns_bad_when_the_newest_backup_is_older_than_two_intervals(backup_dir):
    make_backup(backup_dir, "20260101T000000Z", age=2 * DAY + 60)
    (backup_dir / ".last-run").write_text("ok 2026-01-01T00:00:00Z app-20260101T000000Z.sql.gz\n")
    result = health(backup_dir)
    assert result.returncode == 1
    assert "is 172860 s old (BACKUP_INTERVAL=1d)" in result.stdout


def test_health_counts_the_interval_given(backup_dir):
    make_backup(backup_dir, "20260101T000000Z", age=3 * 3600)
    assert health(backup_dir, interval="1h").returncode == 1
    assert health(backup_dir, interval="2h").returncode == 0


def test_health_turns_bad_when_the_last_run_failed(backup_dir):
    make_backup(backup_dir, "20260101T000000Z", age=60)
    (backup_dir / ".last-run").write_text("failed 2026-01-01T00:01:00Z mariadb-dump ... denied\n")
    result = health(backup_dir)
    assert result.returncode == 1
    assert result.stdout == (
        "unhealthy: the last backup run failed: 2026-01-01T00:01:00Z mariadb-dump ... denied\n"
    )


def test_health_ignores_a_backup_without_its_checksum(backup_dir):
    make_backup(backup_dir, "20260101T000000Z", age=3 * DAY)
    make_backup(backup_dir, "20260103T000000Z", age=60, checksum=False)
    result = health(backup_dir)
    assert result.returncode == 1
    assert "app-20260101T000000Z.sql.gz, is" in result.stdout


def test_health_is_bad_without_any_backup(backup_dir):
    result = health(backup_dir)
    assert result.returncode == 1
    assert result.stdout == f"unhealthy: no good backup in {backup_dir}\n"


def test_an_interval_without_a_unit_it_knows_is_refused(backup_dir):
    result = health(backup_dir, interval="daily")
    assert result.returncode == 2
    assert "BACKUP_INTERVAL=daily" in result.stderr
