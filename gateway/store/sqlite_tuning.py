"""SQLite's connections tuned for durable commits (WAL, synchronous=FULL), and the BEGIN a
write transaction takes: shared by the async engine (engine.py) and the writer's synchronous
one (sqlite_writer.py), which imports nothing of the async side (the writer process's RSS)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

# The execution option of a connection that writes: its BEGIN takes the write lock up front.
WRITE = "mail2sms_write"


def tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own BEGIN handling would defer the write lock and fail upgrades with
        # SQLITE_BUSY at once; we issue BEGIN ourselves (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=FULL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA busy_timeout=30000",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        immediate = connection.get_execution_options().get(WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
