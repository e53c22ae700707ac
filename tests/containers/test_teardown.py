"""Taking a stack down leaves nothing of it behind, whichever profiles ran: a network left over by
each run exhausts Docker's address pools (31 networks by default) and the next `up` fails."""

import os
import subprocess

import pytest

from tests.stack.compose import ComposeStack

pytestmark = pytest.mark.compose


def leftovers(project):
    """The networks and volumes that still carry PROJECT's compose label."""
    label = f"label=com.docker.compose.project={project}"
    found = []
    for kind in ("network", "volume"):
        listing = subprocess.run(
            ["docker", kind, "ls", "--quiet", "--filter", label],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        found += [f"{kind} {name}" for name in listing.stdout.split()]
    return found


def test_down_removes_the_networks_and_volumes_of_every_profile(compose_stack, tmp_path):
    # A second project beside the session's, with only the monitoring profile's Prometheus
    # (on its two networks of its own and its volume): seconds, from an image that is here.
    stack = ComposeStack(
        project=f"{compose_stack.project}down",
        http_port=0,
        https_port=0,
        certs_dir=compose_stack.env["CERTS_DIR"],
        secrets_dir=compose_stack.env["SECRETS_DIR"],
        acme_dir=tmp_path,
        run_dir=tmp_path,
    )
    stack.env["PROMETHEUS_PORT"] = "0"
    image = os.environ.get("PROMETHEUS_IMAGE")
    if image:
        stack.env["PROMETHEUS_IMAGE"] = image
    try:
        stack.compose("--profile", "monitoring", "up", "--detach", "--no-build", "prometheus")
        assert leftovers(stack.project), "the profile's networks and volume were not made"
    finally:
        stack.down()
    assert leftovers(stack.project) == []
