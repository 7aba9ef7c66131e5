"""the SMS of one request share their request's columns in sms_groups, stored once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The columns an SMS takes from its group, as sms had them (nullable, server default).
SHARED = (
    ("email_row", ID, True, None),
    ("account_id", ID, False, None),
    ("email_id", sa.String(length=64), True, None),
    ("created_at", sa.DateTime(timezone=True), False, None),
    ("channel", sa.String(length=8), False, "mail"),
)
GROUP_INDEXES = (
    ("ix_sms_groups_account_id_id", ["account_id", "id"]),
    ("ix_sms_groups_email_id_id", ["email_id", "id"]),
    ("ix_sms_groups_email_row", ["email_row"]),
    ("ix_sms_groups_channel_id", ["channel", "id"]),
)
SMS_INDEXES = (  # (name, columns, partial condition) as sms has them at 0004
    ("ix_sms_to_id", ["to", "id"], None),
    ("ix_sms_tracker_id", ["tracker", "id"], "tracker != ''"),
    ("ix_sms_state_due_at", ["state", "due_at"], "state = 'scheduled'"),
)
OLD_INDEXES = (
    ("ix_sms_account_id_id", ["account_id", "id"]),
    ("ix_sms_email_id_id", ["email_id", "id"]),
    ("ix_sms_email_row", ["email_row"]),
    ("ix_sms_channel_id", ["channel", "id"]),
)
_KEY = "email_row, account_id, email_id, created_at, channel"
# Runs of consecutive ids that share the group's columns (no other SMS between, none missing)
# become one group each: its first id, its last, its columns.
_ISLANDS = (
    f"INSERT INTO sms_groups (id, last_id, {_KEY}) "
    f"SELECT MIN(id), MAX(id), {_KEY} FROM ("
    f"SELECT id, {_KEY}, id - ROW_NUMBER() OVER (PARTITION BY {_KEY} ORDER BY id) AS island "
    f"FROM sms) AS runs GROUP BY {_KEY}, island"
)
_GROUP_OF = "UPDATE sms SET group_id = (SELECT MAX(g.id) FROM sms_groups AS g WHERE g.id <= sms.id)"


def _sqlite_last_id() -> int | None:
    """SQLite's last given SMS id as AUTOINCREMENT kept it (None on PostgreSQL, whose sequence
    stays the column's)."""
    if op.get_bind().dialect.name != "sqlite":
        return None
    found = op.get_bind().exec_driver_sql(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'sms'), 0), "
        "COALESCE((SELECT MAX(id) FROM sms), 0))"
    )
    return int(found.scalar_one())


def _drop_sms_indexes(names: list[str]) -> None:
    for name in names:
        op.drop_index(name, table_name="sms")


def _create_sms_indexes() -> None:
    for name, columns, condition in SMS_INDEXES:
        where = sa.text(condition) if condition else None
        op.create_index(name, "sms", columns, sqlite_where=where, postgresql_where=where)


def upgrade() -> None:
    op.create_table(
        "sms_groups",
        sa.Column("id", ID, autoincrement=False, nullable=False),
        sa.Column("last_id", ID, nullable=False),
        sa.Column("email_row", ID, nullable=True),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("email_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_sms_groups_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["email_row"], ["emails.id"], name=op.f("fk_sms_groups_email_row_emails")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_groups")),
    )
    for name, columns in GROUP_INDEXES:
        op.create_index(name, "sms_groups", columns)
    op.execute(_ISLANDS)
    last = _sqlite_last_id()
    _drop_sms_indexes([name for name, _ in OLD_INDEXES] + [name for name, _, _ in SMS_INDEXES])
    with op.batch_alter_table("sms") as batch_op:
        batch_op.add_column(sa.Column("group_id", ID, nullable=True))
    op.execute(_GROUP_OF)
    # Rebuilt without AUTOINCREMENT: the last id given moves to id_counters (tables.py).
    with op.batch_alter_table("sms", table_kwargs={"sqlite_autoincrement": False}) as batch_op:
        batch_op.alter_column("group_id", existing_type=ID, nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_sms_group_id_sms_groups"), "sms_groups", ["group_id"], ["id"]
        )
        batch_op.drop_constraint("fk_sms_account_id_accounts", type_="foreignkey")
        batch_op.drop_constraint("fk_sms_email_row_emails", type_="foreignkey")
        for name, _, _, _ in SHARED:
            batch_op.drop_column(name)
    _create_sms_indexes()
    op.create_table(
        "id_counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_id_counters")),
    )
    if last is not None:
        op.execute(
            sa.text("INSERT INTO id_counters (name, last) VALUES ('sms', :last)").bindparams(
                last=last
            )
        )


def downgrade() -> None:
    last = None
    if op.get_bind().dialect.name == "sqlite":
        found = "SELECT last FROM id_counters WHERE name = 'sms'"
        last = op.get_bind().exec_driver_sql(found).scalar()
    op.drop_table("id_counters")
    _drop_sms_indexes([name for name, _, _ in SMS_INDEXES])
    with op.batch_alter_table("sms") as batch_op:
        for name, kind, _, default in SHARED:
            batch_op.add_column(sa.Column(name, kind, nullable=True, server_default=default))
    for name, _, _, _ in SHARED:
        op.execute(
            f"UPDATE sms SET {name} = "
            f"(SELECT g.{name} FROM sms_groups AS g WHERE g.id = sms.group_id)"
        )
    with op.batch_alter_table("sms", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        for name, kind, nullable, _ in SHARED:
            batch_op.alter_column(name, existing_type=kind, nullable=nullable)
        batch_op.drop_constraint("fk_sms_group_id_sms_groups", type_="foreignkey")
        batch_op.drop_column("group_id")
        batch_op.create_foreign_key(
            batch_op.f("fk_sms_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_sms_email_row_emails"), "emails", ["email_row"], ["id"]
        )
    if last is not None:  # AUTOINCREMENT goes on from the last id given, as it did
        op.execute("DELETE FROM sqlite_sequence WHERE name = 'sms'")
        keep = "INSERT INTO sqlite_sequence (name, seq) VALUES ('sms', :last)"
        op.execute(sa.text(keep).bindparams(last=last))
    for name, columns in OLD_INDEXES:
        op.create_index(name, "sms", columns)
    _create_sms_indexes()
    op.drop_table("sms_groups")
