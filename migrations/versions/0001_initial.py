"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:04:55.842725
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("keyid", sa.String(length=64), nullable=False),
        sa.Column("login", sa.String(length=64), nullable=False),
        sa.Column("password", sa.String(length=128), nullable=False),
        sa.Column("company", sa.String(length=200), server_default="", nullable=False),
        sa.Column("contact", sa.String(length=200), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=40), server_default="", nullable=False),
        sa.Column("email", sa.String(length=254), server_default="", nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("senders", sa.JSON(), nullable=False),
        sa.Column("credit", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("nostop_allowed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("quiet_hours_lifted", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("international_allowed", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("allowed_ips", sa.JSON(), nullable=False),
        sa.Column("blacklist", sa.JSON(), nullable=False),
        sa.Column("rate_limit", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("keyid", name=op.f("uq_accounts_keyid")),
        sa.UniqueConstraint("login", name=op.f("uq_accounts_login")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "faults",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=True),
        sa.Column("keyid", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faults")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "email_ids",
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("email_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_email_ids_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "email_id", name=op.f("pk_email_ids")),
    )
    op.create_table(
        "emails",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("code", sa.Integer(), nullable=True),
        sa.Column("email_id", sa.String(length=64), nullable=True),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("keyid", sa.String(length=64), nullable=True),
        sa.Column("sender", sa.String(length=320), server_default="", nullable=False),
        sa.Column("envelope_from", sa.String(length=320), server_default="", nullable=False),
        sa.Column("client_ip", sa.String(length=64), server_default="", nullable=False),
        sa.Column("message_id", sa.String(length=998), server_default="", nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_emails_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emails")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.create_index("ix_emails_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_emails_email_id_id", ["email_id", "id"], unique=False)
        batch_op.create_index("ix_emails_status_id", ["status", "id"], unique=False)

    op.create_table(
        "replies",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "email_row", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("to", sa.String(length=320), nullable=False),
        sa.Column("email_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["email_row"], ["emails.id"], name=op.f("fk_replies_email_row_emails")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replies")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.create_index("ix_replies_email_id_id", ["email_id", "id"], unique=False)
        batch_op.create_index("ix_replies_kind_id", ["kind", "id"], unique=False)
        batch_op.create_index("ix_replies_state_next", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_replies_to_id", ["to", "id"], unique=False)

    op.create_table(
        "sms",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "email_row", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("to", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("tracker", sa.String(length=64), server_default="", nullable=False),
        sa.Column("email_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sms_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["email_row"], ["emails.id"], name=op.f("fk_sms_email_row_emails")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("sms", schema=None) as batch_op:
        batch_op.create_index("ix_sms_account_id_id", ["account_id", "id"], unique=False)
        batch_op.create_index("ix_sms_email_id_id", ["email_id", "id"], unique=False)
        batch_op.create_index("ix_sms_email_row", ["email_row"], unique=False)
        batch_op.create_index("ix_sms_to_id", ["to", "id"], unique=False)
        batch_op.create_index("ix_sms_tracker_id", ["tracker", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sms", schema=None) as batch_op:
        batch_op.drop_index("ix_sms_tracker_id")
        batch_op.drop_index("ix_sms_to_id")
        batch_op.drop_index("ix_sms_email_row")
        batch_op.drop_index("ix_sms_email_id_id")
        batch_op.drop_index("ix_sms_account_id_id")

    op.drop_table("sms")
    with op.batch_alter_table("replies", schema=None) as batch_op:
        batch_op.drop_index("ix_replies_to_id")
        batch_op.drop_index("ix_replies_state_next")
        batch_op.drop_index("ix_replies_kind_id")
        batch_op.drop_index("ix_replies_email_id_id")

    op.drop_table("replies")
    with op.batch_alter_table("emails", schema=None) as batch_op:
        batch_op.drop_index("ix_emails_status_id")
        batch_op.drop_index("ix_emails_email_id_id")
        batch_op.drop_index("ix_emails_account_id_id")

    op.drop_table("emails")
    op.drop_table("email_ids")
    op.drop_table("faults")
    op.drop_table("accounts")
