"""MariaDB as a plain process on loopback: see the MariaDB class."""

import functools
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from native.compose import on_this_host, service_environment
from native.processes import free_port, wait_until

REPO = Path(__file__).resolve().parents[1]
CONF_D = REPO / "db" / "conf.d"
INITDB_D = REPO / "db" / "initdb.d"
# Where Debian installs the MariaDB programs, searched after PATH: the server lives in /usr/sbin,
# which a non-root user's PATH lacks.
PROGRAM_DIRS = ("/usr/sbin", "/usr/bin", "/sbin")
# The Debian package of each program the runner starts, named when one is missing.
DEBIAN_PACKAGE = {
    "mariadbd": "mariadb-server",
    "mariadb-install-db": "mariadb-server",
    "mariadb": "mariadb-client",
    "mariadb-binlog": "mariadb-client",
}


def find_program(name):
    """Path of a MariaDB program (PATH, then PROGRAM_DIRS); raises naming its Debian package."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(PROGRAM_DIRS))
    if found is None:
        raise FileNotFoundError(
            f"{name} not found on PATH or in {', '.join(PROGRAM_DIRS)}: install the Debian "
            f"package {DEBIAN_PACKAGE[name]} (make deps)"
        )
    return found


class MariaDB:
    """MariaDB as a plain process, initialised the way the official image's entrypoint does.

        db = MariaDB(run_dir, secrets_dir)  # secrets_dir: made by scripts/make-secrets.sh
        db.start(timeout=60)  # first start: install, root password, database, initdb.d
        db.host, db.port      # 127.0.0.1 and a free port; db.socket is <run_dir>/mariadb.sock
        db.stop()             # clean shutdown; the datadir is kept, start() brings it back
        db.is_running, db.wait_ready(timeout), db.log_tail(), db.root_sql("SELECT 1")

    Debian's mariadb-install-db and mariadbd, with <repo>/db/conf.d included, and
    <repo>/db/initdb.d run with the variables compose gives the db service (init_env) plus
    MARIADB_ROOT_PASSWORD and MYSQL_UNIX_PORT. Like the entrypoint, root exists only as
    root@localhost (socket). Runs as root or any user; standard library only. Errors carry the
    tail of db.log_file.
    """

    def __init__(self, run_dir, secrets_dir, database="app", port=None):
        self.run_dir = Path(run_dir).resolve()
        self.secrets_dir = Path(secrets_dir).resolve()
        self.database = database
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.datadir = self.run_dir / "data"
        self.socket = str(self.run_dir / "mariadb.sock")
        self.pid_file = self.run_dir / "mariadb.pid"
        self.log_file = self.run_dir / "mariadb.log"
        self.cnf = self.run_dir / "my.cnf"
        self._proc = None

    # The compose db service's environment, for the init scripts.
    @functools.cached_property
    def init_env(self):
        return {
            **on_this_host(service_environment("db"), self.secrets_dir),
            "MARIADB_DATABASE": self.database,
        }

    @property
    def is_running(self):
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout=60):
        """Start the server (initialising an empty datadir first) and wait until it answers."""
        if self.is_running:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._write_cnf()
        fresh = not (self.datadir / "mysql").is_dir()
        if fresh:
            self._run(
                [
                    find_program("mariadb-install-db"),
                    f"--defaults-file={self.cnf}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
                "mariadb-install-db",
            )
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(
                [find_program("mariadbd"), f"--defaults-file={self.cnf}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.wait_ready(timeout)
        if fresh:
            self._initialise()

    def stop(self, timeout=30):
        """Shut the server down cleanly (SIGTERM; SIGKILL after timeout). Keeps the datadir."""
        if not self.is_running:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        self._proc = None

    def kill(self):
        """SIGKILL the server, as a crash would: no shutdown; InnoDB recovers at the next start."""
        if not self.is_running:
            return
        self._proc.kill()
        self._proc.wait(10)
        self._proc = None

    def wait_ready(self, timeout=30):
        """Wait until the server sends its handshake on the TCP port, or raise with the log."""

        def greets():
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise RuntimeError(f"mariadbd is not running (exit {code})\n{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    # The server speaks first: a greeting means it accepts logins.
                    return bool(s.recv(1))
            except OSError:
                return False

        what = f"mariadbd to accept connections on {self.host}:{self.port}"
        wait_until(greets, timeout, what, interval=0.2, detail=self.log_tail)

    def binlog_text(self):
        """Every binary log of the server, rows decoded (mariadb-binlog --verbose)."""
        # The index lists them: from 11.4 each log has a GTID index (.idx) beside it too.
        logs = (self.datadir / "mariadb-bin.index").read_text().split()
        return subprocess.run(
            [find_program("mariadb-binlog"), "--verbose", *logs],
            cwd=self.datadir,
            capture_output=True, text=True, errors="replace", check=True, timeout=120,
        ).stdout  # fmt: skip

    def log_tail(self, lines=30):
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_file})"
        return f"--- last lines of {self.log_file} ---\n" + "\n".join(text.splitlines()[-lines:])

    def root_sql(self, sql):
        """Run SQL as root through the socket (the way the entrypoint does); returns stdout."""
        root_cnf = self.run_dir / "root.cnf"
        if "password" in root_cnf.read_text():
            # Initialised: root's password is the secret file's, which a rotation replaces.
            root_password = (
                Path(self.init_env["MARIADB_ROOT_PASSWORD_FILE"]).read_text().rstrip("\n")
            )
            root_cnf.write_text(f'[client]\nsocket = {self.socket}\npassword = "{root_password}"\n')
        return self._run(
            [
                find_program("mariadb"),
                f"--defaults-extra-file={self.run_dir / 'root.cnf'}",
                "--protocol=socket",
                "-uroot",
                "--batch",
                "--skip-column-names",
            ],
            "root SQL",
            input=sql,
        )

    def _write_cnf(self):
        user = "user = root\n" if os.geteuid() == 0 else ""
        self.cnf.write_text(
            "[mariadbd]\n"
            f"{user}"
            f"datadir = {self.datadir}\n"
            f"socket = {self.socket}\n"
            f"pid-file = {self.pid_file}\n"
            f"port = {self.port}\n"
            "bind-address = 127.0.0.1\n"
            f"!includedir {CONF_D}\n"
        )
        # Clients read $MYSQL_HOME/my.cnf after /etc/mysql/my.cnf, so this socket wins over the
        # system one (MYSQL_UNIX_PORT alone does not: option files override it).
        client_home = self.run_dir / "client"
        client_home.mkdir(exist_ok=True)
        (client_home / "my.cnf").write_text(f"[client]\nsocket = {self.socket}\n")
        root_cnf = self.run_dir / "root.cnf"
        if not root_cnf.exists():
            root_cnf.write_text(f"[client]\nsocket = {self.socket}\n")
            root_cnf.chmod(0o600)

    def _client_env(self, extra=None):
        env = dict(os.environ, MYSQL_UNIX_PORT=self.socket, MYSQL_HOME=str(self.run_dir / "client"))
        env.update(extra or {})
        return env

    def _run(self, cmd, what, input=None, env=None, timeout=120):
        result = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=env or self._client_env(),
            timeout=timeout,
        )
        with open(self.log_file, "a") as log:
            log.write(f"[{what}] {result.stdout}{result.stderr}\n")
        if result.returncode != 0:
            raise RuntimeError(
                f"{what} failed (exit {result.returncode}): {result.stderr.strip()}\n"
                f"{self.log_tail()}"
            )
        return result.stdout

    def _initialise(self):
        """What the entrypoint does on an empty datadir: root password, database, initdb.d."""
        env = self.init_env
        root_password = Path(env["MARIADB_ROOT_PASSWORD_FILE"]).read_text().rstrip("\n")
        quoted = root_password.replace("\\", "\\\\").replace("'", "\\'")
        self.root_sql(
            "SET @@SESSION.SQL_LOG_BIN=0;\n"
            # Like the entrypoint: root only through the socket, no password-less TCP roots.
            "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';\n"
            "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname, '\\'');\n"
            f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{quoted}';\n"
            f"CREATE DATABASE IF NOT EXISTS `{self.database}`;\n"
        )
        root_cnf = self.run_dir / "root.cnf"
        root_cnf.write_text(f'[client]\nsocket = {self.socket}\npassword = "{root_password}"\n')
        init_env = self._client_env({**env, "MARIADB_ROOT_PASSWORD": root_password})
        for script in sorted(INITDB_D.iterdir()):
            if script.suffix == ".sh":
                # The entrypoint runs executable scripts and sources the others.
                cmd = [str(script)] if os.access(script, os.X_OK) else ["bash", str(script)]
                self._run(cmd, script.name, env=init_env)
            elif script.suffix == ".sql":
                self.root_sql(script.read_text())
