"""Configuration comes from the environment; start-up fails with one clear line; no secret leaks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import Config, ConfigError

from .conftest import BACKEND, run_migrate


def test_defaults_apply_when_only_the_password_file_is_given(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("s3cret-value\n")
    config = Config.from_env({"DB_PASSWORD_FILE": str(secret)})
    assert (config.db_host, config.db_port, config.db_user) == ("db", 3306, "app")
    assert config.db_password == secret.read_text().rstrip("\n")
    assert config.pool_recycle == 300


def test_missing_password_file_variable_is_named_in_one_line():
    with pytest.raises(ConfigError) as error:
        Config.from_env({})
    assert "DB_PASSWORD_FILE" in str(error.value)
    assert "\n" not in str(error.value)


def test_unreadable_password_file_is_named(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"DB_PASSWORD_FILE={missing} cannot be read"):
        Config.from_env({"DB_PASSWORD_FILE": str(missing)})


def test_empty_password_file_is_refused(tmp_path):
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        Config.from_env({"DB_PASSWORD_FILE": str(tmp_path / "empty")})


def test_unreadable_database_certificate_is_named(tmp_path):
    (tmp_path / "pw").write_text("pw")
    missing = tmp_path / "db.crt"
    env = {"DB_PASSWORD_FILE": str(tmp_path / "pw"), "DB_TLS_CA_FILE": str(missing)}
    with pytest.raises(ConfigError, match=f"DB_TLS_CA_FILE={missing} cannot be read"):
        Config.from_env(env)


def test_non_integer_setting_is_named(tmp_path):
    (tmp_path / "pw").write_text("x")
    with pytest.raises(ConfigError, match="DB_POOL_SIZE='many' is not an integer"):
        Config.from_env({"DB_PASSWORD_FILE": str(tmp_path / "pw"), "DB_POOL_SIZE": "many"})


def test_secret_is_not_in_repr_or_safe_url(tmp_path):
    (tmp_path / "pw").write_text("Sup3rSecretValue")
    config = Config.from_env({"DB_PASSWORD_FILE": str(tmp_path / "pw")})
    assert "Sup3rSecretValue" not in repr(config)
    assert "Sup3rSecretValue" not in str(config)
    assert "Sup3rSecretValue" not in config.safe_url


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "GUNICORN_"))}
    return {**env, **extra}


def test_gunicorn_refuses_to_start_with_one_line_naming_the_missing_variable():
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"],
        cwd=BACKEND,
        env=clean_env(GUNICORN_BIND="127.0.0.1:0"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "DB_PASSWORD_FILE" in output
    assert "Traceback" not in output


def test_migrate_refuses_to_start_with_one_line_naming_the_unreadable_file():
    missing = "/nonexistent/db_migrator_password"
    result = subprocess.run(
        [sys.executable, "-m", "app.migrate"],
        cwd=BACKEND,
        env=clean_env(DB_PASSWORD_FILE=missing),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    output = (result.stdout + result.stderr).strip()
    assert len(output.splitlines()) == 1
    assert missing in output
    assert "Traceback" not in output


def test_no_log_line_of_migrate_or_gunicorn_shows_a_password(migrator_env, app_env, gunicorn):
    result = run_migrate(migrator_env)
    assert result.returncode == 0
    for env, output in ((migrator_env, result.stdout + result.stderr), (app_env, gunicorn.log())):
        password = Path(env["DB_PASSWORD_FILE"]).read_text()
        assert password not in output
