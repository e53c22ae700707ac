"""Configuration: one frozen object built once from the environment.

Every secret comes from a *_FILE variable; repr() never shows it. A missing variable or an
unreadable file raises ConfigError with one line that names it.
"""

import os
from dataclasses import dataclass, field
from urllib.parse import quote_plus


class ConfigError(Exception):
    """The environment does not describe a usable configuration (message is one line)."""


# Defaults live here once; tests and gunicorn.conf.py read them from this module.
DEFAULTS = {
    "DB_HOST": "db",
    "DB_PORT": "3306",
    "DB_NAME": "app",
    "DB_USER": "app",
    # Per worker process: 2 workers x (4 + 2) x 2 replicas = 24 < max_connections 60.
    "DB_POOL_SIZE": "4",
    "DB_MAX_OVERFLOW": "2",
    "DB_POOL_TIMEOUT": "5",
    # Below MariaDB's wait_timeout (600 s in db/conf.d/server.cnf).
    "DB_POOL_RECYCLE": "300",
    "DB_CONNECT_TIMEOUT": "5",
    # Longest any statement of the app may run (MariaDB max_statement_time): its slowest query
    # takes milliseconds, and a worker held longer is a worker lost to every other client.
    "DB_STATEMENT_TIMEOUT": "2",
    "LOG_LEVEL": "INFO",
    "SEED_SAMPLE_POSTS": "0",
}


@dataclass(frozen=True)
class Config:
    db_host: str
    db_port: int
    db_name: str
    db_user: str
    db_password: str = field(repr=False)
    pool_size: int
    max_overflow: int
    pool_timeout: float
    pool_recycle: int
    connect_timeout: int
    statement_timeout: int
    log_level: str
    seed_sample_posts: bool
    # Bearer tokens that may write through the API; the backend refuses to start without one.
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    # The database server's certificate (DB_TLS_CA_FILE): TLS is then required and the server
    # verified, name included. Unset where the database is on this host (natively).
    db_tls_ca_file: str | None = None

    @classmethod
    def from_env(cls, environ=None):
        env = os.environ if environ is None else environ

        def get(name):
            value = env.get(name, DEFAULTS.get(name))
            if value is None or value == "":
                raise ConfigError(f"config: environment variable {name} is required but not set")
            return value

        def get_int(name, minimum=0):
            raw = get(name)
            try:
                value = int(raw)
            except ValueError:
                raise ConfigError(f"config: {name}={raw!r} is not an integer") from None
            if value < minimum:
                raise ConfigError(f"config: {name}={value} must be at least {minimum}")
            return value

        log_level = get("LOG_LEVEL").upper()
        if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"config: LOG_LEVEL={log_level!r} is not a logging level")

        return cls(
            db_host=get("DB_HOST"),
            db_port=get_int("DB_PORT", 1),
            db_name=get("DB_NAME"),
            db_user=get("DB_USER"),
            db_password=read_secret(env, "DB_PASSWORD_FILE"),
            pool_size=get_int("DB_POOL_SIZE", 1),
            max_overflow=get_int("DB_MAX_OVERFLOW", 0),
            pool_timeout=get_int("DB_POOL_TIMEOUT", 1),
            pool_recycle=get_int("DB_POOL_RECYCLE", 1),
            connect_timeout=get_int("DB_CONNECT_TIMEOUT", 1),
            statement_timeout=get_int("DB_STATEMENT_TIMEOUT", 1),
            log_level=log_level,
            seed_sample_posts=get("SEED_SAMPLE_POSTS") == "1",
            api_tokens=read_tokens(env, "API_TOKENS_FILE") if env.get("API_TOKENS_FILE") else (),
            db_tls_ca_file=_readable(env, "DB_TLS_CA_FILE") if env.get("DB_TLS_CA_FILE") else None,
        )

    def require_api_tokens(self):
        """The backend serves writes only to token holders: no token file, no start."""
        if not self.api_tokens:
            raise ConfigError(
                "config: environment variable API_TOKENS_FILE is required by the backend "
                "(a file of write tokens, one per line: make secrets creates it)"
            )
        return self

    @property
    def database_url(self):
        """SQLAlchemy URL with the password; never log it (use safe_url)."""
        return (
            f"mysql+pymysql://{quote_plus(self.db_user)}:{quote_plus(self.db_password)}"
            f"@{self.db_host}:{self.db_port}/{self.db_name}?charset=utf8mb4"
        )

    @property
    def safe_url(self):
        return f"mysql+pymysql://{self.db_user}:***@{self.db_host}:{self.db_port}/{self.db_name}"


def _read_file(env, name):
    path = env.get(name)
    if not path:
        raise ConfigError(f"config: environment variable {name} is required but not set")
    try:
        with open(path, encoding="utf-8") as f:
            return path, f.read()
    except OSError as exc:
        raise ConfigError(f"config: {name}={path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config: {name}={path} is not UTF-8 text") from None


def _readable(env, name):
    """The path in NAME, once it is known to be a readable text file."""
    return _read_file(env, name)[0]


def read_secret(env, name):
    path, text = _read_file(env, name)
    value = text.rstrip("\n")  # like the init script's $(<file)
    if not value:
        raise ConfigError(f"config: {name}={path} is empty")
    return value


# A token guards every write: at least 128 bits of randomness, spelled in 32+ characters.
TOKEN_MIN_LENGTH = 32


def read_tokens(env, name):
    """Tokens of a token file: one per line; blank lines and # comments are skipped."""
    path, text = _read_file(env, name)
    tokens = tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not tokens:
        raise ConfigError(f"config: {name}={path} holds no token")
    for number, token in enumerate(tokens, 1):
        printable = token.isascii() and token.isprintable() and " " not in token
        if len(token) < TOKEN_MIN_LENGTH or not printable:
            raise ConfigError(
                f"config: {name}={path}: token {number} must be at least {TOKEN_MIN_LENGTH} "
                "printable ASCII characters without spaces"
            )
    return tokens
