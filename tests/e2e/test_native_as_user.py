"""The native runner on a developer's laptop: an unprivileged user whose PATH lacks /usr/sbin.

The servers are found where Debian installs them, and a missing one is named with its package.
Where the tests run as root, the whole stack is also brought up as `nobody` (runuser), from a copy
of the files the runner reads, with certificates and secrets made by the scripts for that user, as
a developer has their own checkout.
"""

import os
import pwd
import select
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from native import mariadb
from native.mariadb import MariaDB
from native.stack import NativeStack, http_status
from tests.stack import free_port

REPO = Path(__file__).resolve().parents[2]
USER = "nobody"
# What the runner reads while it runs: its own code, the configuration (compose.yaml's database
# client settings too), the generator scripts.
RUNTIME_FILES = (
    "backend", "proxy", "db", "scripts", "compose.yaml", "native"
)  # fmt: skip
# The PATH of a non-root login on Debian: no sbin.
USER_PATH = "/usr/bin:/bin"

# Run as the user: start the stack, print its URL, keep it up until stdin closes, stop it.
CHILD = """
import sys
from native.stack import NativeStack

run_dir, certs_dir, secrets_dir, http_port, https_port = sys.argv[1:]
stack = NativeStack(run_dir, int(http_port), int(https_port), certs_dir, secrets_dir)
stack.up()
print(stack.base_url, flush=True)
sys.stdin.read()
stack.down()
"""


def test_missing_mariadb_program_is_named_with_its_debian_package(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(mariadb, "PROGRAM_DIRS", (str(empty),))
    with pytest.raises(FileNotFoundError) as raised:
        MariaDB(tmp_path / "run", tmp_path / "secrets").start()
    assert str(raised.value) == (
        f"mariadb-install-db not found on PATH or in {empty}: install the Debian package "
        "mariadb-server (make deps)"
    )


def test_mariadb_server_is_found_outside_a_non_root_path(monkeypatch):
    monkeypatch.setenv("PATH", USER_PATH)
    assert mariadb.find_program("mariadbd") == "/usr/sbin/mariadbd"
    # Control: what PATH has is taken from PATH.
    assert mariadb.find_program("mariadb") == "/usr/bin/mariadb"


def as_user(*command):
    """The command line that runs COMMAND as USER, keeping the environment given to subprocess."""
    runuser = shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin")
    return [runuser, "--preserve-environment", "-u", USER, "--", *command]


def user_env(home, **extra):
    return {
        "PATH": USER_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **extra,
    }


def run_as_user(home, *command, cwd=None, **extra):
    return subprocess.run(
        as_user(*command),
        cwd=cwd,
        env=user_env(home, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def chown_tree(path, uid, gid):
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def python_for_user(home):
    """A python USER can run that has this venv's packages: the venv's own, or, when that lives
    where USER cannot go (a venv of a python under /root), a venv of the system's python of the
    same version that reads this venv's site-packages."""
    probe = ("-c", "import flask, gunicorn, pymysql, sqlalchemy")
    if run_as_user(home, sys.executable, *probe).returncode == 0:
        return sys.executable
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(version, path=USER_PATH)
    if system_python is None:
        pytest.skip(f"{USER} can run neither {sys.executable} nor a system {version}")
    venv = home / "venv"
    created = run_as_user(home, system_python, "-m", "venv", "--without-pip", str(venv))
    assert created.returncode == 0, created.stderr
    site = venv / "lib" / version / "site-packages"
    (site / "checkout-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check = run_as_user(home, str(venv / "bin" / "python"), *probe)
    if check.returncode != 0:
        pytest.skip(f"{USER} cannot read this venv's packages: {check.stderr.strip()[-300:]}")
    return str(venv / "bin" / "python")


@pytest.fixture
def user_home():
    """A directory owned by USER, outside the root-only pytest temp dirs; removed afterwards."""
    if os.geteuid() != 0:
        pytest.skip("brings the stack up as another user: needs the tests to run as root")
    try:
        account = pwd.getpwnam(USER)
    except KeyError:
        pytest.skip(f"no user {USER!r} on this machine")
    home = Path(tempfile.mkdtemp(prefix="hs-native-user-", dir="/tmp"))
    home.chmod(0o755)
    for name in RUNTIME_FILES:
        source, target = REPO / name, home / "checkout" / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    chown_tree(home, account.pw_uid, account.pw_gid)
    try:
        yield home, account.pw_uid
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_native_stack_comes_up_for_an_unprivileged_user(user_home):
    home, uid = user_home
    checkout = home / "checkout"
    certs, secrets, run_dir = home / "certs", home / "secrets", home / "run"
    for script, variable, path in (
        ("make-certs.sh", "CERTS_DIR", certs),
        ("make-secrets.sh", "SECRETS_DIR", secrets),
    ):
        made = run_as_user(home, f"scripts/{script}", cwd=checkout, **{variable: str(path)})
        assert made.returncode == 0, made.stderr
    python = python_for_user(home)
    http_port, https_port = free_port(), free_port()
    args = [str(run_dir), str(certs), str(secrets), str(http_port), str(https_port)]
    stderr_path = home / "child.stderr"
    with open(stderr_path, "w") as stderr:
        child = subprocess.Popen(
            as_user(python, "-c", CHILD, *args),
            cwd=checkout,
            env=user_env(home),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        # The runner's own waits are bounded (db 90 s, backend 30 s, proxy 15 s, readyz 60 s).
        readable, _, _ = select.select([child.stdout], [], [], 240)
        base_url = child.stdout.readline().strip() if readable else ""
        assert base_url, f"the stack did not come up as {USER}:\n{stderr_path.read_text()[-4000:]}"

        assert http_status(f"{base_url}/readyz", cafile=str(certs / "dev-ca.crt")) == 200
        owners = {}
        for pid_file in (run_dir / "pids").glob("*.pid"):
            status = Path(f"/proc/{int(pid_file.read_text())}/status").read_text()
            owners[pid_file.stem] = int(status.split("\nUid:")[1].split()[0])
        assert owners == {"db": uid, "backend": uid, "proxy": uid}

        child.stdin.close()
        assert child.wait(timeout=90) == 0, stderr_path.read_text()[-4000:]
        assert not run_dir.exists()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        # Whatever the user's runner left running (it records every pid), stopped as root.
        NativeStack(run_dir, http_port, https_port, certs, secrets).down()
