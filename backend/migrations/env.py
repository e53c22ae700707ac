"""Alembic environment: connects with the app's own configuration (DB_* variables).

`python -m app.migrate` passes an open connection in config.attributes["connection"];
plain `alembic upgrade expand@head` (run from backend/) builds one from the environment.
"""

import sqlalchemy as sa
from alembic import context
from sqlalchemy.pool import NullPool

from app.config import Config


def run_migrations(connection):
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = sa.create_engine(Config.from_env().database_url, poolclass=NullPool)
    with engine.begin() as conn:
        run_migrations(conn)
