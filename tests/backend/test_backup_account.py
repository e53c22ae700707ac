"""scripts/backup.sh as the backup account against a real MariaDB initialised by db/initdb.d: the
account's grants suffice for a consistent dump with its binary-log position and allow no write;
no account password reaches the binary log; retention and failures behave as promised."""

import gzip
import hashlib
import os
import re
import subprocess
from pathlib import Path

import pymysql
import pytest

from .conftest import REPO, connect, db_env

BACKUP = REPO / "scripts" / "backup.sh"
NAME = re.compile(r"^app-\d{8}T\d{6}Z\.sql\.gz$")


def run_backup(mariadb, secrets_dir, backup_dir, **extra):
    env = {
        **os.environ,
        **db_env(mariadb, secrets_dir, "backup"),
        "BACKUP_DIR": str(backup_dir),
        **extra,
    }
    return subprocess.run(
        [BACKUP], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def backups(directory):
    return sorted(p.name for p in Path(directory).iterdir() if NAME.match(p.name))


@pytest.fixture
def backup_dir(tmp_path):
    path = tmp_path / "backups"
    path.mkdir(mode=0o700)
    return path


def test_backup_account_has_exactly_the_dump_privileges(mariadb, migrated):
    grants = mariadb.root_sql("SHOW GRANTS FOR 'backup'@'%'").splitlines()
    on_app = [re.match(r"GRANT (.+) ON `app`\.\* TO `backup`@`%`$", line) for line in grants]
    privileges = {p.strip() for m in on_app if m for p in m[1].split(",")}
    assert privileges == {"SELECT", "SHOW VIEW", "TRIGGER", "EVENT"}
    # Besides, only the login itself (USAGE) and nothing on any other schema.
    others = [line for line, m in zip(grants, on_app, strict=True) if not m]
    assert len(others) == 1 and others[0].startswith("GRANT USAGE ON *.* TO `backup`@`%`"), grants


def test_backup_account_dumps_with_its_grants_alone_and_records_the_binlog_position(
    mariadb, secrets_dir, migrated, backup_dir
):
    result = run_backup(mariadb, secrets_dir, backup_dir)
    assert result.returncode == 0, result.stderr
    (name,) = backups(backup_dir)
    dump = gzip.decompress((backup_dir / name).read_bytes()).decode()
    # The position of the dump's own snapshot, where point-in-time recovery starts.
    assert re.search(
        r"^-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin\.\d{6}', MASTER_LOG_POS=\d+;$",
        dump,
        re.MULTILINE,
    )
    assert "CREATE TABLE `posts`" in dump
    assert dump.rstrip().splitlines()[-1].startswith("-- Dump completed")
    digest = hashlib.sha256((backup_dir / name).read_bytes()).hexdigest()
    assert (backup_dir / f"{name}.sha256").read_text() == f"{digest}  {name}\n"
    assert oct((backup_dir / name).stat().st_mode & 0o777) == "0o600"
    assert (backup_dir / ".last-run").read_text().startswith("ok ")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO posts (title, body) VALUES ('backup', 'writes')",
        "DELETE FROM posts",
        "DROP TABLE posts",
        "CREATE TABLE intruder (id INT)",
        "FLUSH TABLES WITH READ LOCK",
    ],
    ids=["insert", "delete", "drop", "create", "global-read-lock"],
)
def test_backup_account_cannot_write_or_lock(secrets_dir, mariadb, migrated, statement):
    conn = connect(db_env(mariadb, secrets_dir, "backup"), autocommit=True)
    try:
        with conn.cursor() as cur:
            # Positive control: the same session reads.
            cur.execute("SELECT COUNT(*) FROM posts")
            with pytest.raises(pymysql.err.OperationalError) as refused:
                cur.execute(statement)
    finally:
        conn.close()
    # 1142 command denied for the table, 1044 for the database, 1227 needs a global privilege.
    assert refused.value.args[0] in (1044, 1142, 1227), refused.value.args


def test_no_account_password_reaches_the_binary_log(mariadb, secrets_dir, migrated):
    text = mariadb.binlog_text()
    # Positive control: the migration's own statements are there to be found.
    assert "CREATE TABLE posts" in text
    for user in ("root", "migrator", "app", "backup"):
        name = f"db_{user}_password"
        assert (secrets_dir / name).read_text() not in text, f"{name} is in the binary log"


def test_backup_keeps_only_the_newest_backup_keep(mariadb, secrets_dir, migrated, backup_dir):
    for _ in range(3):
        result = run_backup(mariadb, secrets_dir, backup_dir, BACKUP_KEEP="2")
        assert result.returncode == 0, result.stderr
    kept = backups(backup_dir)
    assert len(kept) == 2, kept
    assert "removed" in result.stdout
    assert sorted(p.name for p in backup_dir.glob("*.sha256")) == [f"{n}.sha256" for n in kept]


def test_failed_backup_leaves_no_file_and_records_the_failure(
    mariadb, secrets_dir, migrated, backup_dir, tmp_path
):
    wrong = tmp_path / "wrong_password"
    wrong.write_text("not-the-password")
    result = run_backup(mariadb, secrets_dir, backup_dir, DB_PASSWORD_FILE=str(wrong))
    assert result.returncode == 1
    assert "backup: FAILED: mariadb-dump of app" in result.stderr
    assert backups(backup_dir) == []
    assert [p.name for p in backup_dir.iterdir() if p.name.startswith(".tmp-")] == []
    assert (backup_dir / ".last-run").read_text().startswith("failed ")
