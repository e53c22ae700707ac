"""Compose tier: what only running containers can answer (docker inspect, docker compose exec).

Every negative network check has a positive control beside it that proves the probe works.
"""

import json
import subprocess
from datetime import datetime

import pytest
import requests

from tests.e2e.helpers import json_lines
from tests.stack import wait_until

pytestmark = pytest.mark.compose

LONG_RUNNING = ("proxy", "backend", "db")
# Which secrets each long-running service consumes (migrate reads db_migrator_password; its exit
# code 0, checked below, shows it could).
CONSUMERS = {
    "backend": ["db_app_password", "api_tokens", "db_tls_cert"],
    "db": [
        "db_root_password",
        "db_migrator_password",
        "db_app_password",
        "db_backup_password",
        "db_tls_cert",
        "db_tls_key",
    ],
}


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


@pytest.fixture(scope="module")
def containers(stack):
    return {service: stack.inspect(service) for service in stack.services}


def all_containers(containers):
    return [(service, c) for service, items in containers.items() for c in items]


def test_every_container_runs_as_non_root(containers):
    for service, c in all_containers(containers):
        assert c["Config"]["User"].split(":")[0] not in ("", "0", "root"), service


@pytest.mark.parametrize("service,uid", [("proxy", "101"), ("backend", "10001"), ("db", "999")])
def test_processes_really_run_as_the_service_user(stack, service, uid):
    result = stack.exec(service, "id", "-u", check=True)
    assert result.stdout.strip() == uid


def test_every_container_is_locked_down(containers):
    for service, c in all_containers(containers):
        host = c["HostConfig"]
        assert host["ReadonlyRootfs"] is True, f"{service}: writable root filesystem"
        assert host["CapDrop"] == ["ALL"], f"{service}: capabilities kept"
        assert not host.get("CapAdd"), f"{service}: capabilities added"
        assert "no-new-privileges:true" in (host.get("SecurityOpt") or []), service
        assert host["Privileged"] is False, service


def test_every_container_has_memory_cpu_and_pids_limits(containers):
    for service, c in all_containers(containers):
        host = c["HostConfig"]
        assert host["Memory"] > 0, f"{service}: no memory limit"
        assert host["NanoCpus"] > 0, f"{service}: no CPU limit"
        assert (host.get("PidsLimit") or 0) > 0, f"{service}: no pids limit"
        assert host["LogConfig"]["Config"].get("max-size"), f"{service}: no log rotation"


def test_long_running_containers_restart_by_themselves(containers):
    for service in LONG_RUNNING:
        for c in containers[service]:
            assert c["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped", service


def test_only_the_proxy_publishes_ports(containers):
    published = {
        service
        for service, c in all_containers(containers)
        if any(bindings for bindings in (c["NetworkSettings"]["Ports"] or {}).values())
    }
    assert published == {"proxy"}


def test_all_services_are_healthy_and_migrate_finished_first(containers):
    for service in LONG_RUNNING:
        for c in containers[service]:
            assert c["State"]["Health"]["Status"] == "healthy", service
    (migrate,) = containers["migrate"]
    assert migrate["State"]["Status"] == "exited"
    assert migrate["State"]["ExitCode"] == 0
    finished = _time(migrate["State"]["FinishedAt"])
    for backend in containers["backend"]:
        assert _time(backend["State"]["StartedAt"]) >= finished


def _time(stamp):
    return datetime.fromisoformat(stamp[:26].rstrip("Z"))


def _network_ip(container, network_suffix):
    for name, net in container["NetworkSettings"]["Networks"].items():
        if name.endswith(network_suffix):
            return net["IPAddress"]
    raise AssertionError(f"not on *{network_suffix}")


def test_proxy_can_neither_resolve_nor_reach_the_database(stack, containers):
    db_ip = _network_ip(containers["db"][0], "_dbnet")
    # Positive controls: the same tools work against the backend.
    assert stack.exec("proxy", "getent", "hosts", "backend").returncode == 0
    assert stack.exec("proxy", "nc", "-z", "-w", "3", "backend", "8000").returncode == 0
    assert stack.exec("proxy", "getent", "hosts", "db").returncode != 0
    assert stack.exec("proxy", "nc", "-z", "-w", "3", db_ip, "3306").returncode != 0


CONNECT = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 3)"


def test_backend_reaches_the_database(stack):
    assert stack.exec("backend", "python", "-c", CONNECT, "db", "3306").returncode == 0


@pytest.fixture(scope="module")
def outside(containers):
    """A listener on the public frontnet standing in for the internet: egress is probed against
    it, so no test traffic ever leaves the host."""
    network = next(
        n for n in containers["proxy"][0]["NetworkSettings"]["Networks"] if n.endswith("_frontnet")
    )
    image = containers["backend"][0]["Image"]
    cid = docker(
        "run",
        "--detach",
        "--rm",
        "--network",
        network,
        "--user",
        "10001:10001",
        "--read-only",
        "--cap-drop",
        "ALL",
        image,
        "python",
        "-m",
        "http.server",
        "9000",
    ).strip()
    try:
        ip = json.loads(docker("inspect", cid))[0]["NetworkSettings"]["Networks"][network]
        yield ip["IPAddress"]
    finally:
        docker("rm", "--force", cid)


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def connects(stack, service, host, port):
    """Whether SERVICE opens a TCP connection to HOST:PORT within 3 s (bash is in both images)."""
    probe = f"timeout 3 bash -c 'exec 3<>/dev/tcp/{host}/{port}'"
    if service == "proxy":
        probe = f"nc -z -w 3 {host} {port}"
    return stack.exec(service, "sh", "-c", probe).returncode == 0


@pytest.mark.parametrize("service", ["backend", "db"])
def test_internal_services_cannot_reach_outside(stack, outside, service):
    # Positive control: the proxy, on the public frontnet, reaches the listener (with retries,
    # the listener may still be starting).
    wait_until(
        lambda: connects(stack, "proxy", outside, 9000),
        15,
        "control: the proxy to reach the listener",
        interval=0.5,
    )
    assert not connects(stack, service, outside, 9000)


def _secret_values(stack):
    return {p.name: p.read_text() for p in stack.secrets_dir.iterdir()}


@pytest.mark.parametrize("service", sorted(CONSUMERS))
def test_each_secret_is_readable_by_its_consumer(stack, service):
    # The db reads its files on its first start only and keeps what it mounted at its last start
    # (a rotation, tests/e2e/test_rotation.py, replaces the host files after that).
    values = stack.db_secrets if service == "db" else _secret_values(stack)
    for name in CONSUMERS[service]:
        result = stack.exec(service, "cat", f"/run/secrets/{name}", check=True)
        assert result.stdout == values[name]


def test_backend_runs_gunicorn_not_flask_run(stack):
    """The production image's processes: gunicorn's master under the init, its workers under
    the master, and nothing else (no `flask run`, whose --debug serves Werkzeug's debugger).
    Through the proxy: tests/e2e/test_debugger.py."""
    script = (
        "import json, os\n"
        "procs = {}\n"
        "for pid in filter(str.isdigit, os.listdir('/proc')):\n"
        "    try:\n"
        "        stat = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()\n"
        "        cmd = open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ')\n"
        "    except OSError:\n"
        "        continue\n"
        "    procs[pid] = [int(stat[1]), cmd.decode().strip()]\n"
        "print(json.dumps(procs))\n"
    )
    for index in (1, 2):
        out = stack.exec("backend", "python", "-c", script, index=index, check=True).stdout
        procs = {int(pid): tuple(entry) for pid, entry in json.loads(out).items()}
        # The container's own processes: PID 1 and its descendants (not this exec).
        init = procs[1][1]
        (master,) = [pid for pid, (ppid, _) in procs.items() if ppid == 1]
        workers = [pid for pid, (ppid, _) in procs.items() if ppid == master]
        assert init.startswith("/sbin/docker-init -- gunicorn -c gunicorn.conf.py"), init
        assert procs[master][1].endswith("gunicorn -c gunicorn.conf.py"), procs[master]
        assert workers, f"gunicorn master {master} has no workers"
        for pid in workers:
            assert "gunicorn" in procs[pid][1], procs[pid]
        assert not [cmd for _, cmd in procs.values() if "flask" in cmd], procs


def test_two_backend_replicas_serve_requests(stack, containers):
    replicas = {_network_ip(c, "_appnet") for c in containers["backend"]}
    assert len(replicas) == 2
    session = requests.Session()
    # Only the dev CA may vouch for the proxy (REQUESTS_CA_BUNDLE would override `verify`).
    session.trust_env = False
    session.verify = stack.ca_bundle
    for _ in range(20):
        assert session.get(f"{stack.base_url}/api/posts?limit=1", timeout=10).status_code == 200

    def both_replicas_logged():
        # nginx writes an access line after its answer has gone out: the last may still come.
        entries = json_lines(stack.logs("proxy"))
        return replicas <= {str(e.get("upstream_addr", "")).rsplit(":", 1)[0] for e in entries}

    wait_until(both_replicas_logged, 10, f"proxy access lines naming each replica {replicas}")


def test_shipped_nginx_reads_the_configuration_without_a_warning(stack):
    """`nginx -t` in the proxy container (nginx 1.30); the static tier runs it on 1.22."""
    result = stack.exec("proxy", "nginx", "-t")
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr, result.stderr
