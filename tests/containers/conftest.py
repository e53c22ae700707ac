"""What several container checks share."""

import subprocess

import pytest


@pytest.fixture(scope="session")
def impostor(tmp_path_factory):
    """A certificate like the database's (make certs: db.crt), for the same name, by someone else:
    what a man in the middle on dbnet would present."""
    directory = tmp_path_factory.mktemp("impostor")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=db",
         "-addext", "subjectAltName=DNS:db"],
        cwd=directory, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return (directory / "cert.pem").read_text()
