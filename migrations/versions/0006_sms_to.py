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
        sa.Column("run", ID, autoincrement=False, nullable=False),
        sa.Column("to", sa.String(length=32), nullable=False),
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("run", "to", "id", name=op.f("pk_sms_to")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "sms_to_runs",
        sa.Column("run", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("run", name=op.f("pk_sms_to_runs")),
    )
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL keeps its index on the number (tables.py): sms_to stays empty
    # Every SMS stored is entered as run 1; the writer adds the next runs (by_number.py).
    op.execute('INSERT INTO sms_to (run, "to", id) SELECT 1, "to", id FROM sms ORDER BY 2, 3')
    op.execute("INSERT INTO sms_to_runs (run) SELECT 1 WHERE EXISTS (SELECT 1 FROM sms)")
    op.execute(
        "INSERT INTO id_counters (name, last) "
        "SELECT 'sms_to', COALESCE((SELECT MAX(id) FROM sms), 0)"
    )
    op.drop_index("ix_sms_to_id", table_name="sms")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_sms_to_id", "sms", ["to", "id"])
        op.execute("DELETE FROM id_counters WHERE name = 'sms_to'")
    op.drop_table("sms_to_runs")
    op.drop_table("sms_to")
