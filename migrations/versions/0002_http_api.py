"""the provider's HTTP API: SMS channel, state and due time; sub-accounts; directories; short links

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "directories",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_directories_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directories")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("directories", schema=None) as batch_op:
        batch_op.create_index("ix_directories_account_id", ["account_id"], unique=False)

    op.create_table(
        "shortlinks",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("hits", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_shortlinks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shortlinks")),
        sa.UniqueConstraint("code", name=op.f("uq_shortlinks_code")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "directory_entries",
        sa.Column("directory_id", ID, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["directory_id"],
            ["directories.id"],
            name=op.f("fk_directory_entries_directory_id_directories"),
        ),
        sa.PrimaryKeyConstraint("directory_id", "number", name=op.f("pk_directory_entries")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", ID, nullable=True))
        batch_op.add_column(
            sa.Column("price", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_accounts_parent_id_accounts"), "accounts", ["parent_id"], ["id"]
        )

    with op.batch_alter_table("sms", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=8), server_default="mail", nullable=False)
        )
        batch_op.add_column(
            sa.Column("state", sa.String(length=16), server_default="sent", nullable=False)
        )
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column("email_row", existing_type=ID, nullable=True)
        batch_op.create_index("ix_sms_channel_id", ["channel", "id"], unique=False)
        batch_op.create_index("ix_sms_state_due_at", ["state", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_state_due_at")
        batch_op.drop_index("ix_sms_channel_id")
        batch_op.alter_column("email_row", existing_type=ID, nullable=False)
        batch_op.drop_column("due_at")
        batch_op.drop_column("state")
        batch_op.drop_column("channel")

    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_accounts_parent_id_accounts"), type_="foreignkey")
        batch_op.drop_column("price")
        batch_op.drop_column("parent_id")

    op.drop_table("directory_entries")
    op.drop_table("shortlinks")
    with op.batch_alter_table("directories", schema=None) as batch_op:
        batch_op.drop_index("ix_directories_account_id")
    op.drop_table("directories")
