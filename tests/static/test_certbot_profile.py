"""The optional `certbot` profile of production, proven from its rendered configuration only.

It cannot run here: no registry serves certbot/certbot and no stand-in exists, and Let's Encrypt
cannot reach this machine. So these tests hold its configuration to the rules the other services
obey and check each part of the renewal path (webroot, certificate files, reload) statically.
"""

import json
import subprocess

import pytest

from tests.stack.compose import PROD_FILES, compose
from tests.static import compose_policy as policy


def render(secrets_dir, *profile, **env):
    env = {"SECRETS_DIR": str(secrets_dir), "SERVER_NAME": "stack.example.com", **env}
    args = ["--profile", "certbot"] if profile else []
    return json.loads(compose(*PROD_FILES, *args, "config", "--format", "json", env=env).stdout)


@pytest.fixture(scope="module")
def config(secrets_dir):
    return render(secrets_dir, "certbot")


@pytest.fixture(scope="module")
def certbot(config):
    return config["services"]["certbot"]


def test_certbot_runs_only_with_its_profile(secrets_dir, config):
    assert "certbot" not in render(secrets_dir)["services"]
    assert "certbot" in config["services"]


def test_certbot_image_is_pinned_and_overridable(secrets_dir, certbot):
    assert policy.images_are_pinned({"services": {"certbot": certbot}}) == []
    mirror = "registry.example.com/certbot/certbot:v5.10.9"
    assert (
        render(secrets_dir, "certbot", CERTBOT_IMAGE=mirror)["services"]["certbot"]["image"]
        == mirror
    )


@pytest.mark.parametrize(
    "rule",
    [
        policy.services_are_hardened,
        policy.services_have_limits,
        policy.every_service_has_healthcheck,
        policy.long_running_services_restart,
        policy.every_tmpfs_is_sized,
        policy.no_secret_in_environment,
    ],
    ids=lambda rule: rule.__name__,
)
def test_certbot_obeys_the_rules_of_every_service(config, rule):
    only = {**config, "services": {"certbot": config["services"]["certbot"]}}
    assert rule(only) == []


def test_certbot_reaches_the_internet_but_no_internal_network(config, certbot):
    assert set(certbot["networks"]) == {"frontnet"}
    assert not config["networks"]["frontnet"].get("internal")


def test_certbot_writes_challenges_where_the_proxy_serves_them(config, certbot):
    proxy = config["services"]["proxy"]
    proxy_acme = next(v for v in proxy["volumes"] if v["target"] == "/var/www/acme")
    certbot_acme = next(v for v in certbot["volumes"] if v["target"] == "/var/www/acme")
    assert certbot_acme["source"] == proxy_acme["source"]
    assert not certbot_acme.get("read_only")
    assert "--webroot --webroot-path /var/www/acme" in certbot["command"][0]


def test_certbot_installs_renewals_over_the_proxys_certificate_files(config, certbot):
    proxy = {v["target"]: v["source"] for v in config["services"]["proxy"]["volumes"]}
    mounts = {v["target"]: v for v in certbot["volumes"]}
    for name in ("server.crt", "server.key"):
        assert mounts[f"/certs/{name}"]["source"] == proxy[f"/etc/nginx/certs/{name}"]
        assert not mounts[f"/certs/{name}"].get("read_only")
    script = certbot["command"][0]
    # cp, not mv: the proxy's bind mounts keep the inode they started with.
    assert 'cp "$$RENEWED_LINEAGE/fullchain.pem" /certs/server.crt' in script
    assert 'cp "$$RENEWED_LINEAGE/privkey.pem" /certs/server.key' in script


def test_certbot_reloads_nginx_through_the_proxys_process_namespace(certbot):
    # Same namespace and uid as nginx: the signal needs neither a capability nor Docker's socket.
    assert certbot["pid"] == "service:proxy"
    assert certbot["user"] == "101:101"
    assert not any("docker.sock" in v["source"] for v in certbot["volumes"])
    assert 'pkill -HUP -f "^nginx: master"' in certbot["command"][0]


def test_certbot_renews_twice_a_day_in_a_valid_shell_loop(certbot):
    assert certbot["entrypoint"] == ["/bin/sh", "-c"]
    script = certbot["command"][0].replace("$$", "$")
    assert "certbot renew --non-interactive" in script
    assert "sleep 12h & wait $!" in script
    # POSIX sh, as the image's /bin/sh (busybox) runs it: dash -n parses it the same way.
    checked = subprocess.run(["dash", "-n", "-c", script], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
