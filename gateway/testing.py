"""The pytest plugin for our users: a real gateway in-process on free loopback ports (SPEC §14)."""

from __future__ import annotations

import asyncio
import re
import smtplib
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import Settings, load_settings

FIXTURE_CLOCK = "2026-12-01T10:00:00+01:00"  # a Tuesday, business hours, Paris


def fixture_settings(database: Path, config: Mapping[str, Any] | None = None) -> Settings:
    """The plugin's defaults: free ports, a fresh SQLite file, frozen clock, replies kept."""
    base: dict[str, Any] = {
        "smtp": {"host": "127.0.0.1", "port": 0},
        "http": {"host": "127.0.0.1", "port": 0},
        "database": {"url": f"sqlite+aiosqlite:///{database}"},
        "clock": {"fixed": FIXTURE_CLOCK},
        "relay": {"host": ""},
    }
    for section, values in (config or {}).items():
        if isinstance(values, Mapping) and isinstance(base.get(section), dict):
            base[section] = {**base[section], **values}
        else:
            base[section] = values
    return load_settings(overrides=base, environ={})


class RunningGateway:
    """A gateway on its own event loop in a background thread, driven from any test."""

    def __init__(self, settings: Settings) -> None:
        from gateway.app import Gateway

        self.settings = settings
        self.gateway = Gateway(settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="mail2sms", daemon=True)
        self._thread.start()
        try:
            self._call(self.gateway.start(), timeout=60)
        except BaseException:
            self._halt()
            raise
        self.smtp_host = settings.smtp.host
        self.smtp_port = self.gateway.smtp_port
        self.api_url = f"http://{settings.http.host}:{self.gateway.http_port}"
        self.address = settings.smtp.gateway_addresses[0]
        self.keyid = settings.accounts[0].keyid if settings.accounts else ""
        self._http = httpx.Client(base_url=self.api_url, timeout=40)

    def _call(self, coroutine: Any, timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        self._http.close()
        try:
            self._call(self.gateway.stop(), timeout=30)
        finally:
            self._halt()

    def _halt(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    # Sending ---------------------------------------------------------------------------
    def send(self, raw: bytes | str | EmailMessage, *, mail_from: str = "app@example.com") -> str:
        """Send one email over SMTP; returns the server's final reply (250 … or raises)."""
        if isinstance(raw, EmailMessage):
            raw = raw.as_bytes(policy=SMTP_POLICY)
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        # SMTP lines end with CRLF; a bare LF would make the whole message one "line".
        raw = re.sub(rb"\r?\n", b"\r\n", raw)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as client:
            client.sendmail(mail_from, [self.address], raw)
            return "250"

    def request_email(self, body: str, *, sender: str = "app@example.com") -> EmailMessage:
        """A plain-text request email to the gateway, as an application would write it."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.address
        message["Subject"] = "envoi"
        message.set_content(body)
        return message

    # Reading ---------------------------------------------------------------------------
    def _list(self, path: str, filters: Mapping[str, Any]) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        response = self._http.get(f"/api/v1/{path}", params=params)
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def sms(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("sms", filters)

    def emails(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("emails", filters)

    def replies(self, **filters: Any) -> list[dict[str, Any]]:
        return self._list("replies", filters)

    def wait_for_sms(
        self, count: int = 1, timeout: float = 5, **filters: Any
    ) -> list[dict[str, Any]]:
        items = self._list("sms", {**filters, "wait_for": count, "timeout": timeout})
        if len(items) < count:
            raise AssertionError(f"expected {count} SMS matching {filters}, got {len(items)}")
        return items

    def wait_for_reply(self, kind: str, email_id: str | int, timeout: float = 5) -> dict[str, Any]:
        items = self._list(
            "replies", {"kind": kind, "email_id": str(email_id), "wait_for": 1, "timeout": timeout}
        )
        if not items:
            raise AssertionError(f"no {kind} reply for emailId {email_id} within {timeout}s")
        return items[0]

    # Control ---------------------------------------------------------------------------
    def set_clock(self, iso: str | None) -> None:
        if iso is None:
            self._http.delete("/api/v1/clock").raise_for_status()
        else:
            self._http.put("/api/v1/clock", json={"now": iso}).raise_for_status()

    def add_account(self, **fields: Any) -> dict[str, Any]:
        response = self._http.post("/api/v1/accounts", json=fields)
        response.raise_for_status()
        account: dict[str, Any] = response.json()
        return account

    def reset(self) -> None:
        self._http.delete("/api/v1/messages").raise_for_status()


def _marker_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("mail2sms")
    return dict(marker.kwargs.get("config", {})) if marker else {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mail2sms(config={...}): settings for the mail2sms_gateway fixture of one test"
    )


@pytest.fixture
def mail2sms_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningGateway]:
    """A fresh gateway for one test: free ports, its own SQLite file, the demo account."""
    settings = fixture_settings(tmp_path / "mail2sms.db", _marker_config(request))
    running = RunningGateway(settings)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def _mail2sms_session_gateway() -> Iterator[RunningGateway]:
    with tempfile.TemporaryDirectory(prefix="mail2sms-") as folder:
        running = RunningGateway(fixture_settings(Path(folder) / "mail2sms.db"))
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture
def mail2sms_gateway_session(_mail2sms_session_gateway: RunningGateway) -> RunningGateway:
    """One gateway for the whole session, reset (messages and clock) before each test."""
    _mail2sms_session_gateway.reset()
    _mail2sms_session_gateway.set_clock(FIXTURE_CLOCK)
    return _mail2sms_session_gateway
