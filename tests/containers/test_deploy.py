"""`make deploy` and `make rollback` (docs/deploy.md, "Deploying a new version"): a release that
adds a column goes out replica by replica under reads and writes (10 and 4 a second: within the
per-client limits, so that every refusal is a failure) with no failed request and no write lost
or stored twice; back again the same way; and a release whose replicas never turn
healthy, or answer 5xx, is rolled back by itself, saying which."""

import os
import statistics
import subprocess
import time

import pytest

from tests.e2e.load import SteadyReads, SteadyWrites
from tests.stack import REPO, next_release, wait_until

pytestmark = pytest.mark.compose

# Short bounds for the failing releases: their replicas never turn healthy, or answer 5xx.
FAST_GIVE_UP = {"DEPLOY_HEALTH_TIMEOUT": "25", "DEPLOY_WATCH": "10"}


@pytest.fixture(scope="module")
def stack(compose_stack, tmp_path_factory):
    """Production beside the session's stack: the deploys below change its schema and images."""
    stack = compose_stack.beside("deploy", tmp_path_factory.mktemp("deploy"))
    try:
        stack.up()
        yield stack
    finally:
        stack.down()


def deploy(stack, checkout, *args, **env):
    """CHECKOUT's scripts/deploy.sh ARGS on STACK, as `make deploy` runs it; (result, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        [checkout / "scripts" / "deploy.sh", *args],
        env={**os.environ, **stack.script_env(), **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    return result, time.monotonic() - started


def backend_images(stack):
    """The image each running backend replica runs."""
    return sorted(c["Image"] for c in stack.inspect("backend") if c["State"]["Running"])


def stored_once(stack, writes):
    """Whether each acknowledged write is stored exactly once, and no refused one at all."""
    titles = stack.root_sql("SELECT title FROM app.posts").splitlines()
    return {w.title: titles.count(w.title) for w in writes.writes} == {
        w.title: int(w.outcome == 201) for w in writes.writes
    }


def p99(durations):
    return statistics.quantiles(durations, n=100)[98]


def test_a_release_that_adds_a_column_deploys_and_rolls_back_with_no_failed_request(
    stack, tmp_path
):
    before = backend_images(stack)
    with SteadyReads(stack) as steady:
        wait_until(lambda: len(steady.results) >= 50, 30, "50 reads of the steady state")
    with SteadyReads(stack) as reads, SteadyWrites(stack, 900) as writes:
        wait_until(writes.acknowledged, 15, "the first acknowledged write")
        deployed, took = deploy(stack, next_release(tmp_path / "next", ["expand"]))
        ended = time.monotonic()
        wait_until(lambda: writes.acknowledged(since=ended), 30, "a write after the deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "expand migrations done" in deployed.stdout
    after = backend_images(stack)
    assert len(after) == len(before) and set(after).isdisjoint(before), (before, after)
    # The expand migration ran: the release before and this one read and write beside it.
    assert "content" in stack.root_sql("SHOW COLUMNS FROM app.posts")
    assert reads.failures == [], reads.failures[:10]
    assert [w for w in writes.writes if w.outcome != 201] == []
    assert stored_once(stack, writes)
    print(
        f"deploy: {took:.0f} s; p99 of reads {p99([t for _, _, t in reads.results]) * 1000:.0f} ms "
        f"during it, {p99([t for _, _, t in steady.results]) * 1000:.0f} ms before"
    )

    with SteadyReads(stack) as reads, SteadyWrites(stack, 900) as writes:
        wait_until(writes.acknowledged, 15, "the first acknowledged write")
        rolled, _ = deploy(stack, REPO, "rollback")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert backend_images(stack) == before
    assert reads.failures == [], reads.failures[:10]
    assert [w for w in writes.writes if w.outcome != 201] == []
    assert stored_once(stack, writes)


def never_healthy(backend):
    (backend / "healthcheck.py").write_text("raise SystemExit(1)\n")


def lists_fail(backend):
    posts = backend / "app" / "posts.py"
    posts.write_text(
        posts.read_text().replace("SELECT id, JSON_OBJECT(", "SELECT nope, JSON_OBJECT(", 1)
    )


def test_a_release_whose_replicas_never_turn_healthy_is_rolled_back_with_no_failed_request(
    stack, tmp_path
):
    before = backend_images(stack)
    with SteadyReads(stack) as reads, SteadyWrites(stack, 900) as writes:
        wait_until(writes.acknowledged, 15, "the first acknowledged write")
        result, _ = deploy(
            stack, next_release(tmp_path / "unhealthy", ["expand"], never_healthy), **FAST_GIVE_UP
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back: new replica" in result.stderr
    assert "after 25 s" in result.stderr
    assert backend_images(stack) == before
    assert reads.failures == [], reads.failures[:10]
    assert [w for w in writes.writes if w.outcome != 201] == []
    assert stored_once(stack, writes)


def test_a_release_whose_replicas_answer_5xx_is_rolled_back(stack, tmp_path):
    before = backend_images(stack)
    with SteadyReads(stack) as reads:
        wait_until(lambda: reads.results, 15, "the first read")
        result, _ = deploy(
            stack, next_release(tmp_path / "failing", ["expand"], lists_fail), **FAST_GIVE_UP
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back: the new replicas answered" in result.stderr
    assert "with a 5xx in 10 s (limit 5%)" in result.stderr
    assert backend_images(stack) == before
    # Served again by the release before alone.
    with SteadyReads(stack) as reads:
        wait_until(lambda: len(reads.results) >= 20, 30, "20 reads after the rollback")
    assert reads.failures == [], reads.failures[:10]
