"""`make deploy` and `make rollback` (docs/deploy.md, "Deploying a new version"): a release that
adds a column goes out one replica at a time under reads and writes (16 and 3 a second: the
per-client limit of 20 requests a second, so that every refusal is a failure) with no failed
request and no write lost or stored twice; back again the same way; and a release whose
replicas never turn healthy or ready, or answer 5xx, or that loses a replica halfway, is rolled
back by itself, saying which."""

import statistics
import threading
import time

import pytest

from tests.e2e.load import (
    DEPLOY_READS_PER_SECOND,
    SteadyReads,
    assert_nothing_failed_or_lost,
    stored_titles,
    under_deploy_load,
)
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
    result = stack.run_script("deploy.sh", *args, checkout=checkout, env_override=env, timeout=900)
    return result, time.monotonic() - started


def backend_images(stack):
    """The image each running backend replica runs."""
    return sorted(c["Image"] for c in stack.inspect("backend") if c["State"]["Running"])


def running_backends(stack, since, until):
    """The fewest and the most backend containers that ran at once between two time.time()
    readings, from the engine's start and die events."""
    running = len(backend_images(stack))
    events = stack.engine.events(
        since=since,
        until=until,
        filters={
            "type": "container",
            "event": ["start", "die"],
            "label": [
                f"com.docker.compose.project={stack.project}",
                "com.docker.compose.service=backend",
            ],
        },
        decode=True,
    )
    changes = [1 if e["Action"] == "start" else -1 for e in events]
    # Counted back from now: what ran before the first event.
    counts = [running - sum(changes)]
    for change in changes:
        counts.append(counts[-1] + change)
    return min(counts), max(counts)


def p99(durations):
    return statistics.quantiles(durations, n=100)[98]


def test_a_release_that_adds_a_column_deploys_and_rolls_back_with_no_failed_request(
    stack, tmp_path
):
    before = backend_images(stack)
    with SteadyReads(stack, per_second=DEPLOY_READS_PER_SECOND) as steady:
        wait_until(lambda: len(steady.results) >= 100, 30, "100 reads of the steady state")
    started = time.time()
    (deployed, took), reads, writes = under_deploy_load(
        stack, lambda: deploy(stack, next_release(tmp_path / "next", ["expand"]))
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "expand migrations done" in deployed.stdout
    after = backend_images(stack)
    assert len(after) == len(before) and set(after).isdisjoint(before), (before, after)
    # One replica at a time: never fewer replicas than before, never more than one extra.
    assert running_backends(stack, started, time.time()) == (len(before), len(before) + 1)
    # The expand migration ran: the release before and this one read and write beside it.
    assert "content" in stack.root_sql("SHOW COLUMNS FROM app.posts")
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))
    print(
        f"deploy: {took:.0f} s; p99 of reads {p99([t for _, _, t in reads.results]) * 1000:.0f} ms "
        f"during it, {p99([t for _, _, t in steady.results]) * 1000:.0f} ms before"
    )

    (rolled, _), reads, writes = under_deploy_load(stack, lambda: deploy(stack, REPO, "rollback"))
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert backend_images(stack) == before
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))


def never_healthy(backend):
    (backend / "healthcheck.py").write_text("raise SystemExit(1)\n")


def never_ready(backend):
    health = backend / "app" / "health.py"
    health.write_text(
        health.read_text().replace('return jsonify(status="ready")', "return '', 503", 1)
    )


def lists_fail(backend):
    posts = backend / "app" / "posts.py"
    posts.write_text(
        posts.read_text().replace("SELECT id, JSON_OBJECT(", "SELECT nope, JSON_OBJECT(", 1)
    )


@pytest.mark.parametrize(
    "change,reason",
    [
        (never_healthy, f"is not healthy within {FAST_GIVE_UP['DEPLOY_HEALTH_TIMEOUT']} s"),
        (never_ready, f"is healthy but not ready within {FAST_GIVE_UP['DEPLOY_HEALTH_TIMEOUT']} s"),
    ],
    ids=["never healthy", "never ready"],
)
def test_a_release_whose_replicas_never_turn_healthy_or_ready_is_rolled_back_with_no_failed_request(
    stack, tmp_path, change, reason
):
    before = backend_images(stack)
    (result, _), reads, writes = under_deploy_load(
        stack,
        lambda: deploy(
            stack, next_release(tmp_path / "failing", ["expand"], change), **FAST_GIVE_UP
        ),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back: new replica" in result.stderr
    assert reason in result.stderr
    assert backend_images(stack) == before
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))


def test_a_release_whose_replicas_answer_5xx_is_rolled_back(stack, tmp_path):
    before = backend_images(stack)
    with SteadyReads(stack) as reads:
        wait_until(lambda: reads.results, 15, "the first read")
        result, _ = deploy(
            stack, next_release(tmp_path / "failing", ["expand"], lists_fail), **FAST_GIVE_UP
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rolled back: new replica" in result.stderr
    assert f"with a 5xx in {FAST_GIVE_UP['DEPLOY_WATCH']} s (limit 5%)" in result.stderr
    assert backend_images(stack) == before
    # Served again by the release before alone.
    with SteadyReads(stack) as reads:
        wait_until(lambda: len(reads.results) >= 20, 30, "20 reads after the rollback")
    assert reads.failures == [], reads.failures[:10]


def test_a_release_that_loses_a_replica_halfway_is_rolled_back_to_as_many_replicas_as_before(
    stack, tmp_path
):
    """The first old replica has stopped when the second new one goes (stopped from outside,
    as a node's operator or the OOM killer might): the old image takes its place again."""
    before = backend_images(stack)
    old_ids = {c["Id"] for c in stack.inspect("backend") if c["State"]["Running"]}
    lost = []

    def lose_the_second_new_replica(done):
        first = None
        while not done.is_set():
            running = {c["Id"] for c in stack.inspect("backend") if c["State"]["Running"]}
            new = running - old_ids
            if first is None and len(new) == 1:
                first = new.pop()
            elif first is not None and old_ids - running and new - {first}:
                lost.extend(new - {first})
                stack.engine.stop(lost[0], timeout=30)
                return
            done.wait(0.2)

    done = threading.Event()
    saboteur = threading.Thread(target=lose_the_second_new_replica, args=(done,), daemon=True)

    def deploy_losing_a_replica():
        saboteur.start()
        try:
            return deploy(stack, next_release(tmp_path / "lost", ["expand"]), **FAST_GIVE_UP)
        finally:
            done.set()
            saboteur.join(30)

    (result, _), reads, writes = under_deploy_load(stack, deploy_losing_a_replica)
    assert lost, result.stdout + result.stderr
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"rolled back: new replica {lost[0][:12]}" in result.stderr
    assert backend_images(stack) == before
    assert_nothing_failed_or_lost(reads, writes, stored_titles(stack))
