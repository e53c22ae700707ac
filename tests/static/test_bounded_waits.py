"""The request path's waits nest (docs/performance.md, "Bounded waits"): MariaDB stops a statement
first, then the app's database client gives up, then gunicorn, then nginx. Were one outer wait
shorter than an inner one, the outer would answer (a 504, a killed worker) while the inner work
went on, and a write answered 5xx could still be committed afterwards."""

import re
from pathlib import Path

from app.config import Config
from app.db import request_read_timeout

REPO = Path(__file__).resolve().parents[2]


def seconds(pattern, path):
    match = re.search(pattern, (REPO / path).read_text(), re.MULTILINE)
    assert match, f"{pattern!r} not found in {path}"
    return float(match.group(1))


def test_each_wait_on_the_request_path_fits_inside_the_one_around_it(tmp_path):
    password = tmp_path / "password"
    password.write_text("unused")
    # The shipped defaults: compose and the native runner set none of these timeouts.
    config = Config.from_env({"DB_PASSWORD_FILE": str(password)})
    statement = config.statement_timeout
    database_client = request_read_timeout(config)
    gunicorn = seconds(
        r'^timeout = int\(env\("GUNICORN_TIMEOUT", "(\d+)"\)\)', "backend/gunicorn.conf.py"
    )
    nginx = seconds(r"^proxy_read_timeout (\d+)s;", "proxy/snippets/proxy.conf")
    assert statement < database_client <= gunicorn <= nginx, (
        statement,
        database_client,
        gunicorn,
        nginx,
    )
    # The promise to clients: a database that does not answer costs a request under 3 s.
    assert database_client < 3
