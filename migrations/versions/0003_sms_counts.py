"""SMS counted per account and channel, for the lists' totals

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 15:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_counts",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sms_counts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "channel", name=op.f("pk_sms_counts")),
    )
    # The SMS stored before this revision, counted once.
    op.execute(
        "INSERT INTO sms_counts (account_id, channel, total) "
        "SELECT account_id, channel, COUNT(*) FROM sms GROUP BY account_id, channel"
    )


def downgrade() -> None:
    op.drop_table("sms_counts")
