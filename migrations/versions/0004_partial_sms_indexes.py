"""the SMS tracker and due-time indexes hold only the SMS with a tracker, and the scheduled ones

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# As tables.py words them: a query finds a partial index by repeating its condition.
PARTIAL = (
    ("ix_sms_tracker_id", ["tracker", "id"], "tracker != ''"),
    ("ix_sms_state_due_at", ["state", "due_at"], "state = 'scheduled'"),
)


def upgrade() -> None:
    for name, columns, condition in PARTIAL:
        op.drop_index(name, table_name="sms")
        where = sa.text(condition)
        op.create_index(name, "sms", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for name, columns, _ in PARTIAL:
        op.drop_index(name, table_name="sms")
        op.create_index(name, "sms", columns)
