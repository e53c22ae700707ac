"""Compose tier: one client's 20 slow readers of the largest list page keep the proxy within its
memory limit, and another client is still served meanwhile.

nginx reads a response from the backend as fast as gunicorn sends it and spools what the client
has not taken yet: 8 x 16 KB in memory, the rest into /var/cache/nginx, a tmpfs that counts
against the container's 128M. The tmpfs and each response's share of it are capped (compose.yaml,
proxy/snippets/proxy.conf); the backend keeps its largest response, a list page of 100, below
320 KB.
"""

import json
import socket
import ssl
from pathlib import Path

import pytest

from tests.stack import wait_until

pytestmark = pytest.mark.compose

# As many slow readers as one client may hold connections (PROXY_CONN_LIMIT): all of them
# together must not stop the stack from serving anyone else.
READERS = 20
WORST_PAGE = "/api/posts?limit=100"
# The largest list item whatever the JSON encoding: a control character takes 6 bytes (\u0001)
# and fills the title and the excerpt (280 characters); the rest of the body is emoji, 12 bytes each
# where JSON escapes non-ASCII (\ud83d\ude00), which a list of whole bodies would carry.
WORST_POSTS = {
    "count": 100,
    "title": [["\x01", 200]],
    "body": [["\x01", 280], ["\U0001f600", 9_720]],
}
# Made and removed through the backend's own code and database account, inside a backend container.
POSTS_SCRIPT = """
import json, sys
from app.config import Config
from app.db import make_engine
from app.posts import create_post, delete_post

command, spec = sys.argv[1], json.loads(sys.argv[2])
with make_engine(Config.from_env()).begin() as conn:
    if command == "create":
        title, body = ("".join(c * n for c, n in spec[field]) for field in ("title", "body"))
        print(json.dumps([create_post(conn, title, body)["id"] for _ in range(spec["count"])]))
    else:
        for post_id in spec:
            delete_post(conn, post_id)
"""
# Another client: a backend container, whose address on appnet is not the host's. Prints the
# status line of GET /api/posts?limit=5 through the proxy, verified against the dev CA (argv[1]).
OTHER_CLIENT_SCRIPT = """
import socket, ssl, sys
context = ssl.create_default_context(cadata=sys.argv[1])
with socket.create_connection(("proxy", 8443), timeout=10) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET /api/posts?limit=5 HTTP/1.1\\r\\nHost: localhost\\r\\n"
                    b"Connection: close\\r\\n\\r\\n")
        print(tls.recv(4096).split(b"\\r\\n")[0].decode())
"""
# The proxy's memory cgroup as the container sees it (cgroup v2, else v1): limit, peak, OOM kills.
MEMORY_SCRIPT = """
if [ -f /sys/fs/cgroup/memory.max ]; then
  cd /sys/fs/cgroup && cat memory.max memory.peak && grep oom_kill memory.events
else
  cd /sys/fs/cgroup/memory && cat memory.limit_in_bytes memory.max_usage_in_bytes
  grep oom_kill memory.oom_control
fi
"""


@pytest.fixture(scope="module")
def stack(compose_stack):
    return compose_stack


@pytest.fixture
def worst_case_posts(stack):
    created = stack.exec(
        "backend", "python", "-c", POSTS_SCRIPT, "create", json.dumps(WORST_POSTS), check=True
    )
    ids = json.loads(created.stdout)
    yield ids
    stack.exec("backend", "python", "-c", POSTS_SCRIPT, "delete", json.dumps(ids), check=True)


class SlowReader:
    """A client that sends one request, reads the response head, then takes the rest only when
    told to. Its receive window is small, so nginx cannot push the response into its socket."""

    def __init__(self, address, port, cafile, path):
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        raw.settimeout(10)
        raw.connect((address, port))
        context = ssl.create_default_context(cafile=cafile)
        self.tls = context.wrap_socket(raw, server_hostname="localhost")
        self.tls.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
            # Uncompressed: the whole page has to pass through the slow socket.
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode()
        )
        self.received = b""
        while b"\r\n\r\n" not in self.received:
            chunk = self.tls.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed before a response head: {self.received[:200]!r}")
            self.received += chunk
        head = self.received.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        self.status = head[0]
        self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head[1:])}

    def read_rest(self):
        """Read to the end (nginx closes the connection); returns the body."""
        with self.tls:
            while chunk := self.tls.recv(65536):
                self.received += chunk
        return self.received.split(b"\r\n\r\n", 1)[1]


def proxy_memory(stack):
    """(limit, peak usage since the container started, OOM kills) of the proxy's cgroup."""
    out = stack.exec("proxy", "sh", "-c", MEMORY_SCRIPT, check=True).stdout.split()
    return int(out[0]), int(out[1]), int(out[-1])


def proxy_restarts(stack):
    """How often Docker restarted the proxy container, and whether the kernel OOM-killed it."""
    (proxy,) = stack.inspect("proxy")
    return proxy["RestartCount"], proxy["State"]["OOMKilled"]


def spooled_kb(stack):
    """KB in use on the proxy's /var/cache/nginx (nginx unlinks its temp files at once: df sees
    them, ls does not)."""
    out = stack.exec("proxy", "df", "-k", "/var/cache/nginx", check=True).stdout
    return int(out.splitlines()[-1].split()[2])


def frontnet_address(stack):
    (proxy,) = stack.inspect("proxy")
    return proxy["NetworkSettings"]["Networks"][f"{stack.project}_frontnet"]["IPAddress"]


def test_slow_readers_keep_the_proxy_within_its_memory_limit_and_others_served(
    stack, worst_case_posts
):
    # Straight to the proxy's address on frontnet: the published port passes through
    # docker-proxy, which would buffer each response itself and hide the slow reader from nginx.
    address = frontnet_address(stack)
    restarts = proxy_restarts(stack)
    readers = []
    try:
        for _ in range(READERS):
            readers.append(SlowReader(address, 8443, stack.ca_bundle, WORST_PAGE))
        assert {reader.status for reader in readers} == {"HTTP/1.1 200 OK"}
        # The worst case is what they fetch (the backend's ceiling is 320 KB).
        assert int(readers[0].headers["content-length"]) > 250_000, readers[0].headers

        # nginx holds what the readers have not taken, part of it in the tmpfs.
        wait_until(lambda: spooled_kb(stack) > 0, 15, "nginx to spool responses to its tmpfs")
        # The readers hold all of their client's connections: one more is refused...
        extra = SlowReader(address, 8443, stack.ca_bundle, "/api/posts?limit=5")
        readers.append(extra)
        assert extra.status == "HTTP/1.1 429 Too Many Requests"
        # ... while another client is served.
        ca = Path(stack.ca_bundle).read_text()
        other = stack.exec("backend", "python", "-c", OTHER_CLIENT_SCRIPT, ca, check=True)
        assert other.stdout.strip() == "HTTP/1.1 200 OK", other.stdout + other.stderr

        limit, peak, oom_kills = proxy_memory(stack)
        assert limit == 128 * 1024 * 1024
        assert peak < limit, f"proxy memory peaked at {peak} of {limit} bytes"
        assert oom_kills == 0
        # The counters above are the current container's: it was not killed and replaced either.
        assert proxy_restarts(stack) == restarts

        # Every reader gets its whole page: nothing was cut short to make room.
        for reader in readers[:READERS]:
            body = reader.read_rest()
            assert len(body) == int(reader.headers["content-length"])
            assert [post["id"] for post in json.loads(body)["posts"]] == worst_case_posts[::-1]
    finally:
        for reader in readers:
            reader.tls.close()
