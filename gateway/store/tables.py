"""The database schema (SQLAlchemy Core tables); Alembic migrations in migrations/ mirror it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
    literal_column,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement

from gateway.core.model import SmsState
from gateway.core.replies import NotReport
from gateway.store import json_columns

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (autoincrement).
Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive text) and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the gateway stores aware UTC instants only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_SAID = 1  # the form of a Not report stored as what it says (ReplyBody)


class ReplyBody(TypeDecorator[str]):
    """A reply's XML body, read back as text. An Ack's is stored as it is; a Not report
    (replies.NotReport) is stored as what it says, on SQLite: a BLOB of JSON, [1, emailId,
    numbered, tels, codes], rendered again when read. PostgreSQL stores the text (it
    compresses long values itself).

    Why: a 500-number request's Not is 63 KB of XML, a third of the ~196 KB the request
    wrote; what it says is 7 KB. Each byte is written twice (the WAL, then the database) and
    the writer's system time per byte grows with the database: +8 % 500-line CSV and +15 %
    numX emails a second, alternating with the text stored (README). Text stays text."""

    impl = Text
    cache_ok = True

    def process_bind_param(
        self, value: str | NotReport | None, dialect: Dialect
    ) -> str | bytes | None:
        if not isinstance(value, NotReport):
            return value
        if dialect.name != "sqlite":
            return value.body
        tels = [tel for tel, _ in value.results]
        codes = [code for _, code in value.results]
        return json_columns.dumps([_SAID, value.email_id, value.numbered, tels, codes]).encode()

    def process_result_value(self, value: str | bytes | None, dialect: Dialect) -> str | None:
        if not isinstance(value, bytes):
            return value
        said, email_id, numbered, tels, codes = json_columns.loads(value)
        if said != _SAID:
            raise ValueError(f"a reply body stored in an unknown form ({said!r})")
        return NotReport(email_id, tuple(zip(tels, codes, strict=True)), numbered=numbered).body


accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("keyid", String(64), nullable=False, unique=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("password", String(128), nullable=False),
    Column("company", String(200), nullable=False, server_default=""),
    Column("contact", String(200), nullable=False, server_default=""),
    Column("phone", String(40), nullable=False, server_default=""),
    Column("email", String(254), nullable=False, server_default=""),
    Column("domains", JSON, nullable=False),
    Column("senders", JSON, nullable=False),
    Column("credit", BigInteger, nullable=False, server_default="0"),
    Column("nostop_allowed", Boolean, nullable=False, server_default="0"),
    Column("quiet_hours_lifted", Boolean, nullable=False, server_default="0"),
    Column("international_allowed", Boolean, nullable=False, server_default="0"),
    Column("allowed_ips", JSON, nullable=False),
    Column("blacklist", JSON, nullable=False),
    Column("rate_limit", Integer, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
    # A sub-account (HTTP API /subaccount) names its parent; its price is only recorded.
    Column("parent_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("price", String(32), nullable=False, server_default=""),
    sqlite_autoincrement=True,
)

# One row per inbound email, whatever became of it.
emails = Table(
    "emails",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("status", String(16), nullable=False),  # processed|duplicate|refused|not_processed
    Column("reason", Text, nullable=False, server_default=""),
    Column("code", Integer, nullable=True),  # refusal code (1, 3, 14, 30) or request code
    Column("email_id", String(64), nullable=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=True),
    Column("keyid", String(64), nullable=True),
    Column("sender", String(320), nullable=False, server_default=""),  # From: address
    Column("envelope_from", String(320), nullable=False, server_default=""),
    Column("client_ip", String(64), nullable=False, server_default=""),
    Column("message_id", String(998), nullable=False, server_default=""),
    Column("subject", Text, nullable=False, server_default=""),
    Column("results", JSON, nullable=False),  # [{"tel", "code"}]: reads.py adds "message"
    Column("warnings", JSON, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_emails_status_id", "status", "id"),
    Index("ix_emails_email_id_id", "email_id", "id"),
    Index("ix_emails_account_id_id", "account_id", "id"),
    sqlite_autoincrement=True,
)

# emailId dedup: the constraint, not a check-then-insert, makes it exact across replicas.
email_ids = Table(
    "email_ids",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("email_id", String(64), primary_key=True),
)

# The SMS of one request (an email, or an HTTP API call) share these columns: stored once for
# the request, not on each of its (up to thousands of) SMS with an index entry each. Its SMS
# have the ids `id` … `last_id`, none other's in between (the writers reserve a request's ids in
# one block: gateway/store/sms_ids.py): a filter on these columns walks the matching groups
# newest first and each one's ids downwards, which is the SMS newest first.
sms_groups = Table(
    "sms_groups",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=False),  # the first SMS's id
    Column("last_id", Id, nullable=False),
    Column("email_row", Id, ForeignKey("emails.id"), nullable=True),  # None: HTTP API
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("email_id", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("channel", String(8), nullable=False),  # mail|http
    Index("ix_sms_groups_account_id_id", "account_id", "id"),
    Index("ix_sms_groups_email_id_id", "email_id", "id"),
    Index("ix_sms_groups_email_row", "email_row"),
    Index("ix_sms_groups_channel_id", "channel", "id"),
)

sms = Table(
    "sms",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("group_id", Id, ForeignKey("sms_groups.id"), nullable=False),
    Column("to", String(32), nullable=False),
    Column("sender", String(16), nullable=False),
    Column("text", Text, nullable=False),
    Column("parts", Integer, nullable=False),
    Column("encoding", String(8), nullable=False),
    Column("tracker", String(64), nullable=False, server_default=""),
    Column("state", String(16), nullable=False, server_default="sent"),  # sent|scheduled
    Column("due_at", UtcDateTime(), nullable=True),  # a deferred send's time (date_envoi)
    # PostgreSQL finds a number's SMS by this index; SQLite by sms_to (below).
    Index("ix_sms_to_id", "to", "id").ddl_if(dialect="postgresql"),
)

# The SMS of each number, on SQLite: the writer adds the entries of the newest SMS behind them,
# in bulk, each time as one new `run` (its first SMS id), and reads walk the SMS not entered yet
# (gateway/store/by_number.py). Empty on PostgreSQL (its index above).
sms_to = Table(
    "sms_to",
    metadata,
    Column("run", Id, primary_key=True, autoincrement=False),
    Column("to", String(32), primary_key=True),
    Column("id", Id, primary_key=True, autoincrement=False),  # the SMS's
    sqlite_with_rowid=False,
)
# The runs of sms_to on SQLite (none on PostgreSQL).
sms_to_runs = Table(
    "sms_to_runs", metadata, Column("run", Id, primary_key=True, autoincrement=False)
)

# The last id given to an SMS, on SQLite: the writers reserve a request's block of ids
# themselves (gateway/store/sms_ids.py) and move this on once a batch, so that an id is never
# given twice, not even after a reset. SQLite's AUTOINCREMENT would do it by rewriting its
# sqlite_sequence after every row inserted: 0.5–1.3 ms of a 500-SMS request (bench/).
# PostgreSQL keeps the column's sequence. Row 'sms_to': the last SMS id with its entry in
# sms_to, on SQLite (by_number.py).
id_counters = Table(
    "id_counters",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last", BigInteger, nullable=False),
)

# What an SMS carried to the phone, in the order the lists give it.
SMS_CONTENT = (sms.c.to, sms.c.sender, sms.c.text, sms.c.parts, sms.c.encoding, sms.c.tracker)
# The SMS with their group's columns (each SMS finds its group by primary key).
SMS_WITH_GROUP = sms.join(sms_groups, sms_groups.c.id == sms.c.group_id)
# The SMS of the groups, found from the groups (a filter on their columns): see sms_groups.
GROUPS_WITH_SMS = sms_groups.join(sms, sms.c.id.between(sms_groups.c.id, sms_groups.c.last_id))

# Two indexes hold only the SMS a read looks for: most SMS have no tracker and are not
# scheduled, and each index an SMS enters costs its insert (~0.4 ms of a 500-SMS request's
# ~4.5 ms of storage, `bench.floor`). A query finds them by repeating the condition word for
# word (SQLite's and PostgreSQL's rule for a partial index): `with_tracker`, `SCHEDULED`.
TRACKED = sms.c.tracker != literal_column("''")
SCHEDULED = sms.c.state == literal_column(f"'{SmsState.SCHEDULED.value}'")
Index("ix_sms_tracker_id", sms.c.tracker, sms.c.id, sqlite_where=TRACKED, postgresql_where=TRACKED)
Index(
    "ix_sms_state_due_at",
    sms.c.state,
    sms.c.due_at,
    sqlite_where=SCHEDULED,
    postgresql_where=SCHEDULED,
)


def with_tracker(tracker: str) -> ColumnElement[bool]:
    """The SMS with this tracker, in the words ix_sms_tracker_id is found by ("" is every SMS
    without one: not in that index)."""
    return and_(sms.c.tracker == tracker, TRACKED) if tracker else sms.c.tracker == tracker


# How many SMS each account sent through each channel, kept by the writer's batches (one
# upsert per account and channel) so that a list's `total` never counts a million rows.
sms_counts = Table(
    "sms_counts",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("channel", String(8), primary_key=True),
    Column("total", BigInteger, nullable=False),
)

# The outbox: Ack/Not emails queued in the transaction that applied the request.
replies = Table(
    "replies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("email_row", Id, ForeignKey("emails.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # ack|not
    Column("to", String(320), nullable=False),
    Column("email_id", String(64), nullable=True),
    Column("body", ReplyBody, nullable=False),  # the XML; sent encoded ISO-8859-1
    Column("state", String(16), nullable=False),  # pending|delivered|kept|failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Index("ix_replies_state_next", "state", "next_attempt_at"),
    Index("ix_replies_email_id_id", "email_id", "id"),
    Index("ix_replies_kind_id", "kind", "id"),
    Index("ix_replies_to_id", "to", "id"),
    sqlite_autoincrement=True,
)

faults = Table(
    "faults",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", Integer, nullable=False),
    Column("remaining", Integer, nullable=False),
    Column("number", String(32), nullable=True),
    Column("keyid", String(64), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)

# The HTTP API's directories (répertoires): numbers with their champ1…champ27 values.
directories = Table(
    "directories",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_directories_account_id", "account_id"),
    sqlite_autoincrement=True,
)

directory_entries = Table(
    "directory_entries",
    metadata,
    Column("directory_id", Id, ForeignKey("directories.id"), primary_key=True),
    Column("number", String(32), primary_key=True),
    Column("fields", JSON, nullable=False),  # {"champ1": "…", …}
    Column("created_at", UtcDateTime(), nullable=False),
)

# The HTTP API's short links, served by the emulator itself at /s/<code>.
shortlinks = Table(
    "shortlinks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("hits", Integer, nullable=False, server_default="0"),
    Column("created_at", UtcDateTime(), nullable=False),
    sqlite_autoincrement=True,
)


def built_on(dialect: str) -> Callable[..., bool]:
    """Alembic's `include_object`: what tables.py builds on this database (an index made for
    one database only, `ddl_if`, is not expected on the other; Alembic does not look)."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        condition = getattr(obj, "_ddl_if", None)
        return condition is None or condition.dialect in (None, dialect)

    return include
