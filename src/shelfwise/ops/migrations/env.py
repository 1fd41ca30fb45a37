"""Alembic environment of the operational tables.

:meth:`shelfwise.ops.OperationalDatabase.upgrade` builds the configuration in code and hands
over its own connection (``config.attributes["connection"]``), so no alembic.ini is needed at
run time. A developer writing a new revision can point the alembic command line here with an
ini holding ``script_location = shelfwise.ops:migrations`` and ``sqlalchemy.url``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection

# Importing the package registers every table on Base.metadata.
from shelfwise.ops import Base
from shelfwise.ops._schema import render_storage_type


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most columns; batch mode lets later revisions rebuild the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_storage_type,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    context.configure(
        url=context.config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("set sqlalchemy.url or pass a connection in config.attributes")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
