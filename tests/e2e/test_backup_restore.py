"""The restore drill, in both runtimes, through the scripts `make backup` and `make restore` run:
a backup restores row for row, point-in-time recovery brings back what came after it, and a
damaged or foreign backup is refused without touching the live data."""

import gzip
import hashlib
import re
import time
from datetime import UTC, datetime

import pytest

from tests.e2e.drill import POSTS, create_post, posts_state
from tests.stack import migration_heads


def change_everything(stack, writer, ids):
    """Delete the first post, rewrite the second, add one: three transactions."""
    assert writer.delete(f"{stack.base_url}{POSTS}/{ids[0]}").status_code == 204
    rewritten = {"title": "rewritten", "body": "rewritten after the backup"}
    assert writer.put(f"{stack.base_url}{POSTS}/{ids[1]}", json=rewritten).status_code == 200
    create_post(stack, writer, "added after the backup")


def wait_for_next_second():
    """Sleep into the next whole second (UTC) and return it: binary-log times have no fraction."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.05)
    return int(time.time())


def utc(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S")


def not_restored(result):
    match = re.search(r"^not restored: (\d+) transaction", result.stdout, re.MULTILINE)
    return int(match[1]) if match else 0


def test_backup_is_named_by_utc_time_compressed_checksummed_and_copied(stack):
    before = datetime.now(UTC)
    path = stack.backup()
    assert re.fullmatch(r"app-\d{8}T\d{6}Z\.sql\.gz", path.name), path.name
    taken = datetime.strptime(path.name[4:19], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert abs((taken - before).total_seconds()) < 60
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert (path.parent / f"{path.name}.sha256").read_text() == f"{digest}  {path.name}\n"
    assert re.search(
        rb"^-- CHANGE MASTER TO MASTER_LOG_FILE='mariadb-bin\.\d+', MASTER_LOG_POS=\d+;$",
        gzip.decompress(data),
        re.MULTILINE,
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    # BACKUP_COPY_COMMAND ran on it: here a copy into a second local directory.
    assert (stack.backup_copy_dir / path.name).read_bytes() == data
    assert (stack.backup_copy_dir / f"{path.name}.sha256").is_file()


def test_restore_brings_back_the_backup_row_for_row_and_reports_later_writes(stack, writer, client):
    ids = [create_post(stack, writer, f"drill {n}") for n in range(3)]
    at_backup = posts_state(stack)
    backup = stack.backup()
    change_everything(stack, writer, ids)
    assert posts_state(stack) != at_backup

    result = stack.restore(backup)

    assert result.returncode == 0, result.stdout + result.stderr
    assert posts_state(stack) == at_backup
    # The three changes made after the backup are named as not restored.
    assert not_restored(result) == 3, result.stdout
    assert re.search(rf"^  posts +{at_backup[0]}$", result.stdout, re.MULTILINE), result.stdout
    # The backend is back on the database at once.
    assert client.get(f"{stack.base_url}{POSTS}/{ids[0]}").status_code == 200


def test_point_in_time_recovery_restores_a_write_made_after_the_backup(stack, writer, client):
    ids = [create_post(stack, writer, f"pitr {n}") for n in range(2)]
    backup = stack.backup()
    after_backup = create_post(stack, writer, "written after the backup")
    until = wait_for_next_second()
    # The goal: exactly the state at UNTIL, nothing lost.
    at_until = posts_state(stack)
    change_everything(stack, writer, ids)

    result = stack.restore(backup, until=utc(until))

    assert result.returncode == 0, result.stdout + result.stderr
    assert posts_state(stack) == at_until
    assert "replayed 1 transaction(s)" in result.stdout
    assert not_restored(result) == 3, result.stdout
    answer = client.get(f"{stack.base_url}{POSTS}/{after_backup}")
    assert answer.status_code == 200
    assert answer.json()["title"] == "written after the backup"


def copy_with_checksum(backup, target, content=None):
    """TARGET: BACKUP's bytes (or CONTENT), with a checksum file that matches them."""
    target.write_bytes(backup.read_bytes() if content is None else content)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    (target.parent / f"{target.name}.sha256").write_text(f"{digest}  {target.name}\n")
    return target


def damaged(kind, backup, tmp_path):
    target = tmp_path / backup.name
    data = backup.read_bytes()
    sql = gzip.decompress(data)
    if kind == "missing file":
        return tmp_path / "app-20260101T000000Z.sql.gz"
    if kind == "checksum mismatch":
        copy_with_checksum(backup, target)
        (tmp_path / f"{target.name}.sha256").write_text(f"{'0' * 64}  {target.name}\n")
        return target
    if kind == "corrupted bytes":
        middle = len(data) // 2
        return copy_with_checksum(backup, target, data[:middle] + bytes(64) + data[middle + 64 :])
    if kind == "truncated file":
        return copy_with_checksum(backup, target, data[: len(data) // 2])
    if kind == "truncated dump":
        return copy_with_checksum(backup, target, gzip.compress(sql[: len(sql) * 2 // 3]))
    if kind == "newer schema":
        # Whatever revisions the dump holds become one no release of this code knows.
        newer, found = re.subn(
            rb"(INSERT INTO `alembic_version` VALUES)[^;]*;", rb"\1 ('9999');", sql
        )
        assert found == 1
        return copy_with_checksum(backup, target, gzip.compress(newer))
    raise ValueError(kind)


REFUSALS = {
    "missing file": "refused: no such file: ",
    "checksum mismatch": "refused: checksum mismatch: ",
    "corrupted bytes": "is corrupt or truncated: ",
    "truncated file": "is corrupt or truncated: ",
    "truncated dump": "is truncated: the dump lacks mariadb-dump's closing",
    # The heads as alembic reads them: restore.sh finds them in the migration files itself.
    "newer schema": "is at schema revision 9999, newer than this code (heads: "
    + ",".join(sorted(migration_heads().values())),
}


@pytest.mark.parametrize("kind", REFUSALS)
def test_damaged_or_newer_backup_is_refused_and_live_data_untouched(
    stack, writer, client, tmp_path, kind
):
    create_post(stack, writer, f"live before a refused restore ({kind})")
    backup = stack.backup()
    live = create_post(stack, writer, "live after the backup")
    before = posts_state(stack)

    result = stack.restore(damaged(kind, backup, tmp_path))

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("restore: refused: "), result.stderr
    assert REFUSALS[kind] in lines[0]
    assert posts_state(stack) == before
    # Nothing was locked: the backend still writes.
    assert writer.delete(f"{stack.base_url}{POSTS}/{live}").status_code == 204


def test_an_intact_copy_restores(stack, writer, tmp_path):
    # Positive control of the refusals above: the same copying, without the damage, restores.
    create_post(stack, writer, "in the copied backup")
    backup = stack.backup()
    at_backup = posts_state(stack)
    create_post(stack, writer, "after the copied backup")
    copy = copy_with_checksum(backup, tmp_path / backup.name)

    result = stack.restore(copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert posts_state(stack) == at_backup


def test_restore_failing_midway_says_what_it_left_and_a_rerun_recovers(
    stack, writer, client, tmp_path
):
    create_post(stack, writer, "before a restore that fails")
    backup = stack.backup()
    at_backup = posts_state(stack)
    # A complete, checksummed dump whose SQL breaks between its two tables.
    sql = gzip.decompress(backup.read_bytes())
    broken = sql.replace(
        b"-- Dumping data for table `posts`", b"THIS IS NOT SQL;\n-- Dumping data for table `posts`"
    )
    assert broken != sql
    failing = copy_with_checksum(backup, tmp_path / backup.name, gzip.compress(broken))

    result = stack.restore(failing)

    assert result.returncode == 1
    state = result.stderr.strip().splitlines()[-1]
    assert state.startswith("restore: FAILED while loading: the schema app is PARTLY restored")
    assert "stay LOCKED, so the backend answers 503" in state
    # Off the database indeed: the backend cannot read what is half there.
    answer = client.get(stack.base_url + POSTS)
    assert answer.status_code == 503
    assert answer.json()["error"] == "database_unavailable"

    rerun = stack.restore(backup)

    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert posts_state(stack) == at_backup
    assert client.get(stack.base_url + POSTS).status_code == 200
