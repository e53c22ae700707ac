"""Static tier: the compose tier's runner (tests/stack/compose.py, on testcontainers' DockerCompose)
gives compose this session's settings from its env file, whatever the test process's environment
says (make exports SECRETS_DIR, CERTS_DIR and BACKUP_DIR)."""

import pytest

from tests.stack.compose import ComposeStack


@pytest.fixture
def stack(tmp_path, secrets_dir, monkeypatch):
    stack = ComposeStack(
        "hsrunnertest", 18080, 18443, tmp_path / "certs", secrets_dir, tmp_path / "acme", tmp_path
    )
    for name in stack.env:
        monkeypatch.delenv(name, raising=False)
    return stack


def test_compose_renders_the_project_name_ports_and_paths_of_the_stack(stack, secrets_dir):
    config = stack.config()
    assert config["name"] == "hsrunnertest"
    published = {(p["host_ip"], p["published"]) for p in config["services"]["proxy"]["ports"]}
    assert published == {("127.0.0.1", "18080"), ("127.0.0.1", "18443")}
    assert config["secrets"]["db_app_password"]["file"] == f"{secrets_dir}/db_app_password"
    # Taken as written (compose renders a literal dollar as $$): the variables are for the copy
    # command's shell, in the container.
    command = config["services"]["backup"]["environment"]["BACKUP_COPY_COMMAND"]
    assert command == 'cp "$$BACKUP_FILE" "$$BACKUP_CHECKSUM_FILE" /backup-copy/'


def test_a_stack_setting_in_the_environment_is_refused_before_anything_runs(stack, monkeypatch):
    monkeypatch.setenv("SECRETS_DIR", "/elsewhere")
    with pytest.raises(RuntimeError, match="^unset SECRETS_DIR: "):
        stack.up()
    # Why: compose would take the environment's value over the env file's.
    assert stack.config()["secrets"]["db_app_password"]["file"] == "/elsewhere/db_app_password"
