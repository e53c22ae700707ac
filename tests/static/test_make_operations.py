"""The make targets of day-2 operations hand their arguments to the scripts the tests exercise,
on the runtime that runs: the native stack while `make native-up`'s one runs, else production."""

import os
import subprocess

import pytest

from tests.stack.compose import ROOT


def make(*args, cwd=ROOT):
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME", "STACK_RUNTIME")}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args,command",
    [
        (["backup"], "scripts/backup-now.sh"),
        (["restore", "FILE=b.sql.gz"], 'scripts/restore.sh "b.sql.gz"'),
        (
            ["restore", "FILE=b.sql.gz", "UNTIL=2026-12-01 10:15:00"],
            'scripts/restore.sh "b.sql.gz" --until "2026-12-01 10:15:00"',
        ),
        (["rotate-secret", "NAME=db_app_password"], 'scripts/rotate-secret.sh "db_app_password"'),
        (["reload-proxy"], "scripts/reload-proxy.sh"),
        (["db-shell"], "scripts/db-shell.sh"),
    ],
    ids=["backup", "restore", "restore-until", "rotate-secret", "reload-proxy", "db-shell"],
)
def test_make_target_runs_its_script(args, command):
    result = make("--dry-run", *args)
    assert result.returncode == 0, result.stderr
    assert command in result.stdout.splitlines()[-1]


@pytest.mark.parametrize("target", ["restore", "rotate-secret"])
def test_make_target_without_its_argument_prints_usage(target):
    result = make(target)
    assert result.returncode != 0
    assert f"usage: make {target} " in result.stderr


def test_operations_act_on_the_native_stack_while_one_runs(tmp_path):
    # A checkout with a native stack's description (.run/native/stack.env), and one without.
    probe = "probe:\n\t@echo $(RUNTIME)\n"
    for checkout, expected in ((tmp_path / "native", "native"), (tmp_path / "prod", "compose")):
        checkout.mkdir()
        (checkout / "Makefile").write_text((ROOT / "Makefile").read_text() + "\n" + probe)
        if expected == "native":
            (checkout / ".run" / "native").mkdir(parents=True)
            (checkout / ".run" / "native" / "stack.env").write_text("DB_PORT=1\n")
        assert make("probe", cwd=checkout).stdout.strip() == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 999 needs root")
def test_make_backup_dir_creates_it_0700_for_uid_999(tmp_path):
    target = tmp_path / "backups"
    result = make("backup-dir", f"BACKUP_DIR={target}")
    assert result.returncode == 0, result.stderr
    info = target.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (999, 999, 0o700)
    assert make("backup-dir", f"BACKUP_DIR={target}").stdout.startswith("kept ")
