"""Updates to former clients move into the database: every process sharing it sees the drafts and approvals.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "updates",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),  # bigserial
        sa.Column("doc", JSONB(), nullable=False),
        sa.Column("status", sa.Text(collation="C"), nullable=True),
    )
    op.create_index("ix_updates_status", "updates", ["status"])


def downgrade() -> None:
    op.drop_table("updates")
