"""The floor of a 500-recipient email on SQLite: what storing its rows costs the writer alone.

The writer's own statements (`SqliteWriter.transaction`, `insert_email`, `insert_sms`: the same
SQL, bind conversions, pragmas and page cache), without the rules, the hand-over or the
event loop: batches of `--batch` emails of 500 SMS to the load's 500 numbers, on a database
that already holds `--stored` SMS to those same numbers (as the throughput phase's database
does after a while: every request of its load names the same 500 numbers). Run as is, then
without the `sms` (to, id) index, then without any `sms` index, each on its own copy of the
database, to show what each costs. The best a gateway can do on this schema is
1000 / (wall ms per email) emails a second, whatever the rest costs.

    .venv/bin/python -m bench.floor [--stored 200000] [--batches 40] [--batch 8]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from bench.load import TEXT, number
from bench.phases import RECIPIENTS, seed
from bench.servers import KEYID, db_upgrade, write_config
from gateway.core.model import ReplyState, RuleSettings, Sms
from gateway.store import by_number
from gateway.store.batch import SmsRows, Statements
from gateway.store.sqlite_writer import SqliteWriter

# (label, index to create or drop ("*": every sms index), whether the number's entries follow)
VARIANTS = (
    ("schema as is", (), True),
    ("number index per SMS (0005)", ("+ix_sms_to_id",), False),
    ("no number entries", (), False),
    ("without every sms index", ("*",), False),
)


def _drop(database: Path, names: tuple[str, ...]) -> None:
    con = sqlite3.connect(database)
    try:
        if names == ("+ix_sms_to_id",):
            con.execute('CREATE INDEX ix_sms_to_id ON sms ("to", id)')
            names = ()
        if names == ("*",):
            names = tuple(
                row[0]
                for row in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'sms' "
                    "AND sql IS NOT NULL"
                )
            )
        for name in names:
            con.execute(f'DROP INDEX "{name}"')
    finally:
        con.close()


@contextlib.contextmanager
def _writing(
    database: Path, per_batch: int, tail: int | None = by_number.TAIL
) -> Iterator[Callable[[], None]]:
    """A writer on the database, and what writes one transaction of `per_batch` emails of
    500 SMS to the load's numbers, then the number's entries once `tail` SMS wait (None:
    never)."""
    writer = SqliteWriter(make_url(f"sqlite:///{database}"), RuleSettings(), ReplyState.KEPT)
    now = datetime.now(UTC)
    sent = tuple(
        Sms(to=number(i), sender="MaSociete", text=TEXT, parts=1, encoding="gsm7")
        for i in range(1, RECIPIENTS + 1)
    )
    email = {
        "received_at": now, "status": "processed", "reason": "", "code": None,
        "email_id": None, "account_id": 1, "keyid": KEYID, "sender": "app@example.com",
        "envelope_from": "app@example.com", "client_ip": "127.0.0.1", "message_id": "",
        "subject": "", "results": [], "warnings": [], "raw": b"",
    }  # fmt: skip

    def one_batch(db: Statements) -> None:
        groups = []
        for _ in range(per_batch):
            row = db.insert_email(email)
            shared = {
                "email_row": row, "account_id": 1, "email_id": None, "created_at": now,
                "channel": "mail", "state": "sent", "due_at": None,
            }  # fmt: skip
            groups.append(SmsRows(shared, sent))
        db.insert_sms(groups)

    def write() -> None:
        writer.transaction(one_batch)
        if tail is not None and writer.catching_up_due(tail):
            writer.catch_up(tail)

    try:
        yield write
    finally:
        writer.close()


def _measure(database: Path, batches: int, per_batch: int, tail: int | None) -> tuple[float, float]:
    """CPU and wall milliseconds per email over `batches` transactions, after one not
    measured (it reads the pages it needs)."""
    with _writing(database, per_batch, tail) as write:
        write()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(batches):
            write()
        emails = batches * per_batch
        return (
            (time.process_time() - cpu) / emails * 1000,
            (time.perf_counter() - wall) / emails * 1000,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stored", type=int, default=200_000, help="SMS stored before")
    parser.add_argument("--batches", type=int, default=40, help="transactions measured")
    parser.add_argument(
        "--tail", type=int, default=by_number.TAIL, help="SMS waiting for their entries"
    )
    parser.add_argument("--batch", type=int, default=8, help="emails per transaction")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mail2sms-floor-") as tmp:
        folder = Path(tmp)
        seeded = folder / "seeded.db"
        db_upgrade(write_config(folder / "g.toml", f"sqlite+aiosqlite:///{seeded}"))
        seed(seeded, 0)  # the account
        with _writing(seeded, args.batch, args.tail) as write:
            for _ in range(-(-args.stored // (RECIPIENTS * args.batch))):
                write()
        print(
            f"{RECIPIENTS} SMS an email, {args.batch} emails a transaction, "
            f"{args.batches} transactions, {args.stored} SMS stored before"
        )
        header = f"{'CPU ms/email':>12s} {'wall ms/email':>13s} {'emails/s at best':>16s}"
        print(f"{'variant':26s} {header}")
        for label, dropped, entries in VARIANTS:
            database = folder / "measured.db"
            shutil.copyfile(seeded, database)
            _drop(database, dropped)
            tail = args.tail if entries else None
            cpu, wall = _measure(database, args.batches, args.batch, tail)
            print(f"{label:26s} {cpu:12.2f} {wall:13.2f} {1000 / wall:16.0f}")
            database.unlink()


if __name__ == "__main__":
    main()
