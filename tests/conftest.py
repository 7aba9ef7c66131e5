"""Fixtures for every test: one PostgreSQL cluster per session, a fresh database per test on
either backend, and a gateway on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from gateway.testing import RunningGateway, fixture_settings
from tests.postgres import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL 15 cluster, started on first use."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database at the current schema (as after `mail2sms db upgrade`)."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database for one test, on each backend in turn."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'g.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings_on(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """The pytest plugin's settings on this test's database, with `config` on top."""

    def make(config: Mapping[str, Any] | None = None) -> Settings:
        return fixture_settings(
            tmp_path / "g.db", {**(config or {}), "database": {"url": database_url}}
        )

    return make


@pytest.fixture
def gateway_on(
    request: pytest.FixtureRequest, settings_on: Callable[..., Settings]
) -> Iterator[RunningGateway]:
    """Like the plugin's `mail2sms_gateway` (its marker included), on each backend in turn."""
    marker = request.node.get_closest_marker("mail2sms")
    running = RunningGateway(settings_on(marker.kwargs.get("config") if marker else None))
    try:
        yield running
    finally:
        running.stop()
