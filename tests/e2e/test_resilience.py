"""Operations that must not break service: a killed gunicorn worker, a proxy reload."""

import time

PACE = 0.06  # below the per-client rate (20 r/s): these loops must not trip the limit


def requests_succeed(stack, client, count=10):
    statuses = []
    for _ in range(count):
        statuses.append(client.get(stack.base_url + "/api/posts").status_code)
        time.sleep(PACE)
    return statuses


def test_requests_keep_succeeding_after_a_worker_is_killed(stack, client):
    assert requests_succeed(stack, client, 3) == [200] * 3
    masters_before = stack.logs("backend").count("Listening at:")
    killed = stack.kill_backend_worker()
    assert requests_succeed(stack, client) == [200] * 10
    logs = stack.logs("backend")
    # What was killed was a worker (the master booted it), and no master started anew: the
    # running master replaced its worker, nothing restarted the service.
    assert f"Booting worker with pid: {killed}" in logs, f"pid {killed} was not a worker"
    assert logs.count("Listening at:") == masters_before


def test_requests_keep_succeeding_after_a_proxy_reload(stack, client):
    assert requests_succeed(stack, client, 3) == [200] * 3
    stack.reload_proxy()
    assert requests_succeed(stack, client) == [200] * 10
