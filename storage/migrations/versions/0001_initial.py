"""The first schema: one table per kind of record, the whole record as jsonb, its indexed fields as columns.

Written out rather than derived from ``storage.postgres_store``: a revision
must create what it created on the day it was written, whatever the code
says later.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(name: str, *, unique: bool = False) -> sa.Column[str]:
    # "C": keys and ISO times compare byte by byte, as the other backends compare them.
    return sa.Column(name, sa.Text(collation="C"), nullable=True, unique=unique)


def _table(name: str, *columns: sa.Column[Any]) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),  # bigserial
        sa.Column("doc", JSONB(), nullable=False),
        *columns,
    )


def upgrade() -> None:
    _table("departures", _text("client_key"), _text("status"), _text("am"), _text("updated_at"))
    for column in ("client_key", "status", "am", "updated_at"):
        op.create_index(f"ix_departures_{column}", "departures", [column])
    _table("touches", _text("key", unique=True), sa.Column("departure_id", sa.BigInteger(), nullable=True),
           _text("status"), _text("due_at"), _text("kind"))  # fmt: skip
    for column in ("departure_id", "status", "due_at", "kind"):
        op.create_index(f"ix_touches_{column}", "touches", [column])
    op.create_index("ix_touches_status_due_at", "touches", ["status", "due_at"])
    _table("events", _text("key", unique=True), _text("at"))
    op.create_index("ix_events_at", "events", ["at"])
    _table("team_sizes", _text("at"))
    op.create_index("ix_team_sizes_at", "team_sizes", ["at"])


def downgrade() -> None:
    for name in ("team_sizes", "events", "touches", "departures"):
        op.drop_table(name)
