"""The proxy runs one nginx worker in both runtimes (proxy/nginx.conf: the container has half a CPU,
and `worker_processes auto` would start one worker per host core)."""


def test_proxy_runs_exactly_one_worker_process(stack, client):
    # The proxy serves, so its workers are up (a master alone would not answer).
    assert client.get(stack.base_url + "/healthz").status_code == 200
    assert stack.proxy_worker_count() == 1
