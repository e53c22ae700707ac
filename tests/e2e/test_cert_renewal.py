"""Certificate renewal without downtime, in both runtimes: `make certs` re-issues a development
certificate that expires within 30 days, and `make reload-proxy` has nginx serve the new one
while a steady read load runs, with no failed request."""

import socket
import ssl
import subprocess
import time
from urllib.parse import urlsplit

import pytest

from tests.e2e.load import SteadyReads
from tests.stack import wait_until
from tests.static.test_make_certs import issue, make_certs


def served_serial(stack):
    """Serial number of the certificate nginx presents now (a new connection, dev CA trusted)."""
    url = urlsplit(stack.base_url)
    context = ssl.create_default_context(cafile=stack.ca_bundle)
    with (
        socket.create_connection(
            (url.hostname, url.port), timeout=10, source_address=(stack.client_address, 0)
        ) as sock,
        context.wrap_socket(sock, server_hostname=url.hostname) as tls,
    ):
        return int(tls.getpeercert()["serialNumber"], 16)


def file_serial(path):
    printed = subprocess.run(
        ["openssl", "x509", "-in", str(path), "-noout", "-serial"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return int(printed.strip().split("=", 1)[1], 16)


def test_renewed_certificate_is_served_after_reload_with_no_failed_request(stack, certs_dir):
    if not stack.secret_files:
        pytest.skip("Swarm serves the certificate from a secret, not from certs_dir")
    # A development certificate with ten days left, served.
    issue(certs_dir, days=10)
    stack.reload_proxy()
    expiring = file_serial(certs_dir / "server.crt")
    wait_until(
        lambda: served_serial(stack) == expiring, 15, "nginx to serve the 10-day certificate"
    )

    with SteadyReads(stack) as load:
        printed = make_certs(certs_dir)
        renewed = file_serial(certs_dir / "server.crt")
        reloaded = stack.run_script("reload-proxy.sh")
        wait_until(lambda: served_serial(stack) == renewed, 15, "nginx to serve the renewed one")
        # Clients keep arriving for a while after the reload (old workers finish meanwhile).
        reload_done = time.monotonic()
        wait_until(
            lambda: load.sent_between(reload_done, time.monotonic()) >= 20, 30, "20 more requests"
        )

    assert "created" in printed and "expires within 30 days" in printed, printed
    assert reloaded.returncode == 0, reloaded.stderr
    assert renewed != expiring
    assert load.failures == [], f"{len(load.failures)} of {len(load.results)}: {load.failures[:10]}"
