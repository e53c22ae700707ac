"""The make targets of day-2 operations hand their arguments to the scripts the tests exercise,
on the runtime that runs: the native stack while `make native-up`'s one runs (its nginx is alive),
else production."""

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
        (["rotate-token"], "scripts/rotate-token.sh add"),
        (["retire-tokens"], "scripts/rotate-token.sh retire"),
        (["reload-proxy"], "scripts/reload-proxy.sh"),
        (["restart-backend"], "scripts/restart-backend.sh"),
        (["db-shell"], "scripts/db-shell.sh"),
    ],
    ids=[
        "backup",
        "restore",
        "restore-until",
        "rotate-secret",
        "rotate-token",
        "retire-tokens",
        "reload-proxy",
        "restart-backend",
        "db-shell",
    ],  # fmt: skip
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


def runtime_chosen(native_env):
    """The runtime scripts/lib/stack.sh acts on, STACK_RUNTIME unset, given NATIVE_STACK_ENV."""
    env = {k: v for k, v in os.environ.items() if k not in ("RUNTIME", "STACK_RUNTIME")}
    return subprocess.run(
        ["bash", "-c", 'source scripts/lib/stack.sh && echo "$runtime"'],
        cwd=ROOT, env={**env, "NATIVE_STACK_ENV": str(native_env)},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.strip()  # fmt: skip


def test_operations_act_on_the_native_stack_while_it_runs_and_on_production_after(tmp_path):
    native_env, pid_file = tmp_path / "stack.env", tmp_path / "proxy.pid"
    assert runtime_chosen(native_env) == "compose"
    native_env.write_text(f"DB_PORT=1\nPROXY_PID_FILE={pid_file}\n")
    running = subprocess.Popen(["sleep", "60"])
    try:
        pid_file.write_text(f"{running.pid}\n")
        assert runtime_chosen(native_env) == "native"
    finally:
        running.kill()
        running.wait()
    # The machine went down with the stack: its description is left, its nginx is not.
    assert runtime_chosen(native_env) == "compose"


def test_make_passes_an_explicit_runtime_to_the_scripts(tmp_path):
    probe = tmp_path / "Makefile"
    probe.write_text((ROOT / "Makefile").read_text() + "\nreload-proxy:\n\t@echo $$STACK_RUNTIME\n")
    printed = make("-f", str(probe), "reload-proxy", "RUNTIME=swarm").stdout
    assert printed.strip().splitlines()[-1] == "swarm"


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to uid 999 needs root")
def test_make_backup_dir_creates_it_0700_for_uid_999(tmp_path):
    target = tmp_path / "backups"
    result = make("backup-dir", f"BACKUP_DIR={target}")
    assert result.returncode == 0, result.stderr
    info = target.stat()
    assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (999, 999, 0o700)
    assert make("backup-dir", f"BACKUP_DIR={target}").stdout.startswith("kept ")


def test_deploy_on_swarm_is_refused_naming_the_way_there():
    env = {**os.environ, "STACK_RUNTIME": "swarm"}
    result = subprocess.run(
        [ROOT / "scripts" / "deploy.sh"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "make swarm-deploy" in result.stderr, result.stderr
