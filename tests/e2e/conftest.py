"""The `stack` fixture (one per runtime) and a `client` that speaks HTTPS to it.

Every e2e test takes `stack` (tests.stack.Stack) and talks to nginx only, trusting the dev CA.
"native": processes on 127.0.0.1 (native/, through tests/stack/native.py); "compose": the containers
(tests/stack/compose.py), marked `compose`; "swarm": the Swarm stack (tests/stack/swarm.py), marked
`swarm`. Both Docker runtimes skip where Docker is unavailable.
"""

import signal

import pytest
import requests
from urllib3.util.retry import Retry

from tests.e2e.helpers import wait_until_requests_recover, wait_until_writes_recover
from tests.stack import Stack, free_port
from tests.stack.client import SourceAddressAdapter
from tests.stack.native import NativeStack


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def teardown_on_sigterm():
    """A SIGTERM (CI timeout, `kill`) ends the session like Ctrl-C: fixtures are torn down, so no
    stack process outlives the tests. Only replaces the default action, never another handler."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(
    scope="session",
    params=[
        "native",
        pytest.param("compose", marks=pytest.mark.compose),
        pytest.param("swarm", marks=pytest.mark.swarm),
    ],
)
def stack(request, tmp_path_factory) -> Stack:
    if request.param != "native":
        # The root conftest's compose_stack and swarm_stack skip with the reason when there is
        # no Docker engine.
        running = request.getfixturevalue(f"{request.param}_stack")
    else:
        # Certificates and secrets made by scripts/make-certs.sh and make-secrets.sh for this
        # session (fixtures of tests/conftest.py), never the developer's own.
        running = NativeStack(
            tmp_path_factory.mktemp("native"),
            http_port=free_port(),
            https_port=free_port(),
            certs_dir=request.getfixturevalue("certs_dir"),
            secrets_dir=request.getfixturevalue("secrets_dir"),
        )
        request.addfinalizer(running.down)  # also when up() or a test fails
        running.up()
    assert isinstance(running, Stack), f"{type(running).__name__} lacks part of tests.stack.Stack"
    return running


def make_client(stack: Stack, max_retries=0) -> requests.Session:
    session = requests.Session()
    # REQUESTS_CA_BUNDLE and proxy variables of the environment would override `verify`: only
    # the development CA may vouch for the server.
    session.trust_env = False
    session.verify = stack.ca_bundle
    adapter = SourceAddressAdapter(stack.client_address, max_retries=max_retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@pytest.fixture
def client(stack):
    """A fresh requests.Session per test: no keep-alive connection outlives a reload or a kill.
    Anonymous: it may read; its writes are refused (401)."""
    with make_client(stack) as session:
        yield session


# A polite writer: nginx's write limit (5/s, burst 10) answers a 429 before the request reaches the
# backend, so waiting and sending it again is safe for any method. Tests of the limit itself use
# `client`, which never retries.
POLITE = Retry(
    total=6, status_forcelist=[429], allowed_methods=None, backoff_factor=0.2, raise_on_status=False
)


@pytest.fixture
def writer(stack):
    """Like `client`, holding a write token (Authorization: Bearer), and waiting out 429s."""
    with make_client(stack, max_retries=POLITE) as session:
        session.headers["Authorization"] = f"Bearer {stack.write_token}"
        yield session


@pytest.fixture
def burst_writer(stack, writer):
    """`writer`, for a test that spends the proxy's write burst: afterwards the bucket has drained,
    so the tests after it find the whole burst again (under compose all clients share it)."""
    yield writer
    with make_client(stack) as client:
        wait_until_writes_recover(client, stack)


@pytest.fixture(scope="module")
def request_burst(stack):
    """For a module whose tests spend the proxy's per-client request burst (bisections, many odd
    requests): afterwards the bucket has drained, so the modules after it find the whole burst."""
    yield
    with make_client(stack) as client:
        wait_until_requests_recover(client, stack)
