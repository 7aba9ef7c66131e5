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
TRACKED = "tracker != ''"
SCHEDULED = "state = 'scheduled'"


def upgrade() -> None:
    op.drop_index("ix_sms_tracker_id", table_name="sms")
    op.drop_index("ix_sms_state_due_at", table_name="sms")
    op.create_index(
        "ix_sms_tracker_id",
        "sms",
        ["tracker", "id"],
        sqlite_where=sa.text(TRACKED),
        postgresql_where=sa.text(TRACKED),
    )
    op.create_index(
        "ix_sms_state_due_at",
        "sms",
        ["state", "due_at"],
        sqlite_where=sa.text(SCHEDULED),
        postgresql_where=sa.text(SCHEDULED),
    )


def downgrade() -> None:
    op.drop_index("ix_sms_state_due_at", table_name="sms")
    op.drop_index("ix_sms_tracker_id", table_name="sms")
    op.create_index("ix_sms_state_due_at", "sms", ["state", "due_at"])
    op.create_index("ix_sms_tracker_id", "sms", ["tracker", "id"])
