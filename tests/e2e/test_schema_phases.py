"""Schema changes in two steps (docs/deploy.md, "Schema changes: expand, then contract"): the
migrate service runs the expand migrations only; `make migrate-contract` runs the contract ones
once every backend worker runs the code they were written for, dropping no request, and refuses
while one runs other code."""

import os
import subprocess

from native.compose import compose_command
from tests.e2e.load import assert_nothing_failed_or_lost, stored_titles, under_deploy_load
from tests.stack import REPO, migration_heads, next_release


def schema(stack):
    return sorted(stack.root_sql("SELECT version_num FROM app.alembic_version").split())


def run(command, stack, timeout=300, **env):
    return subprocess.run(
        [str(c) for c in command],
        env={**os.environ, **stack.script_env(), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build_migrate_image(stack, checkout):
    files = ["-f", checkout / "compose.yaml", "-f", checkout / "compose.prod.yaml"]
    built = run([*compose_command(), *files, "build", "migrate"], stack, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]


def test_contract_step_is_refused_while_a_worker_runs_code_for_other_migrations(stack, tmp_path):
    # The next release, while the backend still runs this one: natively its checkout (a `git
    # pull` without a reload), under compose its migrate image too (a build without a deploy),
    # on Swarm its image (BACKEND_IMAGE, not deployed).
    runtime = stack.script_env()["STACK_RUNTIME"]
    before = schema(stack)
    checkout = next_release(tmp_path / "next")
    next_image = "hardened-stack-backend:next-release"
    try:
        if runtime == "compose":
            build_migrate_image(stack, checkout)
        result = run(
            [checkout / "scripts" / "migrate-contract.sh"], stack, BACKEND_IMAGE=next_image
        )
    finally:
        if runtime == "compose":
            build_migrate_image(stack, REPO)
    assert result.returncode == 1, result.stdout + result.stderr
    if runtime == "swarm":
        assert f"refused: the contract step is for {next_image}, but backend tasks run" in (
            result.stderr
        )
    else:
        assert "refused: the contract step is for code with migrations 0006,0007" in result.stderr
        assert f"code for {','.join(sorted(migration_heads().values()))}" in result.stderr
    assert schema(stack) == before


def test_contract_step_runs_once_every_worker_runs_this_release_and_fails_no_request(stack):
    heads = migration_heads()
    # What the migrate service left: the expand branch's head, not the contract one's.
    assert heads["contract"] not in schema(stack)
    assert heads["expand"] in schema(stack)
    result, reads, writes = under_deploy_load(
        stack, lambda: run([REPO / "scripts" / "migrate-contract.sh"], stack)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert schema(stack) == sorted(heads.values())
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))
