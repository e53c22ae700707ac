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
    log_level: str
    seed_sample_posts: bool

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
            log_level=log_level,
            seed_sample_posts=get("SEED_SAMPLE_POSTS") == "1",
        )

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


def read_secret(env, name):
    path = env.get(name)
    if not path:
        raise ConfigError(f"config: environment variable {name} is required but not set")
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().rstrip("\n")  # like the init script's $(<file)
    except OSError as exc:
        raise ConfigError(f"config: {name}={path} cannot be read: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"config: {name}={path} is empty")
    return value
