"""scripts/make-certs.sh: development certificates live 90 days and are renewed 30 days before they
expire; a certificate that the development CA did not issue is never touched."""

import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make-certs.sh"


def openssl(*args, cwd=None):
    return subprocess.run(
        ["openssl", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30
    ).stdout


def make_certs(certs_dir: Path) -> str:
    """Run the script on CERTS_DIR as `make certs` does; returns what it printed."""
    env = {**os.environ, "CERTS_DIR": str(certs_dir), "SERVER_NAME": "localhost"}
    result = subprocess.run(
        [SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout


def validity(cert: Path) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) of a PEM certificate."""
    printed = openssl("x509", "-in", str(cert), "-noout", "-startdate", "-enddate")
    dates = dict(line.split("=", 1) for line in printed.splitlines())
    return tuple(
        datetime.strptime(" ".join(dates[name].split()), "%b %d %H:%M:%S %Y %Z")
        for name in ("notBefore", "notAfter")
    )


def lifespan_days(cert: Path) -> int:
    not_before, not_after = validity(cert)
    return (not_after - not_before).days


def issue(certs_dir: Path, days: int, by_dev_ca: bool = True) -> bytes:
    """Replace server.crt/server.key with a certificate for localhost valid DAYS days, signed by the
    development CA (or self-signed: an operator's own); returns the new server.crt."""
    work = certs_dir / "issue"
    work.mkdir()
    (work / "leaf.ext").write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1\n"
    )
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "server.key", cwd=work)  # fmt: skip
    openssl("req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr",
            cwd=work)  # fmt: skip
    if by_dev_ca:
        signer = ["-CA", str(certs_dir / "dev-ca.crt"), "-CAkey", str(certs_dir / "dev-ca.key"),
                  "-set_serial", "0x" + os.urandom(16).hex()]  # fmt: skip
    else:
        signer = ["-signkey", "server.key"]
    openssl("x509", "-req", "-in", "server.csr", *signer, "-days", str(days), "-sha256",
            "-extfile", "leaf.ext", "-out", "server.crt", cwd=work)  # fmt: skip
    for name in ("server.crt", "server.key"):
        (certs_dir / name).write_bytes((work / name).read_bytes())
    for path in work.iterdir():
        path.unlink()
    work.rmdir()
    return (certs_dir / "server.crt").read_bytes()


@pytest.fixture
def certs_dir(tmp_path):
    path = tmp_path / "certs"
    make_certs(path)
    return path


def test_development_certificate_lives_90_days(certs_dir):
    assert lifespan_days(certs_dir / "server.crt") == 90


def test_certificate_expiring_within_30_days_is_reissued_and_says_so(certs_dir):
    short = issue(certs_dir, days=10)
    output = make_certs(certs_dir)
    assert "expires within 30 days" in output, output
    assert (certs_dir / "server.crt").read_bytes() != short
    assert lifespan_days(certs_dir / "server.crt") == 90
    # Still from the same CA that clients already trust.
    openssl("verify", "-CAfile", str(certs_dir / "dev-ca.crt"), str(certs_dir / "server.crt"))


def test_renewal_within_the_second_of_the_last_write_still_changes_the_mtime(certs_dir):
    """nginx 1.27.4+ reloads a certificate file only when its inode or its mtime in whole seconds
    changed (the bind mount keeps the inode): a renewal written within the same second as the
    file's last write must still look new to it, or a reload keeps serving the old one."""
    crt, key = certs_dir / "server.crt", certs_dir / "server.key"
    # Right after a second begins, both files just written: the renewal below ends in that second.
    time.sleep(1 - time.time() % 1)
    issue(certs_dir, days=10)
    written = {path: (path.stat().st_ino, int(path.stat().st_mtime)) for path in (crt, key)}
    output = make_certs(certs_dir)
    assert "expires within 30 days" in output, output
    for path, (inode, mtime) in written.items():
        assert path.stat().st_ino == inode, f"{path.name}: a new inode, unseen by a bind mount"
        assert int(path.stat().st_mtime) != mtime, f"{path.name}: rewritten, same mtime"


@pytest.mark.parametrize("days", [None, 40], ids=["just-made", "40-days-left"])
def test_certificate_with_more_than_30_days_left_is_kept(certs_dir, days):
    """Control for the renewal above: a fresh certificate is not re-issued on every run."""
    before = (certs_dir / "server.crt").read_bytes() if days is None else issue(certs_dir, days)
    output = make_certs(certs_dir)
    assert f"kept     {certs_dir / 'server.crt'}" in output, output
    assert (certs_dir / "server.crt").read_bytes() == before


def test_certificate_valid_longer_than_90_days_is_reissued(certs_dir):
    """A 397-day certificate of an older make-certs.sh is replaced, not kept for a year."""
    issue(certs_dir, days=397)
    output = make_certs(certs_dir)
    assert "valid for longer than 90 days" in output, output
    assert lifespan_days(certs_dir / "server.crt") == 90


@pytest.mark.parametrize("days", [10, 397])
def test_certificate_not_issued_by_the_dev_ca_is_never_touched(certs_dir, days):
    own = issue(certs_dir, days=days, by_dev_ca=False)
    key = (certs_dir / "server.key").read_bytes()
    output = make_certs(certs_dir)
    assert "not issued by the development CA" in output, output
    assert (certs_dir / "server.crt").read_bytes() == own
    assert (certs_dir / "server.key").read_bytes() == key
