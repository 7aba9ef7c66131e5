"""Fixtures of the web tests: a migrated gateway on a real uvicorn server, rows written directly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.core.codes import MESSAGES
from gateway.store.admin import recount_sms
from gateway.store.engine import write_transaction
from gateway.store.tables import accounts, emails, replies
from gateway.web.server import start_http, stop_http
from tests.database import insert_flat

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Any:
    overrides: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path}/g.db"},
        "http": {"port": 0},
        "clock": {"fixed": "2026-12-01T10:00:00+01:00"},
    }
    for name, values in sections.items():
        overrides[name] = {**overrides.get(name, {}), **values}
    return load_settings(overrides=overrides, environ={})


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    gw = Gateway(make_settings(tmp_path))
    await gw.prepare_database()
    yield gw
    await gw.engine.dispose()


@pytest.fixture
async def base_url(gateway: Gateway) -> AsyncIterator[str]:
    server, task, port = await start_http(gateway.web)
    yield f"http://127.0.0.1:{port}"
    await stop_http(server, task)


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        yield http


class Rows:
    """Writes emails, SMS and replies the way the service would, without SMTP."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def account_id(self, keyid: str = "demo") -> int:
        async with self.gateway.engine.connect() as conn:
            found = await conn.execute(select(accounts.c.id).where(accounts.c.keyid == keyid))
            return int(found.scalar_one())

    async def email(self, publish: bool = True, **values: Any) -> int:
        row: dict[str, Any] = {
            "received_at": NOW,
            "status": "processed",
            "email_id": "1",
            "account_id": await self.account_id(),
            "keyid": "demo",
            "sender": "app@example.com",
            "results": [{"tel": "0601020304", "code": 0, "message": MESSAGES[0]}],
            "warnings": [],
            "raw": b"From: app@example.com\r\nSubject: envoi\r\n\r\n<envoi></envoi>\r\n",
            **values,
        }
        async with write_transaction(self.gateway.engine) as conn:
            result = await conn.execute(insert(emails).values(**row).returning(emails.c.id))
            email_row = int(result.scalar_one())
        if publish:
            self.gateway.changes.publish(["emails"])
        return email_row

    async def sms(self, publish: bool = True, **values: Any) -> int:
        """An SMS of an email (one is made when `email_row` is not given), or of the HTTP API
        with `channel="http"` (no email, no emailId)."""
        if values.get("channel") == "http":
            values = {"email_row": None, "email_id": None, **values}
        elif not values.get("email_row"):
            values["email_row"] = await self.email(
                publish=False, email_id=values.get("email_id", "1")
            )
        account_id = await self.account_id(values.pop("keyid", "demo"))
        row: dict[str, Any] = {
            "account_id": account_id,
            "to": "0601020304",
            "sender": "MaSociete",
            "text": "Bonjour\r\nSTOP SMS au 36111",
            "parts": 1,
            "encoding": "gsm7",
            "tracker": "",
            "email_id": "1",
            "created_at": NOW,
            **values,
        }
        async with write_transaction(self.gateway.engine) as conn:
            (sms_id,) = await conn.run_sync(insert_flat, [row])
            await recount_sms(conn)  # the writer keeps the counts of what it inserts
        if publish:
            self.gateway.changes.publish(["sms"])
        return sms_id

    async def reply(self, publish: bool = True, **values: Any) -> int:
        email_row = values.pop("email_row", None) or await self.email(
            publish=False, email_id=values.get("email_id", "1")
        )
        row: dict[str, Any] = {
            "email_row": email_row,
            "kind": "ack",
            "to": "ack@example.com",
            "email_id": "1",
            "body": '<?xml version="1.0" encoding="ISO-8859-1"?>\n<retour><code>0</code></retour>',
            "state": "kept",
            "created_at": NOW,
            **values,
        }
        async with write_transaction(self.gateway.engine) as conn:
            result = await conn.execute(insert(replies).values(**row).returning(replies.c.id))
            reply_id = int(result.scalar_one())
        if publish:
            self.gateway.changes.publish(["replies"])
        return reply_id


@pytest.fixture
def rows(gateway: Gateway) -> Rows:
    return Rows(gateway)
