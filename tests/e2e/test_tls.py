"""TLS: 1.2 and 1.3 only, a certificate from the development CA that names the host, and
Mozilla's "intermediate" configuration as sslyze checks it."""

import socket
import ssl
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

# ssl.TLSVersion.TLSv1 and TLSv1_1 are deprecated names: using them is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
OLD_VERSIONS = ["TLSv1", "TLSv1_1"]
CURRENT_VERSIONS = ["TLSv1_2", "TLSv1_3"]


def client_context(version, cafile):
    """A client that offers exactly VERSION and trusts only CAFILE (no system CAs)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile)
    # OpenSSL 3 refuses to even offer TLS 1.0/1.1 at security level 1+: lower it on the client,
    # so that any refusal measured below is the server's.
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = getattr(ssl.TLSVersion, version)
    return context


def handshake(context, host, port, source_address, server_hostname=None):
    """Connect and complete a handshake; returns (negotiated version, peer certificate)."""
    with (
        socket.create_connection(
            (host, port), timeout=5, source_address=(source_address, 0)
        ) as raw,
        context.wrap_socket(raw, server_hostname=server_hostname or host) as tls,
    ):
        return tls.version(), tls.getpeercert()


def target(stack):
    url = urlsplit(stack.base_url)
    return url.hostname, url.port


@pytest.mark.parametrize("version", CURRENT_VERSIONS)
def test_tls_1_2_and_1_3_are_accepted(stack, version):
    host, port = target(stack)
    negotiated, _ = handshake(
        client_context(version, stack.ca_bundle), host, port, stack.client_address
    )
    assert negotiated == version.replace("_", ".")


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_tls_1_0_and_1_1_are_refused_by_the_server(stack, version):
    host, port = target(stack)
    with pytest.raises(ssl.SSLError) as refused:
        handshake(client_context(version, stack.ca_bundle), host, port, stack.client_address)
    # The server's "protocol version" alert: the client did offer VERSION and nginx said no. A
    # client-side refusal would read NO_PROTOCOLS_AVAILABLE / UNSUPPORTED_PROTOCOL instead.
    assert refused.value.reason == "TLSV1_ALERT_PROTOCOL_VERSION", refused.value


@pytest.fixture(scope="module")
def old_tls_server(tmp_path_factory):
    """A local TLS server that does accept TLS 1.0 and 1.1 (positive control for the probe)."""
    path = tmp_path_factory.mktemp("old-tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(path / "key.pem"), "-out", str(path / "cert.pem")],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(path / "cert.pem", path / "key.pem")
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], str(path / "cert.pem")
    listener.close()


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_old_tls_probe_does_offer_the_old_versions(old_tls_server, version):
    """Control: the probe above negotiates TLS 1.0/1.1 with a server that allows them."""
    port, cafile = old_tls_server
    negotiated, _ = handshake(client_context(version, cafile), "127.0.0.1", port, "127.0.0.1",
                              server_hostname="localhost")  # fmt: skip
    assert negotiated == {"TLSv1": "TLSv1", "TLSv1_1": "TLSv1.1"}[version]


def test_certificate_chains_to_the_dev_ca_and_names_the_host(stack):
    host, port = target(stack)
    context = client_context("TLSv1_3", stack.ca_bundle)  # check_hostname is on by default
    _, cert = handshake(context, host, port, stack.client_address)
    names = {value for kind, value in cert["subjectAltName"]}
    assert {"localhost", "127.0.0.1"} <= names, names


def test_certificate_is_not_trusted_without_the_dev_ca(stack):
    """Control for the test above: the chain really ends at the dev CA, not a public root."""
    host, port = target(stack)
    context = ssl.create_default_context()  # the system's public roots only
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake(context, host, port, stack.client_address)


def sslyze_intermediate(host, port, cafile):
    """sslyze's check against Mozilla's "intermediate" configuration; returns its report.

    Trusts CAFILE for the certificate path (the dev CA is in no public trust store) and dials
    127.0.0.1 whatever HOST resolves to. Exits 0 also when it could not connect: read the report.
    """
    result = subprocess.run(
        [sys.executable, "-m", "sslyze", "--mozilla_config=intermediate",
         f"--certinfo_ca_file={cafile}", f"{host}:{port}{{127.0.0.1}}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def test_tls_complies_with_mozilla_intermediate(stack):
    host, port = target(stack)
    report = sslyze_intermediate(host, port, stack.ca_bundle)
    assert f"{host}:{port}: OK - Compliant." in report, report[-3000:]


def test_sslyze_reports_a_server_that_breaks_mozilla_intermediate(old_tls_server):
    """Control for the test above: the check does fail a server that accepts TLS 1.0 and 1.1."""
    port, cafile = old_tls_server
    report = sslyze_intermediate("localhost", port, cafile)
    assert f"localhost:{port}: FAILED - Not compliant." in report, report[-3000:]
    assert "tls_versions: TLS versions" in report, report[-3000:]
