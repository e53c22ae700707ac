"""The monitoring profile, statically: Prometheus's configuration and alert rules pass promtool
(check config, check rules, and the rules' unit tests, one firing and one quiet case per alert),
and the profile's services obey the rules of every service, in development and production."""

import json
import shutil
import subprocess

import pytest
import yaml

from tests.stack.compose import DEV_FILES, PROD_FILES, ROOT, compose
from tests.static import compose_policy as policy

MONITORING = ROOT / "monitoring"
PROFILE_SERVICES = {"prometheus", "mysqld-exporter", "nginx-exporter", "backup-metrics"}
# What an operator must hear about, one alert (at least) each: 5xx rate, latency, readiness,
# the database, its pool, rate-limit refusals, restarts, the certificate and the backups.
ALERTS = {
    "BackendErrorRateHigh",  # 5xx rate
    "BackendLatencyHigh",  # p99 latency
    "BackendNotReady",
    "DatabaseDown",
    "DatabasePoolExhausted",
    "RateLimitRejectionsSurging",
    "ContainerRestarted",
    "CertificateExpiresSoon",  # within 14 days
    "BackupTooOld",
}
IMAGE_VARIABLES = ("PROMETHEUS", "MYSQLD_EXPORTER", "NGINX_EXPORTER")
IMAGE_SERVICES = ("prometheus", "mysqld-exporter", "nginx-exporter")


def promtool(*args):
    """promtool from Debian's prometheus package (make deps), on monitoring/."""
    binary = shutil.which("promtool")
    assert binary, "promtool not found: install Debian's prometheus package (make deps)"
    return subprocess.run(
        [binary, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120, check=False
    )


def test_prometheus_configuration_is_valid():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def defined_alerts():
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_every_concern_has_an_alert():
    assert defined_alerts() >= ALERTS


def test_every_alert_is_tested_firing_and_quiet():
    tests = yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
    cases = [case for test in tests for case in test.get("alert_rule_test", [])]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert fires == defined_alerts(), "alerts without a firing case"
    assert quiet == defined_alerts(), "alerts without a quiet case"


# --- the profile in compose ---------------------------------------------------------------------
# Empty is unset to compose: the files' defaults, whatever images this shell exported.
NO_IMAGES = {f"{name}_IMAGE": "" for name in ("PYTHON", "NGINX", "MARIADB", *IMAGE_VARIABLES)}


def render(files, secrets_dir, *profiles, **env):
    env = {
        "SECRETS_DIR": str(secrets_dir),
        "SERVER_NAME": "stack.example.com",
        **NO_IMAGES,
        **env,
    }
    args = [arg for profile in profiles for arg in ("--profile", profile)]
    return json.loads(compose(*files, *args, "config", "--format", "json", env=env).stdout)


@pytest.fixture(scope="module", params=["development", "production"])
def config(request, secrets_dir):
    files = DEV_FILES if request.param == "development" else PROD_FILES
    return render(files, secrets_dir, "monitoring")


@pytest.fixture(scope="module")
def prod(secrets_dir):
    return render(PROD_FILES, secrets_dir, "monitoring")


def test_monitoring_runs_only_with_its_profile(secrets_dir, config):
    assert not PROFILE_SERVICES & set(render(PROD_FILES, secrets_dir)["services"])
    assert set(config["services"]) >= PROFILE_SERVICES


# Pinned: policy.images_are_pinned, among every rule above. Here: each can be replaced.
def test_monitoring_images_are_overridable(secrets_dir):
    mirrors = {
        "PROMETHEUS_IMAGE": "registry.example.com/prometheus:3.13.1",
        "MYSQLD_EXPORTER_IMAGE": "registry.example.com/mysqld-exporter:0.18.0",
        "NGINX_EXPORTER_IMAGE": "registry.example.com/nginx-exporter:1.5.3",
    }
    services = render(PROD_FILES, secrets_dir, "monitoring", **mirrors)["services"]
    assert [services[s]["image"] for s in IMAGE_SERVICES] == list(mirrors.values())


def test_the_whole_stack_with_monitoring_obeys_every_rule(config):
    rules = policy.PROD_RULES if config["name"].endswith("prod") else policy.DEV_RULES
    for rule in rules:
        assert rule(config) == [], rule.__name__


def test_prometheus_ui_is_published_on_loopback_only(config):
    (port,) = config["services"]["prometheus"]["ports"]
    assert (port["host_ip"], port["published"], port["target"]) == ("127.0.0.1", "9090", 9090)


def test_a_prometheus_ui_on_every_address_is_caught(prod):
    broken = json.loads(json.dumps(prod))
    broken["services"]["prometheus"]["ports"][0]["host_ip"] = "0.0.0.0"  # noqa: S104
    assert policy.only_proxy_publishes(broken) == ["prometheus publishes ports"]


def test_no_metrics_port_is_published(config):
    proxy = config["services"]["proxy"]
    # The proxy publishes its HTTP and HTTPS listeners, never the status (8082) or health ones.
    assert sorted(p["target"] for p in proxy["ports"]) == [8080, 8443]
    for service in ("backend", "mysqld-exporter", "nginx-exporter", "backup-metrics"):
        assert not config["services"][service].get("ports"), service


def scrape_targets():
    """The services prometheus.yml scrapes, by name (its own UI aside)."""
    jobs = yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]
    names = set()
    for job in jobs:
        for group in job.get("static_configs", ()):
            names |= {target.rsplit(":", 1)[0] for target in group["targets"]}
        for lookup in job.get("dns_sd_configs", ()):
            names |= set(lookup["names"])
    return names - {"localhost"}


def test_each_monitoring_service_reaches_only_what_it_scrapes(config):
    networks = {name: set(svc.get("networks", ())) for name, svc in config["services"].items()}
    targets = scrape_targets()
    assert targets >= {"backend", "nginx-exporter", "mysqld-exporter", "backup-metrics"}
    for target in targets:
        assert networks["prometheus"] & networks[target], f"prometheus cannot reach {target}"
    # Each of its networks leads to a target, but the one that only carries its UI port.
    needed = {net for net in networks["prometheus"] if any(net in networks[t] for t in targets)}
    assert networks["prometheus"] - needed == {"monitornet"}
    assert [name for name, nets in networks.items() if "monitornet" in nets] == ["prometheus"]
    assert networks["mysqld-exporter"] == {"dbnet", "metricsnet"}
    assert networks["nginx-exporter"] == {"appnet"}
    assert networks["backup-metrics"] == {"metricsnet"}
    assert config["networks"]["metricsnet"]["internal"] is True
    # Prometheus never joins the database's network.
    assert "dbnet" not in networks["prometheus"]


def test_each_scraper_asks_the_port_its_target_serves_on(config):
    # prometheus.yml and the exporter's flag cannot read the services' settings: held to them.
    jobs = yaml.safe_load((MONITORING / "prometheus.yml").read_text())["scrape_configs"]
    (backend,) = [job for job in jobs if job["job_name"] == "backend"]
    metrics_bind = config["services"]["backend"]["environment"]["METRICS_BIND"]
    assert backend["dns_sd_configs"][0]["port"] == int(metrics_bind.rsplit(":", 1)[1])
    (backup,) = [job for job in jobs if job["job_name"] == "backup"]
    backup_bind = config["services"]["backup-metrics"]["environment"]["METRICS_BIND"]
    (target,) = backup["static_configs"][0]["targets"]
    assert target == f"backup-metrics:{backup_bind.rsplit(':', 1)[1]}"
    status_port = config["services"]["proxy"]["environment"]["PROXY_STATUS_PORT"]
    scrape = config["services"]["nginx-exporter"]["command"]
    assert f"--nginx.scrape-uri=http://proxy:{status_port}/stub_status" in scrape


def test_prometheus_keeps_its_data_on_a_volume_with_a_retention_limit(config):
    prometheus = config["services"]["prometheus"]
    data = next(v for v in prometheus["volumes"] if v["target"] == "/prometheus")
    assert data["type"] == "volume" and data["source"] == "promdata"
    assert "--storage.tsdb.retention.time=15d" in prometheus["command"]
    assert "--storage.tsdb.retention.size=1GB" in prometheus["command"]


def test_mysqld_exporter_reads_its_password_from_a_file_secret_and_verifies_the_server(config):
    exporter = config["services"]["mysqld-exporter"]
    assert [s["source"] for s in exporter["secrets"]] == ["db_exporter_password", "db_tls_cert"]
    assert "--config.my-cnf=/tmp/my.cnf" in exporter["command"][0]
    # dbnet is a network: TLS to the server the database's certificate names.
    assert "ssl-ca=/run/secrets/db_tls_cert" in exporter["command"][0]
    assert not any("PASSWORD" in key for key in exporter.get("environment") or {})


def test_backup_status_is_read_as_the_backups_owner_without_writing(config):
    reader = config["services"]["backup-metrics"]
    assert reader["user"] == "999:999"
    (backups,) = [v for v in reader["volumes"] if v["target"] == "/backups"]
    assert backups["read_only"] is True
