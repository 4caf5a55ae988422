"""Alembic's environment for sendoff's PostgreSQL schema.

sendoff runs Alembic itself (``storage.postgres_store.migrate``, behind
``sendoff migrate``) and hands it an open connection in ``config.attributes``:
the async engine lives on sendoff's own loop, and the upgrade runs in that
connection's transaction, under its advisory lock. Offline mode (SQL for a
DBA to read, ``--sql``) needs only ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from storage.postgres_store import METADATA

config = context.config


def run_on(connection: object) -> None:
    context.configure(connection=connection, target_metadata=METADATA)  # type: ignore[arg-type]
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=METADATA, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations with `sendoff migrate`, which connects with SENDOFF_DB")
    run_on(connection)
