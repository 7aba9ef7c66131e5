"""Two gateways (replicas) on one database, raced through SMTP (SPEC §1, §8, §10, §13): on
PostgreSQL (docker-compose's setup) and on one SQLite file, where each writer keeps what its
last batch left of the accounts only while SQLite's data_version says nobody else wrote.

Each replica is a RunningGateway: its own event loop thread, engine, SMTP and HTTP ports.
The races start from a barrier, so that the copies really are in flight together.
"""

from __future__ import annotations

import asyncio
import os
import re
import smtplib
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.errors import NotMigratedError
from gateway.testing import RunningGateway, fixture_settings
from tests.postgres import PostgresServer
from tests.relay import Relay

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "requests"
Replicas = Callable[..., list[RunningGateway]]


def _settings(url: str, config: Mapping[str, Any] | None = None) -> Any:
    return fixture_settings(Path("unused.db"), {**(config or {}), "database": {"url": url}})


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[Replicas]:
    """start(config) → two gateways on one fresh PostgreSQL database, started at the same time
    (so both seed the accounts of an empty database at once, as docker-compose does)."""
    yield from _replicas(postgres_url, together=True)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def raced(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Replicas]:
    """`replicas` on PostgreSQL, then on one SQLite file (started one after the other: the
    first migrates the file)."""
    if request.param == "sqlite":
        yield from _replicas(f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}", together=False)
    else:
        yield from _replicas(request.getfixturevalue("postgres_url"), together=True)


def _replicas(url: str, *, together: bool) -> Iterator[Replicas]:
    running: list[RunningGateway] = []

    def start(config: Mapping[str, Any] | None = None, count: int = 2) -> list[RunningGateway]:
        settings = _settings(url, config)
        if not together:
            for _ in range(count):
                running.append(RunningGateway(settings))
            return list(running[-count:])
        barrier = threading.Barrier(count, timeout=60)

        def one() -> RunningGateway:
            barrier.wait()
            gateway = RunningGateway(settings)
            running.append(gateway)
            return gateway

        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(one) for _ in range(count)]
        for future in futures:
            future.result()
        return [f.result() for f in futures]

    try:
        yield start
    finally:
        for gateway in running:
            gateway.stop()


def _send(gateway: RunningGateway, raw: bytes, barrier: threading.Barrier) -> None:
    """Connect and greet, wait for every other sender, then hand over the email (250 or raise)."""
    with smtplib.SMTP(gateway.smtp_host, gateway.smtp_port, timeout=60) as client:
        client.ehlo()
        barrier.wait()
        client.sendmail("app@example.com", [gateway.address], raw)


def _send_together(jobs: list[tuple[RunningGateway, bytes]]) -> None:
    barrier = threading.Barrier(len(jobs), timeout=60)
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = [pool.submit(_send, gateway, raw, barrier) for gateway, raw in jobs]
    for future in futures:
        future.result()


def _account(gateway: RunningGateway, keyid: str) -> dict[str, Any]:
    response = httpx.get(f"{gateway.api_url}/api/v1/accounts/{keyid}", timeout=30)
    response.raise_for_status()
    account: dict[str, Any] = response.json()
    return account


@pytest.mark.postgres
def test_replicas_starting_together_seed_the_demo_account_once(replicas: Replicas) -> None:
    first, second = replicas()
    assert _account(first, "demo")["credit"] == 1000
    assert _account(second, "demo") == _account(first, "demo")


def test_the_same_email_sent_to_both_replicas_at_once_is_processed_exactly_once(
    raced: Replicas,
) -> None:
    first, second = raced()
    raw = (REQUESTS / "single.eml").read_bytes()  # emailId 1548, one number, Ack and Not
    copies = 20
    _send_together([((first, second)[n % 2], raw) for n in range(copies)])
    emails = first.emails(email_id="1548")
    assert sorted(e["status"] for e in emails) == ["duplicate"] * (copies - 1) + ["processed"]
    assert len(first.sms()) == 1
    assert len(second.replies(kind="not")) == 1
    acks = second.replies(kind="ack")
    assert sorted(re.findall(r"<code>(\d+)</code>", a["body"])[0] for a in acks) == (
        ["0"] + ["1"] * (copies - 1)
    )
    assert _account(second, "demo")["credit"] == 999


def test_credit_raced_from_both_replicas_ends_at_zero_never_below(raced: Replicas) -> None:
    first, second = raced()
    keyid = first.add_account(domains=["example.com"], credit=7)["keyid"]
    emails = 20  # two numbers each: 40 recipients for 7 credits
    jobs = []
    for n in range(emails):
        body = (
            f"<envoi><keyid>{keyid}</keyid><num1>06010{n:03d}01</num1><num2>06010{n:03d}02</num2>"
            f"<sms>Bonjour</sms><emailId>{n + 1}</emailId></envoi>"
        )
        gateway = (first, second)[n % 2]
        jobs.append((gateway, gateway.request_email(body).as_bytes()))
    _send_together(jobs)
    results = [r for e in first.emails(account=keyid) for r in e["results"]]
    assert len(results) == 2 * emails
    assert sorted(r["code"] for r in results) == [0] * 7 + [12] * (2 * emails - 7)
    sent = second.sms(account=keyid)
    assert sorted(s["to"] for s in sent) == sorted(r["tel"] for r in results if r["code"] == 0)
    assert _account(second, keyid)["credit"] == 0


def test_emails_of_two_accounts_raced_across_replicas_all_get_250(raced: Replicas) -> None:
    """Batches holding the same accounts in another order queue up; none deadlocks into 451."""
    first, second = raced()
    keyids = [first.add_account(domains=["example.com"], credit=100)["keyid"] for _ in range(2)]
    emails = 40
    jobs = []
    for n in range(emails):
        keyid = keyids[(n // 2) % 2]  # each replica gets both accounts, interleaved
        body = (
            f"<envoi><keyid>{keyid}</keyid><num>0601020304</num><sms>Bonjour</sms>"
            f"<emailId>{n + 1}</emailId></envoi>"
        )
        gateway = (first, second)[n % 2]
        jobs.append((gateway, gateway.request_email(body).as_bytes()))
    _send_together(jobs)  # a deadlock would surface here as an SMTP 451
    assert len(second.sms()) == emails
    assert [_account(first, keyid)["credit"] for keyid in keyids] == [80, 80]


async def _replies_settled(gateway: RunningGateway, count: int, deadline: float) -> list[Any]:
    """The replies once there are `count`, none of them pending; AssertionError at deadline."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while True:
        items = await asyncio.to_thread(gateway.replies, limit=1000)
        if len(items) == count and all(r["state"] != "pending" for r in items):
            return items
        if loop.time() > until:
            states = sorted(r["state"] for r in items)
            raise AssertionError(f"replies not settled after {deadline} s: {states}")
        await asyncio.sleep(0.05)


@pytest.mark.postgres
async def test_every_reply_queued_by_either_replica_reaches_the_relay_exactly_once(
    replicas: Replicas,
) -> None:
    relay = await Relay().start()
    try:
        config = {"relay": {"host": "127.0.0.1", "port": relay.port}}
        first, second = await asyncio.to_thread(replicas, config)
        requests = 20  # an Ack and a Not each, every one to its own address
        jobs = []
        for n in range(requests):
            body = (
                f"<envoi><keyid>demo</keyid><num>0601020304</num><sms>Bonjour</sms>"
                f"<emailAck>ack{n}@masociete.com</emailAck><emailNot>not{n}@masociete.com"
                f"</emailNot><emailId>{3000 + n}</emailId></envoi>"
            )
            gateway = (first, second)[n % 2]
            jobs.append((gateway, gateway.request_email(body).as_bytes()))
        await asyncio.to_thread(_send_together, jobs)
        await relay.wait_for(2 * requests, timeout=30)
        replies = await _replies_settled(first, 2 * requests, deadline=30)
        assert {(r["state"], r["attempts"]) for r in replies} == {("delivered", 1)}
        message_ids = [
            re.search(rb"^Message-ID: <reply-(\d+)\.", m.content, re.MULTILINE)
            for m in relay.received
        ]
        delivered = sorted(int(found.group(1)) for found in message_ids if found)
        assert delivered == sorted(r["id"] for r in replies)
        assert len(relay.received) == 2 * requests
    finally:
        await relay.stop()


@pytest.mark.postgres
async def test_serve_refuses_an_unmigrated_postgresql_until_db_upgrade(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    with postgres_server.database(migrated=False) as url:
        settings = _settings(url)
        refused = Gateway(settings)
        try:
            with pytest.raises(NotMigratedError, match=r"run `mail2sms db upgrade`"):
                await refused.prepare_database()
        finally:
            await refused.engine.dispose()

        config = tmp_path / "config.toml"
        config.write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("MAIL2SMS_")}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "gateway", "--config", str(config), "db", "upgrade"],
            capture_output=True,
            text=True,
            env=environ,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "database at revision" in done.stdout

        migrated = Gateway(settings)
        try:
            await migrated.prepare_database()
        finally:
            await migrated.engine.dispose()
