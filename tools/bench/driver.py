"""`make bench BENCH_C_DRIVER=1`: would a C driver change the read path's picture?

The stack's driver is PyMySQL (pure Python), and the profile puts about half of the workers'
samples in it, most where a thread gives up the GIL around a socket call. mysqlclient, a C driver,
holds the GIL for none of a query's exchange with the server. This measures the list page's query
alone, as the backend runs it (backend/app/posts.py through SQLAlchemy's pool, in gunicorn's shape:
GUNICORN_WORKERS processes of GUNICORN_THREADS threads), with each driver in turn, against the
bench's MariaDB. The stack itself keeps PyMySQL: this is a measurement, not an option of the app.
"""

from __future__ import annotations

import math
import multiprocessing
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from native.stack import BACKEND

# gunicorn's defaults (backend/gunicorn.conf.py); the bench's backend runs those too.
PROCESSES, THREADS = 2, 4
DRIVERS = {"PyMySQL": "mysql+pymysql", "mysqlclient (C)": "mysql+mysqldb"}
INSTALL = (
    "BENCH_C_DRIVER=1 needs mysqlclient: apt-get install libmariadb-dev pkg-config gcc, then "
    "pip install -r tools/bench/requirements-c-driver.txt"
)


def missing() -> str | None:
    """Why the comparison cannot run here, or None."""
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        return INSTALL
    return None


def _queries(dialect: str, env: dict[str, str], seconds: float) -> int:
    """One process: THREADS threads run the list query until SECONDS have passed; how many ran."""
    sys.path.insert(0, str(BACKEND))
    from sqlalchemy import create_engine

    from app.config import Config
    from app.db import connect_args, request_read_timeout
    from app.posts import list_posts_json

    config = Config.from_env(env)
    if config.db_tls_ca_file:
        raise RuntimeError("the bench's database is on loopback, without TLS")
    args = connect_args(config, request_read_timeout(config), config.statement_timeout)
    if dialect == DRIVERS["mysqlclient (C)"]:
        # mysqlclient takes whole seconds.
        args |= {name: math.ceil(value) for name, value in args.items() if name.endswith("timeout")}
    # As app.db.make_engine: no transaction, no ROLLBACK on return, a connection per thread.
    engine = create_engine(
        config.database_url.replace("mysql+pymysql", dialect),
        isolation_level="AUTOCOMMIT",
        skip_autocommit_rollback=True,
        pool_size=THREADS,
        connect_args=args,
    )
    done = [0] * THREADS

    def run(index, deadline):
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                list_posts_json(conn)
            done[index] += 1

    run(0, time.monotonic() + 0.2)  # warm-up: a first connection
    done[0] = 0
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=run, args=(i, deadline)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    engine.dispose()
    return sum(done)


def queries_per_second(dialect: str, env: dict[str, str], seconds: float) -> float:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(PROCESSES, mp_context=spawn) as pool:
        runs = [pool.submit(_queries, dialect, env, seconds) for _ in range(PROCESSES)]
        return sum(run.result(timeout=seconds + 60) for run in runs) / seconds


def compare(env: dict[str, str], rounds: int, seconds: float) -> dict[str, list[float]]:
    """Queries/s of each driver, ROUNDS interleaved rounds of SECONDS each."""
    results: dict[str, list[float]] = {name: [] for name in DRIVERS}
    for number in range(rounds):
        for name, dialect in DRIVERS.items():
            results[name].append(queries_per_second(dialect, env, seconds))
            print(f"  round {number + 1}: {name}: {results[name][-1]:.0f} queries/s", flush=True)
    return results
