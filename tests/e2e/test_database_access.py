"""Who may log in to the database from the network the backend is on."""


def test_root_cannot_log_in_over_tcp(stack):
    # Positive control: from the same place, the same probe logs the app account in.
    assert stack.db_login("app", (stack.secrets_dir / "db_app_password").read_text()) is True
    # The right password: only the account's host part (root@localhost, socket only) refuses it.
    assert stack.db_login("root", (stack.secrets_dir / "db_root_password").read_text()) is False
