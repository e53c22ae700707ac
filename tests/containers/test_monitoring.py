"""The monitoring profile on the running production stack: Prometheus scrapes every target
(both backend replicas, the two exporters, the backup status, itself), sees a request made
through the proxy, and no metrics port is published; the profile's containers are locked down."""

import json
import os
import subprocess
import urllib.parse
import urllib.request

import pytest

from tests.e2e.conftest import make_client
from tests.stack import free_port, wait_until
from tests.stack.compose import PROD_FILES, ROOT, compose, image_available

pytestmark = pytest.mark.compose

MONITORING = ROOT / "monitoring"
SERVICES = ("prometheus", "mysqld-exporter", "nginx-exporter", "backup-metrics")
JOBS = {"prometheus", "backend", "nginx", "mysql", "backup"}
# Prometheus scrapes every 15 s and re-resolves the backend replicas every 30 s.
SCRAPE_WAIT = 90


def missing_images(profile):
    """The profile's images, as compose renders them (pins and overrides), this engine lacks;
    what it builds itself (backup-metrics, the backend's image) is left to compose."""
    services = json.loads(profile.compose("config", "--format", "json").stdout)["services"]
    images = [services[name]["image"] for name in SERVICES if "build" not in services[name]]
    return [image for image in images if not image_available(image)]


class Monitoring:
    """The profile's services, added to the session's compose stack (same project)."""

    def __init__(self, stack):
        self.stack = stack
        self.port = free_port()
        self.env = {**stack.env, "PROMETHEUS_PORT": str(self.port)}

    def compose(self, *args, **kwargs):
        return compose(*PROD_FILES, "--profile", "monitoring", *args, env=self.env, **kwargs)

    def query(self, promql):
        """The result vector of an instant query, from the API on 127.0.0.1."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, promql):
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture(scope="module")
def monitoring(compose_stack):
    profile = Monitoring(compose_stack)
    missing = missing_images(profile)
    if missing:
        reason = f"monitoring images {missing} are neither here nor pullable (prepare-docker.sh)"
        if os.environ.get("REQUIRE_COMPOSE_TIER") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        profile.compose("up", "--detach", "--wait", "--wait-timeout", "300", *SERVICES, timeout=900)
        yield profile
    finally:
        # Only the profile's own: the session's stack goes on for the tests after these.
        profile.compose("rm", "--stop", "--force", "--volumes", *SERVICES, check=False)
        project = compose_stack.project
        subprocess.run(["docker", "volume", "rm", f"{project}_promdata"], capture_output=True)
        subprocess.run(["docker", "image", "rm", f"{project}-backup-metrics"], capture_output=True)


def test_every_target_is_up(monitoring):
    def all_up():
        targets = monitoring.query("up")
        jobs = {t["metric"]["job"] for t in targets}
        backends = [t for t in targets if t["metric"]["job"] == "backend"]
        up = all(t["value"][1] == "1" for t in targets)
        return jobs == JOBS and len(backends) == monitoring.stack.backend_replicas and up

    wait_until(all_up, SCRAPE_WAIT, "every target (both backend replicas) to be up == 1")
    # What each exporter reaches behind it.
    assert monitoring.value("mysql_up") == 1
    assert monitoring.value("nginx_up") == 1
    assert monitoring.value("min(backend_ready)") == 1


def test_a_request_through_the_proxy_reaches_prometheus(monitoring):
    promql = 'sum(http_requests_total{route="/api/posts/<post_id>",status="4xx"})'
    wait_until(lambda: monitoring.query('up{job="backend"} == 1'), SCRAPE_WAIT, "a backend scrape")
    before = monitoring.value(promql) or 0
    with make_client(monitoring.stack) as client:
        assert client.get(monitoring.stack.base_url + "/api/posts/999999994").status_code == 404
    wait_until(
        lambda: (monitoring.value(promql) or 0) >= before + 1,
        SCRAPE_WAIT,
        "Prometheus to see the request in the backend's counter",
    )


def test_exporters_collect_without_errors_and_the_backups_are_seen(monitoring):
    # A failed collector (a missing grant): 0.14 says so in last_scrape_error, 0.15+ in
    # collector_success.
    failed = "max(mysql_exporter_last_scrape_error) or (1 - min(mysql_exporter_collector_success))"
    wait_until(
        lambda: monitoring.value(failed) is not None, SCRAPE_WAIT, "the MySQL exporter's collectors"
    )
    assert monitoring.value(failed) == 0
    assert monitoring.value("mysql_global_variables_max_connections") > 0
    # Production's backup service took a backup at its start.
    wait_until(
        lambda: (monitoring.value("backup_last_success_timestamp_seconds") or 0) > 0,
        SCRAPE_WAIT,
        "the backup status to show a good backup",
    )
    assert monitoring.value("backup_last_run_failed") == 0
    assert (monitoring.value("min(tls_certificate_expiry_timestamp_seconds) - time()") or 0) > 0


def test_mysqld_exporter_refuses_a_database_with_another_certificate(monitoring, impostor):
    # The service's own command, trusting the impostor's certificate (on stdin) instead of the
    # database's: its metrics say whether it reached the database. Control: mysql_up is 1 with
    # the real one (test_every_target_is_up).
    config = json.loads(monitoring.compose("config", "--format", "json").stdout)
    (command,) = config["services"]["mysqld-exporter"]["command"]
    assert "ssl-ca=/run/secrets/db_tls_cert" in command
    script = (
        "cat > /tmp/impostor.crt\n"
        + command.replace("/run/secrets/db_tls_cert", "/tmp/impostor.crt")
        .replace("exec ", "", 1)
        .rstrip()
        + " &\nsleep 3; wget -q -O - http://127.0.0.1:9104/metrics | grep '^mysql_up '"
    )
    result = monitoring.compose(
        "run", "--rm", "--no-deps", "-T", "--entrypoint", "/bin/sh", "mysqld-exporter",
        "-c", script, input=impostor, check=False, timeout=120,
    )  # fmt: skip
    assert result.stdout.strip() == "mysql_up 0", result.stdout + result.stderr


@pytest.mark.parametrize(
    "command",
    [["check", "config", "prometheus.yml"], ["test", "rules", "alerts.test.yml"]],
    ids=["check-config", "test-rules"],
)
def test_configuration_and_rules_pass_the_promtool_of_the_prometheus_image(monitoring, command):
    # The static tier runs Debian's promtool (2.42); this is the image's own (3.x from a
    # registry). A container of its own: `test rules` needs a writable temporary directory.
    (prometheus,) = inspect(monitoring.stack, "prometheus")
    result = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none",
         "--volume", f"{MONITORING}:/etc/prometheus:ro", "--workdir", "/etc/prometheus",
         "--entrypoint", "promtool", prometheus["Config"]["Image"], *command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_is_loaded(monitoring):
    url = f"http://127.0.0.1:{monitoring.port}/api/v1/rules"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
        groups = json.load(response)["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"BackendNotReady", "DatabaseDown", "CertificateExpiresSoon", "BackupTooOld"} <= names


def inspect(stack, service):
    ids = stack.compose("--profile", "monitoring", "ps", "--all", "--quiet", service).stdout.split()
    out = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def published(container):
    return {
        port: [(b["HostIp"], b["HostPort"]) for b in bindings]
        for port, bindings in (container["NetworkSettings"]["Ports"] or {}).items()
        if bindings
    }


def test_no_metrics_port_is_published_and_the_ui_only_on_loopback(monitoring):
    stack = monitoring.stack
    (prometheus,) = inspect(stack, "prometheus")
    assert published(prometheus) == {"9090/tcp": [("127.0.0.1", str(monitoring.port))]}
    for service in ("backend", "mysqld-exporter", "nginx-exporter", "backup-metrics"):
        for container in inspect(stack, service):
            assert published(container) == {}, service
    # The proxy publishes HTTP and HTTPS only: not its status (8082) or health (8081) listener.
    (proxy,) = inspect(stack, "proxy")
    assert set(published(proxy)) == {"8080/tcp", "8443/tcp"}


@pytest.mark.parametrize("service", SERVICES)
def test_monitoring_containers_are_locked_down_and_healthy(monitoring, service):
    (container,) = inspect(monitoring.stack, service)
    config, host = container["Config"], container["HostConfig"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert host["Memory"] > 0 and host["PidsLimit"] > 0
    assert container["State"]["Health"]["Status"] == "healthy"
