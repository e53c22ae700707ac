"""Static tier: the rendered dev and dev+prod compose configurations obey the security policy.

Every rule runs twice: on the real configuration (must pass) and on a deliberately broken
copy (must fail), so a rule that can never fire is caught too.
"""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack.compose import DEV_FILES, PROD_FILES, ROOT, compose
from tests.static import compose_policy as policy


@pytest.fixture(scope="module")
def secret_values(secrets_dir):
    return {p.read_text() for p in Path(secrets_dir).iterdir()}


def render(files, secrets_dir):
    env = {"SECRETS_DIR": str(secrets_dir), "SERVER_NAME": "stack.example.com"}
    return json.loads(compose(*files, "config", "--format", "json", env=env).stdout)


@pytest.fixture(scope="module")
def dev_config(secrets_dir):
    return render(DEV_FILES, secrets_dir)


@pytest.fixture(scope="module")
def prod_config(secrets_dir):
    return render(PROD_FILES, secrets_dir)


def run(rule, config, secret_values):
    if rule is policy.no_secret_in_environment:
        return rule(config, secret_values)
    return rule(config)


@pytest.mark.parametrize("rule", policy.DEV_RULES, ids=lambda r: r.__name__)
def test_dev_stack_obeys(rule, dev_config, secret_values):
    assert run(rule, dev_config, secret_values) == []


@pytest.mark.parametrize("rule", policy.PROD_RULES, ids=lambda r: r.__name__)
def test_prod_stack_obeys(rule, prod_config, secret_values):
    assert run(rule, prod_config, secret_values) == []


# One deliberate breakage per rule: (rule, how to break a copy of the prod config).
def _publish_db(c):
    c["services"]["db"]["ports"] = [{"target": 3306, "published": "3306"}]


def _make_appnet_public(c):
    c["networks"]["appnet"]["internal"] = False


def _proxy_on_dbnet(c):
    c["services"]["proxy"]["networks"]["dbnet"] = None


def _drop_backend_healthcheck(c):
    c["services"]["backend"]["healthcheck"] = {"disable": True}


def _password_in_env(c):
    c["services"]["backend"]["environment"]["DB_PASSWORD"] = "not-a-real-password"  # noqa: S105


def _floating_db_image(c):
    c["services"]["db"]["image"] = "mariadb:latest"


def _bad_start_order(c):
    c["services"]["backend"]["depends_on"]["migrate"]["condition"] = "service_started"


def _root_proxy(c):
    c["services"]["proxy"]["user"] = "0"


def _writable_db(c):
    c["services"]["db"]["read_only"] = False


def _keep_caps(c):
    c["services"]["backend"]["cap_drop"] = ["NET_RAW"]


def _root_job_on_a_network(c):
    c["services"]["backup-dir"].pop("network_mode")


def _root_job_with_more_caps(c):
    c["services"]["backup-dir"]["cap_add"] = ["CHOWN", "FOWNER", "DAC_OVERRIDE"]


def _caps_added(c):
    c["services"]["backend"]["cap_add"] = ["NET_BIND_SERVICE"]


def _no_log_rotation(c):
    c["services"]["migrate"]["logging"] = {"driver": "json-file"}


def _no_pids_limit(c):
    del c["services"]["proxy"]["deploy"]["resources"]["limits"]["pids"]


def _no_restart(c):
    c["services"]["db"].pop("restart")


def _unsized_tmpfs(c):
    c["services"]["backend"]["tmpfs"] = ["/tmp"]


def _tmpfs_beyond_memory_limit(c):
    c["services"]["proxy"]["tmpfs"] = ["/var/cache/nginx:size=256m,uid=101,gid=101,mode=0700"]


BREAKAGES = [
    (policy.only_proxy_publishes, _publish_db),
    (policy.private_networks_are_internal, _make_appnet_public),
    (policy.private_networks_are_internal, _proxy_on_dbnet),
    (policy.only_db_clients_reach_db, _proxy_on_dbnet),
    (policy.every_service_has_healthcheck, _drop_backend_healthcheck),
    (policy.no_secret_in_environment, _password_in_env),
    (policy.images_are_pinned, _floating_db_image),
    (policy.startup_order_is_safe, _bad_start_order),
    (policy.services_are_hardened, _root_proxy),
    (policy.services_are_hardened, _writable_db),
    (policy.services_are_hardened, _keep_caps),
    (policy.services_are_hardened, _root_job_on_a_network),
    (policy.services_are_hardened, _root_job_with_more_caps),
    (policy.services_are_hardened, _caps_added),
    (policy.services_are_hardened, _no_log_rotation),
    (policy.services_have_limits, _no_pids_limit),
    (policy.long_running_services_restart, _no_restart),
    (policy.every_tmpfs_is_sized, _unsized_tmpfs),
    (policy.every_tmpfs_is_sized, _tmpfs_beyond_memory_limit),
]


def test_every_rule_has_a_breakage():
    assert {rule for rule, _ in BREAKAGES} == set(policy.PROD_RULES)


@pytest.mark.parametrize("rule,breakage", BREAKAGES, ids=lambda x: x.__name__)
def test_rule_catches_broken_copy(rule, breakage, prod_config, secret_values):
    broken = copy.deepcopy(prod_config)
    breakage(broken)
    assert run(rule, broken, secret_values), f"{rule.__name__} missed {breakage.__name__}"


def test_secret_value_in_environment_is_caught(prod_config, secret_values):
    broken = copy.deepcopy(prod_config)
    broken["services"]["backend"]["environment"]["DB_HOST"] = next(iter(secret_values))
    assert policy.no_secret_in_environment(broken, secret_values)


def test_rendered_config_contains_no_secret_value(prod_config, secret_values):
    text = json.dumps(prod_config)
    assert not [v for v in secret_values if v in text]


def test_prod_requires_server_name(secrets_dir):
    result = compose(
        *PROD_FILES, "config", env={"SECRETS_DIR": str(secrets_dir), "SERVER_NAME": ""}, check=False
    )
    assert result.returncode != 0
    assert "SERVER_NAME" in result.stderr


def gunicorn_setting(name, environment, tmp_path):
    """NAME as gunicorn.conf.py sets it for a process with ENVIRONMENT (a service's, rendered)."""
    probe = "import runpy, sys; print(runpy.run_path(sys.argv[1])[sys.argv[2]])"
    printed = subprocess.run(
        [sys.executable, "-c", probe, ROOT / "backend" / "gunicorn.conf.py", name],
        env={"PATH": os.environ["PATH"], **environment,
             "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return printed.stdout.strip()


def test_prod_runs_two_backend_replicas_with_grace(prod_config, tmp_path):
    backend = prod_config["services"]["backend"]
    assert backend["deploy"]["replicas"] == 2
    # Docker's SIGKILL must come after gunicorn's own graceful shutdown, as the container's
    # environment has gunicorn.conf.py set it.
    graceful = int(gunicorn_setting("graceful_timeout", backend["environment"], tmp_path))
    assert int(backend["stop_grace_period"].rstrip("s")) > graceful
    assert backend["build"]["target"] == "production"
    assert prod_config["services"]["migrate"]["build"]["target"] == "production"


def test_prod_backend_has_no_code_mount(prod_config):
    assert not prod_config["services"]["backend"].get("volumes")
