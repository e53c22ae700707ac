"""One configuration for both ends of the supported version range (README, "Supported versions"):
natively the lowest (Debian 12's nginx 1.22 and MariaDB 10.11), in the containers the shipped ones
(nginx 1.30, MariaDB 11.8). Each server reads it without a deprecation warning at start."""

import re

import pytest

# nginx: `[warn] ... the "listen ... http2" directive is deprecated`; MariaDB: `[Warning] '...' is
# deprecated and will be removed in a future release`.
DEPRECATION = re.compile(r"\[(warn|Warning)\].*deprecated", re.IGNORECASE)


@pytest.mark.parametrize("service", ["proxy", "db"])
def test_server_starts_without_deprecation_warnings(stack, service):
    log = stack.logs(service)
    assert log.strip(), f"no {service} log to read"
    assert [line for line in log.splitlines() if DEPRECATION.search(line)] == []
