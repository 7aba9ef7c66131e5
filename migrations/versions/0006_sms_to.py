"""the SMS of each number in sms_to, written behind the SMS on SQLite, not an index on sms

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sms_to",
        sa.Column("to", sa.String(length=32), nullable=False),
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("to", "id", name=op.f("pk_sms_to")),
        sqlite_with_rowid=False,
    )
    op.execute('INSERT INTO sms_to ("to", id) SELECT "to", id FROM sms ORDER BY "to", id')
    if op.get_bind().dialect.name == "sqlite":
        # Every SMS has its entry: the writer adds the next ones behind them (by_number.py).
        op.execute(
            "INSERT INTO id_counters (name, last) "
            "SELECT 'sms_to', COALESCE((SELECT MAX(id) FROM sms), 0)"
        )
    op.drop_index("ix_sms_to_id", table_name="sms")


def downgrade() -> None:
    op.create_index("ix_sms_to_id", "sms", ["to", "id"])
    op.execute("DELETE FROM id_counters WHERE name = 'sms_to'")
    op.drop_table("sms_to")
