"""Compose tier: the production backup service (compose.yaml + compose.prod.yaml) as it runs: locked
down like the others, on dbnet only, backing up at start, and its healthcheck turns unhealthy when
backups fail or stop, and healthy again when they resume."""

import json
import os
import signal
import subprocess

import pytest

from tests.stack import wait_until

pytestmark = pytest.mark.compose


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


def docker(*args, check=True):
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=60, check=check
    ).stdout


def health(container):
    """(status, output of the latest check) of a container's healthcheck."""
    state = json.loads(docker("inspect", container))[0]["State"]["Health"]
    log = state.get("Log") or [{}]
    return state["Status"], log[-1].get("Output", "")


def wait_for_health(container, status, timeout=90):
    return wait_until(
        lambda: health(container)[0] == status and health(container),
        timeout,
        f"{container} to turn {status}",
        interval=1,
    )


def test_backup_service_is_locked_down_as_uid_999_on_dbnet_only(stack):
    (container,) = stack.inspect("backup")
    host = container["HostConfig"]
    assert container["Config"]["User"] == "999:999"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0
    assert host["LogConfig"]["Config"]["max-size"] == "10m"
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert set(container["NetworkSettings"]["Networks"]) == {f"{stack.project}_dbnet"}
    # The processes themselves, not only the configuration.
    assert stack.exec("backup", "id", "-u", check=True).stdout.strip() == "999"


def test_backup_dir_job_is_the_one_root_process_with_two_capabilities_and_no_network(stack):
    """It makes BACKUP_DIR uid 999's, 0700 (what `make backup-dir` does), and has done so."""
    (container,) = stack.inspect("backup-dir")
    host = container["HostConfig"]
    assert container["Config"]["User"] == "0:0"
    assert host["CapDrop"] == ["ALL"]
    assert sorted(c.removeprefix("CAP_") for c in host["CapAdd"]) == ["CHOWN", "FOWNER"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] is True
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert (container["State"]["Status"], container["State"]["ExitCode"]) == ("exited", 0)
    for directory in (stack.backup_dir, stack.backup_copy_dir):
        info = directory.stat()
        assert (info.st_uid, info.st_gid, oct(info.st_mode & 0o777)) == (999, 999, "0o700")


def test_backup_service_took_a_good_backup_at_start_and_is_healthy(stack):
    (container,) = stack.container_ids("backup")
    # A restart (a rotation of its password restarts it) starts the health over from "starting".
    status, output = wait_for_health(container, "healthy")
    assert output.startswith("healthy: newest good backup app-")
    good = [
        p for p in stack.backup_dir.glob("app-*.sql.gz") if p.with_name(p.name + ".sha256").exists()
    ]
    assert good, sorted(stack.backup_dir.iterdir())
    assert oct(stack.backup_dir.stat().st_mode & 0o777) == "0o700"


def test_backup_service_secret_is_in_neither_its_environment_nor_its_log(stack, secrets_dir):
    password = (secrets_dir / "db_backup_password").read_text()
    (container,) = stack.container_ids("backup")
    inspected = docker("inspect", container)
    log = stack.compose("logs", "--no-color", "backup").stdout
    # Positive controls: each text holds what it should.
    assert "DB_PASSWORD_FILE=/run/secrets/db_backup_password" in inspected
    assert "backup: /backups/app-" in log
    assert password not in inspected and password not in log


def test_backup_service_turns_unhealthy_when_a_backup_fails_and_healthy_when_one_succeeds(stack):
    (container,) = stack.container_ids("backup")
    lock = "SET SESSION sql_log_bin = 0; ALTER USER 'backup'@'%' ACCOUNT {};"
    stack.root_sql(lock.format("LOCK"))
    try:
        with pytest.raises(RuntimeError, match="this account is locked"):
            stack.backup()
        status, output = wait_for_health(container, "unhealthy")
        assert output.startswith("unhealthy: the last backup run failed: "), output
    finally:
        stack.root_sql(lock.format("UNLOCK"))
    stack.backup()
    wait_for_health(container, "healthy")


def test_backup_service_turns_unhealthy_when_its_schedule_stops_and_healthy_when_it_resumes(
    stack,
):
    # A second instance of the very service with a 4-second interval, in a directory of its own.
    short = stack.backup_dir / "short-interval"
    short.mkdir(mode=0o700, exist_ok=True)
    os.chown(short, 999, 999)
    name = f"{stack.project}-backup-short-interval"
    stack.compose(
        "run", "--detach", "--no-deps", "--name", name,
        "--env", "BACKUP_INTERVAL=4s", "--env", "BACKUP_DIR=/backups/short-interval",
        "backup", "run",
    )  # fmt: skip
    try:
        wait_for_health(name, "healthy")
        # Its scheduling loop, as the host sees it (SIGSTOP: backups stop, the container stays).
        processes = docker("top", name, "-o", "pid,args").splitlines()[1:]
        # The first bash running it (later ones are its short-lived subshells), not docker-init.
        loop = min(
            int(line.split()[0])
            for line in processes
            if "backup-service.sh run" in line and "docker-init" not in line
        )
        os.kill(loop, signal.SIGSTOP)
        try:
            status, output = wait_for_health(name, "unhealthy")
            assert "s old (BACKUP_INTERVAL=4s)" in output, output
        finally:
            os.kill(loop, signal.SIGCONT)
        wait_for_health(name, "healthy")
    finally:
        # --volumes: the anonymous one the image's VOLUME (/var/lib/mysql) gave it.
        docker("rm", "--force", "--volumes", name, check=False)
