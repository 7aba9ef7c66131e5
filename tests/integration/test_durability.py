"""Durability: a gateway killed with SIGKILL under load, and reply delivery across restarts.

The gateway runs as a real child process (`python -m gateway --config … serve`) so that it can
be killed the hard way; the ports it picked are read from the line it prints at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import smtplib
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from gateway.testing import FIXTURE_CLOCK, RunningGateway, fixture_settings
from tests.relay import Received, Relay

GATEWAY_ADDRESS = "sendsms@isendpro-api.com"
SENDER = "app@example.com"
CREDIT = 100_000
READY = re.compile(r"SMTP on 127\.0\.0\.1:(\d+) .*\n.*http://127\.0\.0\.1:(\d+)/")
MESSAGE_ID = re.compile(rb"^Message-ID: <reply-(\d+)\.", re.MULTILINE | re.IGNORECASE)
ROOT = Path(__file__).resolve().parents[2]


# --- the gateway as a child process ------------------------------------------------------------


def write_config(folder: Path, relay: Mapping[str, Any] | None = None) -> Path:
    """A TOML file: free ports, SQLite in `folder`, frozen business-hours clock, rich account."""
    sections: dict[str, Mapping[str, Any]] = {
        "smtp": {"host": "127.0.0.1", "port": 0},
        "http": {"host": "127.0.0.1", "port": 0},
        "database": {"url": f"sqlite+aiosqlite:///{folder / 'gateway.db'}"},
        "clock": {"fixed": FIXTURE_CLOCK},
        "relay": relay or {"host": ""},
    }
    lines: list[str] = []
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    lines += [
        "[[accounts]]",
        'keyid = "demo"',
        'domains = ["example.com"]',
        f"credit = {CREDIT}",
        'senders = ["MaSociete"]',
    ]
    path = folder / "gateway.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class GatewayProcess:
    """`python -m gateway serve` in a child process; `kill()` is SIGKILL, `stop()` SIGTERM."""

    def __init__(self, config: Path, timeout: float = 60) -> None:
        self.log = config.parent / "gateway.log"
        self.printed = ""  # what it printed at start-up, its ports' lines included
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAIL2SMS_")}
        env["PYTHONPATH"] = str(ROOT)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway", "--config", str(config), "serve"],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=config.parent,
            )
        try:
            self.smtp_port, http_port = self._ports(timeout)
        except BaseException:
            self.kill()
            raise
        self.api_url = f"http://127.0.0.1:{http_port}"

    def _ports(self, timeout: float) -> tuple[int, int]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        printed = b""
        until = time.monotonic() + timeout
        while (left := until - time.monotonic()) > 0:
            if not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 4096)
            if not chunk:  # the process ended
                break
            printed += chunk
            self.printed = printed.decode("utf-8", "replace")
            found = READY.search(self.printed)
            if found:
                return int(found.group(1)), int(found.group(2))
        raise AssertionError(f"the gateway did not start: {printed!r}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text("utf-8", "replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or `kill -9`."""
        self.process.kill()
        self._reap()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._reap()

    def _reap(self) -> None:
        self.process.wait(20)
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def gateway_process(config: Path) -> Iterator[GatewayProcess]:
    gateway = GatewayProcess(config)
    try:
        yield gateway
    finally:
        if gateway.process.returncode is None:
            gateway.stop()


def listing(api_url: str, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of an API list, page after page."""
    items: list[dict[str, Any]] = []
    with httpx.Client(base_url=api_url, timeout=30) as client:
        for _ in range(100):
            page = client.get(
                f"/api/v1/{path}", params={**params, "limit": 1000, "offset": len(items)}
            )
            page.raise_for_status()
            body = page.json()
            items += body["items"]
            if len(items) >= body["total"] or not body["items"]:
                return items
    raise AssertionError(f"/api/v1/{path} did not end within 100 pages")


# --- request emails ----------------------------------------------------------------------------


def request(email_id: str, numbers: list[str], *, ack: str, not_: str) -> bytes:
    if len(numbers) == 1:
        recipients = f"<num>{numbers[0]}</num>"
    else:
        recipients = "".join(f"<num{i}>{n}</num{i}>" for i, n in enumerate(numbers, start=1))
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = GATEWAY_ADDRESS
    message["Subject"] = f"envoi {email_id}"
    message.set_content(
        "<envoi>\n<keyid>demo</keyid>\n"
        f"{recipients}\n<sms>durability {email_id}</sms>\n"
        f"<emailAck>{ack}</emailAck>\n<emailNot>{not_}</emailNot>\n"
        f"<emailId>{email_id}</emailId>\n</envoi>\n"
    )
    return message.as_bytes()


@dataclass
class Load:
    """Which emailIds got their 250, shared by the client threads."""

    answered: set[str] = field(default_factory=set)
    unanswered: set[str] = field(default_factory=set)
    errors_before_kill: list[str] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    killed: threading.Event = field(default_factory=threading.Event)

    def settle(self, email_id: str, error: BaseException | None) -> None:
        with self.changed:
            if error is None:
                self.answered.add(email_id)
            else:
                self.unanswered.add(email_id)
                if not self.killed.is_set():
                    self.errors_before_kill.append(f"{email_id}: {error!r}")
            self.changed.notify_all()

    def wait_answered(self, count: int, timeout: float) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.answered) >= count, timeout):
                raise AssertionError(f"only {len(self.answered)} emails got 250 in {timeout} s")


def send_all(port: int, emails: list[tuple[str, bytes]], load: Load) -> None:
    """One client: its emails one after the other on one connection, until the gateway dies."""
    client: smtplib.SMTP | None = None
    try:
        for index, (email_id, raw) in enumerate(emails):
            if load.killed.is_set():  # never sent: certainly absent
                with load.changed:
                    load.unanswered.update(e for e, _ in emails[index:])
                return
            try:
                if client is None:
                    client = smtplib.SMTP("127.0.0.1", port, timeout=15)
                client.sendmail(SENDER, [GATEWAY_ADDRESS], raw)
            except (smtplib.SMTPException, OSError) as exc:
                load.settle(email_id, exc)
                if client is not None:
                    client.close()
                    client = None
            else:
                load.settle(email_id, None)
    finally:
        if client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()


@dataclass
class Seen:
    statuses: list[str] = field(default_factory=list)
    sms: list[str] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)
    nots: int = 0


def what_the_api_shows(api_url: str) -> dict[str, Seen]:
    seen: dict[str, Seen] = defaultdict(Seen)
    for email in listing(api_url, "emails"):
        seen[email["email_id"]].statuses.append(email["status"])
    for sms in listing(api_url, "sms"):
        seen[sms["email_id"]].sms.append(sms["to"])
    for reply in listing(api_url, "replies"):
        if reply["kind"] == "ack":
            code = re.search(r"<code>(\d+)</code>", reply["body"])
            assert code is not None
            seen[reply["email_id"]].acks.append(code.group(1))
        else:
            seen[reply["email_id"]].nots += 1
    return dict(seen)


def applied_once(seen: Seen, numbers: list[str], *, duplicates: int = 0) -> bool:
    """Processed once with every SMS and its Not; then Ack 0, plus one Ack 1 per duplicate."""
    return (
        sorted(seen.statuses) == sorted(["processed"] + ["duplicate"] * duplicates)
        and sorted(seen.sms) == sorted(numbers)
        and sorted(seen.acks) == ["0"] + ["1"] * duplicates
        and seen.nots == 1
    )


CLIENTS = 6


def start_clients(port: int, emails: list[tuple[str, bytes]], load: Load) -> list[threading.Thread]:
    threads = [
        threading.Thread(target=send_all, args=(port, emails[n::CLIENTS], load), name=f"client-{n}")
        for n in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may never reap an orphan)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_writer_process_ends_when_its_gateway_is_sigkilled(tmp_path: Path) -> None:
    gateway = GatewayProcess(write_config(tmp_path))
    try:
        (writer,) = _children(gateway.process.pid)
        assert _running(writer)
    finally:
        gateway.kill()
    deadline = time.monotonic() + 10
    while _running(writer) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table: there is no event to wait on
    assert not _running(writer)


def test_sigkill_under_load_keeps_every_250_and_half_applies_nothing(tmp_path: Path) -> None:
    """Six clients send 180 emails (1-3 recipients each); the gateway is SIGKILLed after the
    60th 250. Restarted on the same SQLite file it shows every answered email exactly once, in
    full (status, every SMS, Ack and Not), and each unanswered one in full or not at all; the
    clients' retries of the unanswered ones (and of a few answered ones) then double nothing,
    and the account's credit is debited exactly once per SMS."""
    config = write_config(tmp_path)
    plan: dict[str, list[str]] = {
        str(10_000 + i): [f"07{i:05d}{k:03d}" for k in range(1 + i % 3)] for i in range(180)
    }
    raws = {
        eid: request(eid, numbers, ack="ack@example.com", not_="not@example.com")
        for eid, numbers in plan.items()
    }
    ids = list(plan)
    load = Load()
    first = GatewayProcess(config)
    threads: list[threading.Thread] = []
    try:
        threads = start_clients(first.smtp_port, [(e, raws[e]) for e in ids], load)
        load.wait_answered(60, timeout=30)
    finally:
        load.killed.set()
        first.kill()
        join(threads)
    assert load.errors_before_kill == [], first.log_tail()
    assert load.answered | load.unanswered == set(ids)
    assert not load.answered & load.unanswered
    assert load.unanswered, "the kill came after the last email: nothing was in flight"

    with gateway_process(config) as second:
        seen = what_the_api_shows(second.api_url)
        assert set(seen) <= set(ids)
        for eid in load.answered:
            assert eid in seen and applied_once(seen[eid], plan[eid]), (eid, seen.get(eid))
        committed_unanswered = {eid for eid in load.unanswered if eid in seen}
        for eid in committed_unanswered:
            assert applied_once(seen[eid], plan[eid]), (eid, seen[eid])

        # The clients retry what got no answer; a few answered ones are resent as well.
        retried = sorted(load.unanswered) + sorted(load.answered)[:5]
        again = Load()
        join(start_clients(second.smtp_port, [(e, raws[e]) for e in retried], again))
        assert again.answered == set(retried), again.errors_before_kill

        after = what_the_api_shows(second.api_url)
        assert set(after) == set(ids)
        for eid in ids:
            was_there = eid in load.answered or eid in committed_unanswered
            duplicates = int(was_there and eid in retried)
            assert applied_once(after[eid], plan[eid], duplicates=duplicates), (eid, after[eid])
        with httpx.Client(base_url=second.api_url, timeout=30) as api:
            credit = api.get("/api/v1/accounts/demo").json()["credit"]
        assert credit == CREDIT - sum(len(numbers) for numbers in plan.values())


# --- replies across a crash and a relay outage -------------------------------------------------


def reply_ids(received: list[Received]) -> list[int]:
    found = [MESSAGE_ID.search(message.content) for message in received]
    assert all(found), "a reply without our Message-ID"
    return [int(match.group(1)) for match in found if match is not None]


def send_requests(port: int, raws: list[bytes]) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=15) as client:
        for raw in raws:
            client.sendmail(SENDER, [GATEWAY_ADDRESS], raw)


def all_delivered(api_url: str, count: int, timeout: float) -> list[dict[str, Any]]:
    """The replies once all `count` of them are delivered (the outbox records it after the
    relay's 250); polled, with a deadline."""
    until = time.monotonic() + timeout
    while True:
        replies = listing(api_url, "replies")
        if len(replies) == count and all(r["state"] == "delivered" for r in replies):
            return replies
        if time.monotonic() > until:
            raise AssertionError(f"not all delivered: {Counter(r['state'] for r in replies)}")
        time.sleep(0.05)


BACKOFF = 3.0


def first_attempts_failed(api_url: str) -> bool:
    """Every address's oldest pending reply has failed against the dead relay and waits for
    its backoff (not for a claim's lease of minutes), due in more than a second: until then
    the outbox sends nothing."""
    replies = [r for r in listing(api_url, "replies") if r["state"] == "pending"]
    heads: dict[str, dict[str, Any]] = {}
    for reply in sorted(replies, key=lambda r: r["id"]):
        heads.setdefault(reply["to"], reply)
    now = datetime.now(UTC)
    soon, backoff = now + timedelta(seconds=1), now + timedelta(seconds=BACKOFF + 1)
    return bool(heads) and all(
        head["attempts"] >= 1
        and head["last_error"]
        and soon < datetime.fromisoformat(head["next_attempt_at"]) <= backoff
        for head in heads.values()
    )


def leased(database: Path) -> list[int]:
    """Replies under a claim (a lease of minutes, not a backoff of seconds) in the database."""
    horizon = datetime.now(UTC) + timedelta(seconds=BACKOFF + 5)
    with contextlib.closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            "SELECT id, next_attempt_at FROM replies WHERE state = 'pending' "
            "AND next_attempt_at IS NOT NULL"
        ).fetchall()
    return [
        row_id for row_id, at in rows if datetime.fromisoformat(at).replace(tzinfo=UTC) > horizon
    ]


async def test_replies_pending_at_a_sigkill_are_all_delivered_once_after_restart(
    tmp_path: Path,
) -> None:
    """The relay is down; 12 emails are answered 250 and their 24 replies wait in the outbox
    (each address's oldest one has failed once and waits for its backoff); the gateway is
    SIGKILLed; the relay comes back and the gateway restarts on the same database: all 24
    replies arrive, none twice (by Message-ID), in creation order per recipient.

    The kill is placed while the relay is down on purpose. The outbox delivers at least
    once: a kill between the relay's 250 and the recording of `delivered` (a few ms per
    reply) leaves the reply pending under its claim, and it is delivered again once the
    claim's lease (4 x the 30 s delivery timeout) has expired, with the same Message-ID so
    that the receiver can drop it. That residual window is not exercised here."""
    relay = await Relay().start()
    await relay.stop()  # down, on a port that is known
    config = write_config(
        tmp_path,
        relay={
            "host": "127.0.0.1",
            "port": relay.port,
            "backoff": BACKOFF,
            "max_backoff": BACKOFF,
            "max_attempts": 100,
        },
    )
    raws = [
        request(
            str(500 + i),
            ["0601020304"],
            ack=f"ack{i % 3}@example.com",
            not_="not@example.com" if i % 2 else f"not{i}@example.com",
        )
        for i in range(12)
    ]
    first = await asyncio.to_thread(GatewayProcess, config)
    try:
        await asyncio.to_thread(send_requests, first.smtp_port, raws)
        until = time.monotonic() + 20
        while not await asyncio.to_thread(first_attempts_failed, first.api_url):
            assert time.monotonic() < until, "the outbox did not try the dead relay"
            await asyncio.sleep(0.05)
        await asyncio.to_thread(first.kill)
    finally:
        if first.process.returncode is None:
            await asyncio.to_thread(first.kill)
    assert leased(tmp_path / "gateway.db") == [], "killed during a claim: the test is late"

    await relay.start()
    try:
        second = await asyncio.to_thread(GatewayProcess, config)
        try:
            await relay.wait_for(24, timeout=20)
            replies = await asyncio.to_thread(all_delivered, second.api_url, 24, 20)
        finally:
            await asyncio.to_thread(second.stop)
        received = list(relay.received)  # a late double would be here too
    finally:
        await relay.stop()
    ids = reply_ids(received)
    assert sorted(ids) == sorted(r["id"] for r in replies), "each reply exactly once"
    assert_creation_order(received, replies)


def assert_creation_order(received: list[Received], replies: list[dict[str, Any]]) -> None:
    arrived: dict[str, list[int]] = defaultdict(list)
    for message, reply_id in zip(received, reply_ids(received), strict=True):
        (to,) = message.rcpt_tos
        arrived[to].append(reply_id)
    created: dict[str, list[int]] = defaultdict(list)
    for reply in sorted(replies, key=lambda r: r["id"]):
        created[reply["to"]].append(reply["id"])
    assert arrived == created


async def test_replies_wait_for_a_relay_that_is_down_and_arrive_once_in_order(
    tmp_path: Path,
) -> None:
    """The relay is stopped; 15 emails queue 30 replies to 5 addresses; the outbox retries
    (every address's head fails at least twice); the relay starts again on the same port:
    every reply arrives exactly once, per recipient in the order the replies were created."""
    relay = await Relay().start()
    await relay.stop()
    settings = fixture_settings(
        tmp_path / "g.db",
        {
            "relay": {
                "host": "127.0.0.1",
                "port": relay.port,
                "backoff": 0.05,
                "max_backoff": 0.2,
                "max_attempts": 1000,
            }
        },
    )
    gw = await asyncio.to_thread(RunningGateway, settings)
    try:
        raws = [
            request(
                str(700 + i),
                ["0601020304"],
                ack=f"ack{i % 3}@example.com",
                not_=f"not{i % 2}@example.com",
            )
            for i in range(15)
        ]
        await asyncio.to_thread(send_requests, gw.smtp_port, raws)

        def retried_twice() -> bool:
            pending = [r for r in gw.replies(limit=1000) if r["state"] == "pending"]
            heads: dict[str, int] = {}
            for reply in sorted(pending, key=lambda r: r["id"]):
                heads.setdefault(reply["to"], reply["attempts"])
            return len(heads) == 5 and min(heads.values()) >= 2

        until = time.monotonic() + 20
        while not await asyncio.to_thread(retried_twice):
            assert time.monotonic() < until, "the outbox did not retry the dead relay"
            await asyncio.sleep(0.05)
        assert relay.received == []
        await relay.start()
        await relay.wait_for(30, timeout=20)
        replies = await asyncio.to_thread(all_delivered, gw.api_url, 30, 20)
    finally:
        await asyncio.to_thread(gw.stop)
        await relay.stop()
    received = list(relay.received)
    assert sorted(reply_ids(received)) == sorted(r["id"] for r in replies)
    assert_creation_order(received, replies)
