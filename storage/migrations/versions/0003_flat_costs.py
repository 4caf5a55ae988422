"""Costs that stay flat as the data grows: what a tick, a start-up and the daily send count ask is indexed.

- ``touches.sent_at``: the emails sent in the last day (the daily cap, counted at start-up), without reading
  every touch ever sent.
- ``departures.plan_by`` and ``departures.plan_until``: what planned a departure and until when its plan holds
  (bot/playbook.py), so that start-up reads only the departures whose plan no longer holds.
- ``touches (status, coalesce(due_at, ''), id)``: the due ones in the order the dispatcher takes them; a
  touch without a due time counts as due, as the contract says, and the index serves that comparison.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("touches", sa.Column("sent_at", sa.Text(collation="C"), nullable=True))
    op.add_column("departures", sa.Column("plan_by", sa.Text(collation="C"), nullable=True))
    op.add_column("departures", sa.Column("plan_until", sa.Text(collation="C"), nullable=True))
    op.execute("UPDATE touches SET sent_at = doc->>'sent_at' WHERE doc ? 'sent_at'")
    op.execute("UPDATE departures SET plan_by = doc->>'plan_by', plan_until = doc->>'plan_until' "
               "WHERE doc ? 'plan_by'")  # fmt: skip
    op.create_index("ix_touches_status_sent_at", "touches", ["status", "sent_at"])
    op.create_index("ix_departures_plan_until", "departures", ["plan_until"])
    op.create_index("ix_departures_plan_by", "departures", ["plan_by"])
    op.drop_index("ix_touches_status_due_at", table_name="touches")
    op.execute("CREATE INDEX ix_touches_status_due ON touches (status, coalesce(due_at, ''), id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_touches_status_due")
    op.create_index("ix_touches_status_due_at", "touches", ["status", "due_at"])
    op.drop_index("ix_departures_plan_by", table_name="departures")
    op.drop_index("ix_departures_plan_until", table_name="departures")
    op.drop_index("ix_touches_status_sent_at", table_name="touches")
    op.drop_column("departures", "plan_until")
    op.drop_column("departures", "plan_by")
    op.drop_column("touches", "sent_at")
