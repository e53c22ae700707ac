"""The proxy's own proof (static tier): the rendered templates pass `nginx -t` on Debian's nginx
1.22, the rules hold in the source files, and a real nginx on 127.0.0.1 in front of a stub backend
behaves as promised (redirects, headers, limits, TLS versions, refused hosts)."""

from __future__ import annotations

import gzip
import http.server
import json
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import crossplane
import pytest
import requests

from native.compose import service_environment
from native.nginx import (
    PROXY_DIR,
    Nginx,
    check_config,
    entrypoint_env,
    prepare_conf_dir,
    render_templates,
    substitute,
)
from tests.stack import free_port, wait_until
from tests.stack.client import SourceAddressAdapter
from tests.static.test_compose_policy import gunicorn_setting

# proxy/proxy.env's defaults are development's: HSTS for 5 minutes, no subdomains (compose.prod.yaml
# sets two years), and only on HTTPS answers (RFC 6797).
DEV_HSTS = "max-age=300"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
# Mozilla guideline 6.0, "intermediate", OpenSSL 3.0: ECDHE with AES-GCM or ChaCha20, no DHE.
MOZILLA_INTERMEDIATE_CIPHERS = ":".join(
    f"ECDHE-{auth}-{cipher}"
    for cipher in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
    for auth in ("ECDSA", "RSA")
)
DEFAULTS = service_environment("proxy")
# What the templates are rendered with: the defaults, and what the entrypoint adds (the host nginx).
RENDERED = entrypoint_env(DEFAULTS)
ACME_FILE = "challenge-Zx9"
TIMEOUT = 10


# --- a stub backend -------------------------------------------------------------------------


class StubHandler(http.server.BaseHTTPRequestHandler):
    """GET echoes the request headers as JSON; POST answers 201; /close drops the connection;
    /hang answers after nginx's proxy_read_timeout (5 s)."""

    seen: list[str] = []

    def log_message(self, *args):
        pass

    def _json(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # A backend that sets its own copy of a header nginx owns: the client must see nginx's.
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.seen.append(f"GET {self.path}")
        if self.path == "/close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.path == "/hang":
            time.sleep(6)
        payload = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if self.path == "/big":
            payload["filler"] = "x" * 4096
        self._json(200, payload)

    def do_POST(self):
        self.seen.append(f"POST {self.path}")
        length = int(self.headers.get("Content-Length", 0))
        received = len(self.rfile.read(length))
        self._json(201, {"received": received})


@pytest.fixture(scope="module")
def backend():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def acme_root():
    # Served by nginx's workers, which run as nobody when the master is root: pytest's tmp_path
    # sits in a 0700 directory, so use a world-traversable one.
    root = Path(tempfile.mkdtemp(prefix="acme-"))
    challenge = root / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / ACME_FILE).write_text("token-content\n")
    for path in (root, root / ".well-known", challenge):
        path.chmod(0o755)
    (challenge / ACME_FILE).chmod(0o644)
    yield root
    shutil.rmtree(root)


def proxy_env(certs_dir: Path, acme_root: Path, backend_port: int, **overrides) -> dict:
    http_port, https_port = free_port(), free_port()
    env = {
        **DEFAULTS,
        "PROXY_HTTP_PORT": f"127.0.0.1:{http_port}",
        "PROXY_HTTPS_PORT": f"127.0.0.1:{https_port}",
        "PROXY_HEALTH_PORT": f"127.0.0.1:{free_port()}",
        "PROXY_STATUS_PORT": f"127.0.0.1:{free_port()}",
        "PROXY_PUBLIC_HTTPS_PORT": str(https_port),
        "PROXY_BACKEND": f"127.0.0.1:{backend_port}",
        "PROXY_RESOLVER": "127.0.0.1",
        "PROXY_TLS_CERT": str(certs_dir / "server.crt"),
        "PROXY_TLS_KEY": str(certs_dir / "server.key"),
        "PROXY_ACME_ROOT": str(acme_root),
    }
    env.update(overrides)
    return env


class Proxy:
    def __init__(self, nginx: Nginx, ca: Path):
        self.nginx = nginx
        self.ca = str(ca)
        self.http_port = int(nginx.env["PROXY_HTTP_PORT"].rsplit(":", 1)[1])
        self.https_port = int(nginx.env["PROXY_HTTPS_PORT"].rsplit(":", 1)[1])
        self.http = f"http://localhost:{self.http_port}"
        self.https = f"https://localhost:{self.https_port}"
        self.health = f"http://{nginx.env['PROXY_HEALTH_PORT']}/nginx-health"

    def session(self, source: str | None = None) -> requests.Session:
        """A session trusting the dev CA, optionally sending from another loopback address
        (another client as far as the per-client limits are concerned)."""
        session = requests.Session()
        session.verify = self.ca
        # Otherwise REQUESTS_CA_BUNDLE (and *_PROXY) from the environment would win over verify.
        session.trust_env = False
        if source:
            adapter = SourceAddressAdapter(source)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
        return session


def start_proxy(tmp_path_factory, certs_dir, acme_root, backend_port, **overrides) -> Proxy:
    env = proxy_env(certs_dir, acme_root, backend_port, **overrides)
    health = f"http://{env['PROXY_HEALTH_PORT']}/nginx-health"
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), env, health).start()
    return Proxy(nginx, certs_dir / "dev-ca.crt")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory, certs_dir, acme_root, backend):
    proxy = start_proxy(tmp_path_factory, certs_dir, acme_root, backend.server_address[1])
    yield proxy
    proxy.nginx.stop()


@pytest.fixture
def client(proxy):
    with proxy.session() as session:
        yield session


def assert_security_headers(response: requests.Response) -> None:
    hsts = response.headers.get("Strict-Transport-Security")
    assert hsts == (DEV_HSTS if response.url.startswith("https://") else None), response.url
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.headers)
    assert "camera=()" in response.headers.get("Permissions-Policy", "")
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers.get("X-Request-ID", "")), response.headers


# --- rendering and `nginx -t` ---------------------------------------------------------------


def test_rendering_replaces_only_set_filtered_variables_like_the_image():
    env = {"NGINX_ENVSUBST_FILTER": "^PROXY_", "PROXY_A": "1", "PROXY_EMPTY": "", "HOME": "/x"}
    text = "$PROXY_A ${PROXY_A} ${PROXY_EMPTY}. $PROXY_UNSET ${HOME} $host $request_id $PROXY_AB"
    assert substitute(text, env) == "1 1 . $PROXY_UNSET ${HOME} $host $request_id $PROXY_AB"
    # Without a filter every set variable is replaced, as envsubst does.
    assert substitute("${HOME}", {"HOME": "/x"}) == "/x"


def test_templates_render_every_proxy_variable_and_keep_nginx_variables(tmp_path):
    written = render_templates(PROXY_DIR / "templates", tmp_path, RENDERED)
    assert {p.name for p in written} >= {"limits.conf", "servers.conf"}
    rendered = "\n".join(p.read_text() for p in written)
    assert "${" not in rendered and "$PROXY_" not in rendered
    for variable in ("$host", "$request_uri", "$binary_remote_addr", "$https"):
        assert variable in rendered


def test_every_template_variable_is_set_by_the_proxy_service_or_the_entrypoint():
    used = set()
    for template in (PROXY_DIR / "templates").glob("*.template"):
        used |= set(re.findall(r"\$\{?(PROXY_[A-Z0-9_]+)", template.read_text()))
    assert used - DEFAULTS.keys() == {"PROXY_LISTEN_HTTP2", "PROXY_HTTP2", "PROXY_UPSTREAM_RESOLVE"}
    assert used - RENDERED.keys() == set()
    assert DEFAULTS["NGINX_ENVSUBST_FILTER"] == "^PROXY_"


def test_rendered_config_passes_nginx_t_without_warnings(tmp_path, certs_dir, acme_root):
    prepare_conf_dir(tmp_path, proxy_env(certs_dir, acme_root, free_port()))
    result = check_config(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    # The lowest supported nginx (the host's 1.22) reads it without a deprecation or any warning;
    # tests/containers checks the shipped one.
    assert "[warn]" not in result.stderr, result.stderr


# --- static rules on the source files -------------------------------------------------------


def as_block(head: list[str], parsed: list[dict]) -> dict:
    """crossplane's directives as {"head", "directives": [[name, *args]], "blocks"}."""
    return {
        "head": head,
        "directives": [[d["directive"], *d["args"]] for d in parsed if "block" not in d],
        "blocks": [
            as_block([d["directive"], *d["args"]], d["block"]) for d in parsed if "block" in d
        ],
    }


def walk(block: dict, depth: int = 0):
    yield block, depth
    for child in block["blocks"]:
        yield from walk(child, depth + 1)


def config_files() -> dict[str, dict]:
    """Every source file, parsed by crossplane (nginx's grammar: quotes, escapes, comments, `if`
    conditions); templates rendered with proxy.env first, as the image's entrypoint does."""
    files = [PROXY_DIR / "nginx.conf", *(PROXY_DIR / "snippets").glob("*.conf")]
    files += (PROXY_DIR / "templates").glob("*.template")
    parsed = {}
    with tempfile.TemporaryDirectory() as rendered_dir:
        for path in files:
            rendered = Path(rendered_dir, path.name)
            rendered.write_text(substitute(path.read_text(), RENDERED))
            # One file at a time, each checked by the rules below as written; nginx -t checks
            # the whole (test_rendered_config_passes_nginx_t_without_warnings).
            result = crossplane.parse(
                str(rendered), single=True, comments=False, check_ctx=False, check_args=False
            )
            assert result["status"] == "ok", (path, result["errors"])
            parsed[str(path.relative_to(PROXY_DIR))] = as_block(
                ["<file>"], result["config"][0]["parsed"]
            )
    return parsed


def directives(block: dict, name: str) -> list[list[str]]:
    return [d for d in block["directives"] if d and d[0] == name]


def includes(block: dict, snippet: str) -> bool:
    return ["include", f"snippets/{snippet}"] in block["directives"]


def test_limit_zones_are_declared_only_at_http_level():
    found = []
    for name, tree in config_files().items():
        for block, depth in walk(tree):
            for directive in block["directives"]:
                if directive[0] in ("limit_req_zone", "limit_conn_zone"):
                    # Only conf.d files (templates) are included directly in http {}.
                    assert name.startswith("templates/") and depth == 0, (name, block["head"])
                    found.append(directive[0])
    assert set(found) == {"limit_req_zone", "limit_conn_zone"}


def test_rate_and_connection_limits_answer_429():
    limits = config_files()["templates/limits.conf.template"]
    assert directives(limits, "limit_req_status") == [["limit_req_status", "429"]]
    assert directives(limits, "limit_conn_status") == [["limit_conn_status", "429"]]


def test_tls_protocols_are_exactly_tls12_and_tls13_in_every_tls_server():
    files = config_files()
    tls = files["snippets/tls.conf"]
    assert directives(tls, "ssl_protocols") == [["ssl_protocols", "TLSv1.2", "TLSv1.3"]]
    assert directives(tls, "ssl_prefer_server_ciphers") == [["ssl_prefer_server_ciphers", "off"]]
    assert directives(tls, "ssl_ecdh_curve") == [["ssl_ecdh_curve", "X25519:prime256v1:secp384r1"]]
    assert directives(tls, "ssl_ciphers") == [["ssl_ciphers", MOZILLA_INTERMEDIATE_CIPHERS]]
    assert directives(tls, "ssl_session_tickets") == [["ssl_session_tickets", "off"]]
    for name, tree in files.items():
        if name != "snippets/tls.conf":
            assert not any(directives(b, "ssl_protocols") for b, _ in walk(tree)), name
    servers = [
        b for b, _ in walk(files["templates/servers.conf.template"]) if b["head"] == ["server"]
    ]
    tls_servers = [s for s in servers if any("ssl" in d for d in directives(s, "listen"))]
    assert len(tls_servers) == 2
    assert all(includes(s, "tls.conf") for s in tls_servers)


def test_every_block_that_adds_headers_includes_security_headers():
    for name, tree in config_files().items():
        if name == "snippets/security-headers.conf":
            continue
        for block, depth in walk(tree):
            if depth == 0:
                assert not directives(block, "add_header"), f"{name}: add_header outside a block"
            elif directives(block, "add_header") or block["head"] == ["server"]:
                assert includes(block, "security-headers.conf"), (name, block["head"])


# --- behaviour of a running nginx -----------------------------------------------------------


def test_health_endpoint_answers_200_without_touching_backend(proxy, client, backend):
    before = len(StubHandler.seen)
    response = client.get(proxy.health, timeout=TIMEOUT)
    assert (response.status_code, response.text) == (200, "ok\n")
    assert len(StubHandler.seen) == before


def test_public_servers_have_no_health_endpoint(proxy, client):
    # Over HTTPS the path is the site's like any other (here: the stub backend's answer) ...
    response = client.get(f"{proxy.https}/nginx-health", timeout=TIMEOUT)
    assert response.text != "ok\n"
    assert response.json()["path"] == "/nginx-health"
    # ... and plain HTTP redirects it; an unknown Host is not answered at all.
    response = client.get(f"{proxy.http}/nginx-health", allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 308
    with pytest.raises(requests.ConnectionError):
        client.get(f"http://127.0.0.1:{proxy.http_port}/nginx-health", timeout=TIMEOUT)


def test_http_redirects_to_https_keeping_path_and_query(proxy, client):
    response = client.post(
        f"{proxy.http}/api/posts?page=2&q=a%20b", data="x", allow_redirects=False, timeout=TIMEOUT
    )
    assert response.status_code == 308
    assert response.headers["Location"] == f"{proxy.https}/api/posts?page=2&q=a%20b"
    assert_security_headers(response)


def test_redirect_omits_the_default_https_port(tmp_path_factory, certs_dir, acme_root, backend):
    proxy = start_proxy(
        tmp_path_factory, certs_dir, acme_root, backend.server_address[1],
        PROXY_PUBLIC_HTTPS_PORT="443",
    )  # fmt: skip
    try:
        with proxy.session() as client:
            response = client.get(f"{proxy.http}/a?b=1", allow_redirects=False, timeout=TIMEOUT)
        assert response.status_code == 308
        assert response.headers["Location"] == "https://localhost/a?b=1"
    finally:
        proxy.nginx.stop()


def test_acme_challenge_is_served_over_http_not_redirected(proxy, client):
    response = client.get(
        f"{proxy.http}/.well-known/acme-challenge/{ACME_FILE}", allow_redirects=False,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert (response.status_code, response.text) == (200, "token-content\n")
    missing = client.get(
        f"{proxy.http}/.well-known/acme-challenge/nope", allow_redirects=False, timeout=TIMEOUT
    )
    assert missing.status_code == 404


def test_requests_reach_backend_with_forwarding_headers_and_request_id(proxy, client):
    forged = {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "http",
        "X-Request-ID": "forged",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "1",
        "X-Forwarded-Prefix": "/evil",
        "X-Forwarded-Ssl": "off",
        "X-Forwarded-Protocol": "http",
        "Forwarded": "for=6.6.6.6;host=evil.example;proto=http",
    }
    response = client.get(f"{proxy.https}/api/posts?x=1", headers=forged, timeout=TIMEOUT)
    assert response.status_code == 200
    seen = response.json()["headers"]
    # The name nginx served and the public port: the backend's redirects come back here.
    assert seen["host"] == f"localhost:{urlsplit(proxy.https).port}"
    # The client's own claims are replaced, not appended to ...
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == "127.0.0.1" == seen["x-real-ip"]
    # ... and every other forwarding header is dropped.
    for name in ("forwarded", "x-forwarded-host", "x-forwarded-port", "x-forwarded-prefix",
                 "x-forwarded-ssl", "x-forwarded-protocol"):  # fmt: skip
        assert name not in seen, f"{name} reached the backend"
    assert seen["x-request-id"] == response.headers["X-Request-ID"] != "forged"
    assert response.json()["path"] == "/api/posts?x=1"


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/", None, 200),
        ("GET", "/.env", None, 404),
        ("GET", "/close", None, 502),
        ("POST", "/api/posts", b"x" * (128 * 1024 + 1), 413),
    ],
)
def test_security_headers_on_every_response(proxy, client, method, path, body, status):
    response = client.request(method, f"{proxy.https}{path}", data=body, timeout=TIMEOUT)
    assert response.status_code == status
    assert_security_headers(response)
    # nginx owns these headers: the backend's X-Frame-Options: SAMEORIGIN is not passed on.
    assert response.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("/close", None, 502, "bad_gateway"),
        ("/hang", None, 504, "gateway_timeout"),
        ("/api/posts", b"x" * 200_000, 413, "payload_too_large"),
    ],
)
def test_errors_from_nginx_are_json_with_the_request_id(proxy, client, path, body, status, error):
    method = "POST" if body else "GET"
    response = client.request(method, f"{proxy.https}{path}", data=body, timeout=TIMEOUT)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["error"] == error and payload["message"]
    assert payload["request_id"] == response.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("method", "headers", "status", "error"),
    [
        ("POST", {}, 405, "method_not_allowed"),
        ("GET", {"If-Match": '"not-this-file"'}, 412, "precondition_failed"),
    ],
)
def test_static_file_errors_are_json_with_the_request_id(
    proxy, client, method, headers, status, error
):
    # The ACME webroot is the one place nginx serves files itself, with their own checks.
    url = f"{proxy.http}/.well-known/acme-challenge/{ACME_FILE}"
    response = client.request(method, url, headers=headers, allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["error"] == error and payload["message"]
    assert payload["request_id"] == response.headers["X-Request-ID"]


def test_acme_challenge_is_served_whole_whatever_range_is_asked(proxy, client):
    url = f"{proxy.http}/.well-known/acme-challenge/{ACME_FILE}"
    for asked in ("bytes=999999-", "bytes=0-1"):
        response = client.get(url, headers={"Range": asked}, timeout=TIMEOUT)
        assert (response.status_code, response.text) == (200, "token-content\n"), asked


def test_largest_valid_post_passes_and_an_oversize_body_gets_413(proxy, client):
    # 10,200 characters outside the BMP, JSON-escaped as surrogate pairs: the worst valid post.
    largest = json.dumps({"title": "\U0001f600" * 200, "body": "\U0001f600" * 10_000}).encode()
    accepted = client.post(f"{proxy.https}/api/posts", data=largest, timeout=TIMEOUT)
    assert accepted.status_code == 201 and accepted.json()["received"] == len(largest)
    before = len(StubHandler.seen)
    rejected = client.post(f"{proxy.https}/api/posts", data=b"x" * 200_000, timeout=TIMEOUT)
    assert rejected.status_code == 413
    assert len(StubHandler.seen) == before, "an oversize body must not reach the backend"


def test_dotfiles_are_denied_but_well_known_passes(proxy, client):
    before = len(StubHandler.seen)
    for path in ("/.env", "/.git/config", "/static/.htpasswd"):
        assert client.get(f"{proxy.https}{path}", timeout=TIMEOUT).status_code == 404, path
    assert len(StubHandler.seen) == before
    response = client.get(f"{proxy.https}/.well-known/security.txt", timeout=TIMEOUT)
    assert response.status_code == 200


def test_burst_of_writes_gets_429_while_reads_and_other_clients_pass(proxy):
    burst = int(DEFAULTS["PROXY_WRITE_BURST"])
    with proxy.session(source="127.0.0.2") as noisy, proxy.session() as other:
        statuses = [
            noisy.post(f"{proxy.https}/api/posts", data="{}", timeout=TIMEOUT).status_code
            for _ in range(3 * burst)
        ]
        assert statuses[: burst + 1] == [201] * (burst + 1), statuses
        assert 429 in statuses, statuses
        limited = noisy.post(f"{proxy.https}/api/posts", data="{}", timeout=TIMEOUT)
        assert limited.status_code == 429
        assert_security_headers(limited)
        assert limited.json()["error"] == "too_many_requests"
        # Reads of the same client and writes of another client are not affected.
        assert noisy.get(f"{proxy.https}/api/posts", timeout=TIMEOUT).status_code == 200
        assert other.post(f"{proxy.https}/api/posts", data="{}", timeout=TIMEOUT).status_code == 201


def test_health_endpoint_is_exempt_from_rate_limits(proxy):
    count = 2 * (int(DEFAULTS["PROXY_RATE_BURST"]) + int(DEFAULTS["PROXY_RATE"].split("r")[0]))
    with proxy.session(source="127.0.0.3") as health, proxy.session(source="127.0.0.4") as control:
        statuses = {health.get(proxy.health, timeout=TIMEOUT).status_code
                    for _ in range(count)}  # fmt: skip
        assert statuses == {200}
        # Positive control: the same load on an ordinary path trips the per-client limit.
        statuses = [control.get(f"{proxy.https}/", timeout=TIMEOUT).status_code
                    for _ in range(count)]  # fmt: skip
        assert 429 in statuses


def test_unknown_host_is_refused(proxy, client):
    # Plain HTTP: the connection is closed without an answer (444).
    with pytest.raises(requests.ConnectionError):
        client.get(f"{proxy.http}/", headers={"Host": "evil.example"}, timeout=TIMEOUT)
    # HTTPS, unknown Host (whatever the SNI name): 421 Misdirected Request.
    response = client.get(f"{proxy.https}/", headers={"Host": "evil.example"}, timeout=TIMEOUT)
    assert response.status_code == 421
    # Positive control: the same requests with the real name are answered.
    assert client.get(f"{proxy.http}/", allow_redirects=False, timeout=TIMEOUT).status_code == 308
    assert tls_handshake(proxy, "localhost") == "TLSv1.3"


def tls_handshake(proxy: Proxy, server_name: str, version: ssl.TLSVersion | None = None) -> str:
    context = ssl.create_default_context(cafile=proxy.ca)
    context.check_hostname = False
    if version is not None:
        if version < ssl.TLSVersion.TLSv1_2:
            # OpenSSL 3 clients refuse TLS < 1.2 themselves at the default security level: lower
            # it, so that the refusal we observe is the server's.
            context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
    with (
        socket.create_connection(("127.0.0.1", proxy.https_port), timeout=TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname=server_name) as tls,
    ):
        return tls.version()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_accepted(proxy, version):
    assert tls_handshake(proxy, "localhost", version) == version.name.replace("_", ".")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_10_and_11_are_refused(proxy, version):
    with pytest.raises(ssl.SSLError) as refused:
        tls_handshake(proxy, "localhost", version)
    # The ClientHello went out and the server answered with a protocol-version alert.
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value)
    assert re.search("PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL", str(refused.value)), refused.value


def test_http2_is_negotiated(proxy):
    context = ssl.create_default_context(cafile=proxy.ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("127.0.0.1", proxy.https_port), timeout=TIMEOUT) as sock,
        context.wrap_socket(sock, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "h2"


def test_json_responses_are_gzipped(proxy, client):
    response = client.get(
        f"{proxy.https}/big", headers={"Accept-Encoding": "gzip"}, stream=True, timeout=TIMEOUT
    )
    assert response.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.raw.read()))["filler"]


def test_access_log_is_json_with_request_id_and_upstream_fields(proxy, client):
    response = client.get(f"{proxy.https}/api/posts?log=1", timeout=TIMEOUT)
    request_id = response.headers["X-Request-ID"]
    # nginx writes the line in its log phase, after the response went out: wait for it, bounded.
    lines = wait_until(
        lambda: [line for line in proxy.nginx.logs().splitlines() if request_id in line],
        TIMEOUT,
        f"an access log line with {request_id}",
    )
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["request_id"] == request_id and entry["status"] == 200
    assert entry["uri"] == "/api/posts?log=1" and entry["method"] == "GET"
    assert entry["upstream_addr"].startswith("127.0.0.1:") and entry["upstream_status"] == "200"
    assert float(entry["upstream_response_time"]) >= 0 and entry["request_time"] >= 0


def test_gunicorn_keeps_an_idle_connection_longer_than_nginx_does(tmp_path):
    # nginx closes an idle connection to the backend first, so it never sends a request into one
    # that gunicorn is closing at that moment (a 502 for a request no backend saw).
    (upstream,) = [
        block
        for block, _ in walk(config_files()["templates/upstream.conf.template"])
        if block["head"] == ["upstream", "backend"]
    ]
    (nginx_idle,) = directives(upstream, "keepalive_timeout")
    gunicorn_idle = gunicorn_setting("keepalive", service_environment("backend"), tmp_path)
    assert int(gunicorn_idle) > int(nginx_idle[1].removesuffix("s")), (gunicorn_idle, nginx_idle)
