"""Reply delivery: the message bytes (mailer) and the outbox worker against a real SMTP relay."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config import RelaySettings
from gateway.errors import DeliveryError, PermanentDeliveryError
from gateway.events import Changes
from gateway.mailer import build_reply, deliver
from gateway.metrics import Metrics
from gateway.outbox import Outbox
from gateway.store.engine import make_engine, write_transaction
from gateway.store.tables import emails, replies
from tests.database import with_demo_account
from tests.relay import Relay

SENDER = "noreply@isendpro-api.com"
CREATED = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
ACK = "ack@masociete.com"
NOT = "not@masociete.com"


def ack_body(email_id: str) -> str:
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<etatAck>\n'
        f"<emailId>{email_id}</emailId>\n<code>0</code>\n"
        "<message>Votre email a bien ete traite</message>\n</etatAck>\n"
    )


# Latin-1 letters go as bytes, "€" and "œ" as character references.
NOT_BODY = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n<etatNot>\n<emailId>1548</emailId>\n'
    "</etatNot>\n<etat>\n<code>0</code>\n<tel>0601020304</tel>\n"
    "<message>Votre message a bien été envoyé (5 €, cœur)</message>\n</etat>\n"
)


def wire_body(body: str) -> bytes:
    return re.sub(rb"\r\n|\r|\n", b"\r\n", body.encode("iso-8859-1", "xmlcharrefreplace"))


# --- the message ---------------------------------------------------------------------------


def build(**overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "kind": "not",
        "to": NOT,
        "email_id": "1548",
        "body": NOT_BODY,
        "sender": SENDER,
        "reply_id": 42,
        "date": CREATED,
    }
    return build_reply(**(fields | overrides))


def test_reply_body_decodes_to_the_latin1_bytes_with_crlf_line_endings() -> None:
    message = email.message_from_bytes(build(), policy=email.policy.default)
    assert message["Content-Type"] == 'text/plain; charset="ISO-8859-1"'
    assert message["Content-Transfer-Encoding"] == "8bit"
    assert message.get_payload(decode=True) == wire_body(NOT_BODY)
    assert b"&#8364;" in wire_body(NOT_BODY) and b"\xe9t\xe9" in wire_body(NOT_BODY)


def test_reply_is_crlf_throughout() -> None:
    raw = build(body="line one\nline two\r\nline three\rlast")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert raw.endswith(b"\r\n\r\nline one\r\nline two\r\nline three\r\nlast\r\n")


def test_reply_headers() -> None:
    message = email.message_from_bytes(build(), policy=email.policy.default)
    assert message["From"] == SENDER
    assert message["To"] == NOT
    assert message["Subject"] == "Not emailId 1548"
    assert message["Date"].datetime == CREATED
    assert message["MIME-Version"] == "1.0"
    assert message["Message-ID"] == "<reply-42.20261201090000@isendpro-api.com>"


def test_reply_subject_shows_a_question_mark_without_email_id() -> None:
    message = email.message_from_bytes(
        build(kind="ack", email_id=None), policy=email.policy.default
    )
    assert message["Subject"] == "Ack emailId ?"


def test_reply_subject_cannot_carry_a_new_header() -> None:
    raw = build(email_id="1\r\nBcc: x@evil.test")
    assert b"\r\nBcc:" not in raw


def test_message_id_is_the_same_for_the_same_reply_only() -> None:
    assert build() == build()
    first = email.message_from_bytes(build())["Message-ID"]
    assert email.message_from_bytes(build(reply_id=43))["Message-ID"] != first


def test_reply_with_a_line_over_998_octets_goes_quoted_printable() -> None:
    body = "<etat>\n<tel>" + "é" * 1200 + "</tel>\n</etat>\n"
    raw = build(body=body)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert message.get_payload(decode=True) == wire_body(body)


@pytest.mark.parametrize("to", ["a@b.c\r\nBcc: x@y.z", "a@b.c, d@e.f", "<a@b.c>", "nobody"])
def test_reply_refuses_anything_but_one_plain_address(to: str) -> None:
    with pytest.raises(ValueError, match="to address"):
        build(to=to)


# --- one delivery ----------------------------------------------------------------------------


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    relay = await Relay().start()
    yield relay
    relay.release()
    await relay.stop()


async def test_deliver_hands_over_the_exact_bytes(relay: Relay) -> None:
    await deliver(relay.host, relay.port, SENDER, NOT, build(), timeout=5)
    [received] = await relay.wait_for(1)
    assert received.mail_from == SENDER
    assert received.rcpt_tos == (NOT,)
    assert received.content == build()


async def test_deliver_reports_a_451_as_temporary(relay: Relay) -> None:
    relay.refuse("451 4.3.0 Try again later")
    with pytest.raises(DeliveryError, match="451") as caught:
        await deliver(relay.host, relay.port, SENDER, NOT, build(), timeout=5)
    assert not isinstance(caught.value, PermanentDeliveryError)


@pytest.mark.parametrize("at", ["rcpt", "data"])
async def test_deliver_reports_a_550_as_permanent(relay: Relay, at: Any) -> None:
    relay.refuse("550 5.1.1 No such user", at=at)
    with pytest.raises(PermanentDeliveryError, match="550"):
        await deliver(relay.host, relay.port, SENDER, NOT, build(), timeout=5)


async def test_deliver_reports_a_relay_that_is_down(relay: Relay) -> None:
    await relay.stop()
    with pytest.raises(DeliveryError, match="cannot be reached") as caught:
        await deliver(relay.host, relay.port, SENDER, NOT, build(), timeout=5)
    assert not isinstance(caught.value, PermanentDeliveryError)


async def test_deliver_gives_up_on_a_relay_that_does_not_answer(relay: Relay) -> None:
    relay.hold()
    with pytest.raises(DeliveryError, match=r"did not answer within 0\.2 s"):
        await deliver(relay.host, relay.port, SENDER, NOT, build(), timeout=0.2)


# --- the outbox ------------------------------------------------------------------------------


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (each backend in turn, see conftest) with one account and one
    inbound email the replies belong to."""
    async with with_demo_account(database_url, CREATED) as (engine, account_id):
        async with write_transaction(engine) as conn:
            await conn.execute(
                insert(emails).values(
                    id=1,
                    received_at=CREATED,
                    status="processed",
                    account_id=account_id,
                    results=[],
                    warnings=[],
                    raw=b"",
                )
            )
        yield engine


async def queue(engine: AsyncEngine, *recipients: str) -> list[int]:
    """Pending replies to these addresses, in this order; their ids."""
    ids: list[int] = []
    async with write_transaction(engine) as conn:
        for n, to in enumerate(recipients):
            reply_id = await conn.scalar(
                insert(replies)
                .returning(replies.c.id)
                .values(
                    email_row=1,
                    kind="ack",
                    to=to,
                    email_id=str(n),
                    body=ack_body(str(n)),
                    state="pending",
                    created_at=CREATED + timedelta(seconds=n),
                )
            )
            ids.append(reply_id)
    return ids


async def rows(engine: AsyncEngine) -> dict[int, Any]:
    async with engine.connect() as conn:
        return {row.id: row for row in await conn.execute(select(replies))}


@dataclass
class Worker:
    """One outbox with the change feed and metrics it reports to."""

    outbox: Outbox
    changes: Changes
    metrics: Metrics

    async def deliver_due(self, now: datetime) -> int:
        return await self.outbox.deliver_due(now)

    async def drain(self, now: datetime) -> int:
        """Rounds until one changes nothing; how many replies were delivered."""
        total = 0
        for _ in range(100):
            seen = self.changes.versions["replies"]
            total += await self.outbox.deliver_due(now)
            if self.changes.versions["replies"] == seen:
                return total
        raise AssertionError("the outbox never ran dry")

    def count(self, state: str) -> float | None:
        return self.metrics.registry.get_sample_value("mail2sms_replies_total", {"state": state})


def make_worker(
    engine: AsyncEngine, relay: Relay, *, concurrency: int = 10, **settings: Any
) -> Worker:
    changes, metrics = Changes(), Metrics()
    relay_settings = RelaySettings(host=relay.host, port=relay.port, **settings)
    outbox = Outbox(engine, relay_settings, changes, metrics, concurrency=concurrency, timeout=5)
    return Worker(outbox, changes, metrics)


def message_ids(received: Sequence[Any]) -> list[str]:
    return [str(email.message_from_bytes(r.content)["Message-ID"]) for r in received]


def email_ids(received: Sequence[Any], to: str) -> list[str]:
    return [
        str(email.message_from_bytes(r.content)["Subject"]).rpartition(" ")[2]
        for r in received
        if r.rcpt_tos == (to,)
    ]


async def test_reply_is_delivered_once_with_the_exact_bytes(
    engine: AsyncEngine, relay: Relay
) -> None:
    [reply_id] = await queue(engine, ACK)
    worker, now = make_worker(engine, relay), datetime.now(UTC)
    assert await worker.deliver_due(now) == 1
    assert await worker.deliver_due(now + timedelta(days=1)) == 0
    [received] = await relay.wait_for(1)
    assert received.content == build_reply(
        kind="ack",
        to=ACK,
        email_id="0",
        body=ack_body("0"),
        sender=SENDER,
        reply_id=reply_id,
        date=CREATED,
    )
    row = (await rows(engine))[reply_id]
    assert (row.state, row.attempts, row.delivered_at, row.last_error) == ("delivered", 1, now, "")
    assert worker.count("delivered") == 1


async def test_delivery_publishes_the_change(engine: AsyncEngine, relay: Relay) -> None:
    await queue(engine, ACK)
    worker = make_worker(engine, relay)
    await worker.deliver_due(datetime.now(UTC))
    assert worker.changes.versions["replies"] == 1


async def test_interrupted_delivery_is_sent_again_after_the_lease_with_the_same_bytes(
    engine: AsyncEngine, relay: Relay
) -> None:
    await queue(engine, ACK)
    worker, now = make_worker(engine, relay), datetime.now(UTC)
    relay.hold()  # the relay has the message; the worker dies before it hears 250
    round_ = asyncio.create_task(worker.deliver_due(now))
    await relay.wait_for(1)
    round_.cancel()
    with pytest.raises(asyncio.CancelledError):
        await round_
    relay.release()
    assert await worker.deliver_due(now + timedelta(seconds=19)) == 0  # still leased
    assert await worker.deliver_due(now + timedelta(seconds=21)) == 1  # lease 4 × 5 s
    first, second = await relay.wait_for(2)
    assert first.content == second.content
    assert message_ids([first]) == message_ids([second])


async def test_a_451_is_retried_after_the_backoff(engine: AsyncEngine, relay: Relay) -> None:
    [reply_id] = await queue(engine, ACK)
    worker, now = make_worker(engine, relay, backoff=30), datetime.now(UTC)
    relay.refuse("451 4.3.0 Try again later", times=1)
    assert await worker.deliver_due(now) == 0
    row = (await rows(engine))[reply_id]
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert "451 4.3.0 Try again later" in row.last_error
    assert await worker.deliver_due(now + timedelta(seconds=29)) == 0
    assert await worker.deliver_due(now + timedelta(seconds=30)) == 1
    assert len(await relay.wait_for(1)) == 1
    assert (await rows(engine))[reply_id].attempts == 2


async def test_backoff_doubles_up_to_its_cap(engine: AsyncEngine, relay: Relay) -> None:
    [reply_id] = await queue(engine, ACK)
    worker = make_worker(engine, relay, backoff=1, max_backoff=5)
    relay.refuse("451 4.3.0 Try again later")
    now, delays = datetime.now(UTC), []
    for _ in range(5):
        await worker.deliver_due(now)
        next_attempt_at = (await rows(engine))[reply_id].next_attempt_at
        delays.append((next_attempt_at - now).total_seconds())
        now = next_attempt_at
    assert delays == [1, 2, 4, 5, 5]


async def test_a_550_fails_the_reply_and_frees_the_next_one(
    engine: AsyncEngine, relay: Relay
) -> None:
    first, second = await queue(engine, ACK, ACK)
    worker, now = make_worker(engine, relay), datetime.now(UTC)
    relay.refuse("550 5.1.1 No such user", times=1, at="rcpt")
    assert await worker.drain(now) == 1
    states = await rows(engine)
    assert (states[first].state, states[first].attempts) == ("failed", 1)
    assert "550 5.1.1 No such user" in states[first].last_error
    assert states[second].state == "delivered"
    assert worker.count("failed") == 1


async def test_reply_fails_after_max_attempts(engine: AsyncEngine, relay: Relay) -> None:
    [reply_id] = await queue(engine, ACK)
    worker, now = make_worker(engine, relay, max_attempts=3), datetime.now(UTC)
    relay.refuse("451 4.3.0 Try again later")
    for hours in range(3):
        await worker.deliver_due(now + timedelta(hours=hours))
    row = (await rows(engine))[reply_id]
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 3, None)
    assert await worker.deliver_due(now + timedelta(days=1)) == 0
    assert worker.count("failed") == 1


async def test_a_reply_that_cannot_be_built_fails_at_once(
    engine: AsyncEngine, relay: Relay
) -> None:
    [reply_id] = await queue(engine, "two@a.test, three@b.test")
    worker = make_worker(engine, relay)
    assert await worker.deliver_due(datetime.now(UTC)) == 0
    row = (await rows(engine))[reply_id]
    assert row.state == "failed"
    assert "not one plain email address" in row.last_error


async def test_relay_down_then_back_delivers_each_reply_once_in_order(
    engine: AsyncEngine, relay: Relay
) -> None:
    await queue(engine, ACK, NOT, ACK, ACK, NOT, ACK)
    worker, now = make_worker(engine, relay), datetime.now(UTC)
    await relay.stop()
    assert await worker.deliver_due(now) == 0
    attempts = {row.id: row.attempts for row in (await rows(engine)).values()}
    assert sorted(attempts.values()) == [0, 0, 0, 0, 1, 1]  # only the head of each address
    await relay.start()
    assert await worker.drain(now + timedelta(minutes=5)) == 6
    received = await relay.wait_for(6)
    assert len(received) == 6
    assert email_ids(received, ACK) == ["0", "2", "3", "5"]
    assert email_ids(received, NOT) == ["1", "4"]


async def test_a_recipient_waiting_for_a_retry_does_not_hold_back_another(
    engine: AsyncEngine, relay: Relay
) -> None:
    await queue(engine, ACK, NOT, ACK, NOT)
    worker, now = make_worker(engine, relay), datetime.now(UTC)
    relay.refuse("451 4.2.1 Mailbox busy", at="rcpt", to=ACK)
    assert await worker.drain(now) == 2
    received = await relay.wait_for(2)
    assert email_ids(received, NOT) == ["1", "3"]
    assert email_ids(received, ACK) == []


async def test_two_workers_on_one_database_deliver_each_reply_exactly_once(
    engine: AsyncEngine, database_url: str, relay: Relay
) -> None:
    recipients = [f"r{n % 5}@masociete.com" for n in range(40)]
    ids = await queue(engine, *recipients)
    other_engine = make_engine(database_url)
    try:
        # Two replies at a time each, so that the five addresses are shared out between them.
        first = make_worker(engine, relay, concurrency=2)
        second = make_worker(other_engine, relay, concurrency=2)
        now, totals = datetime.now(UTC), [0, 0]
        for _ in range(100):
            rounds = await asyncio.gather(first.deliver_due(now), second.deliver_due(now))
            if not any(rounds):
                break
            totals = [total + delivered for total, delivered in zip(totals, rounds, strict=True)]
    finally:
        await other_engine.dispose()
    assert sum(totals) == 40
    assert min(totals) > 0
    received = await relay.wait_for(40)
    assert len(received) == 40
    assert len(set(message_ids(received))) == 40
    for address in set(recipients):
        expected = [str(n) for n, to in enumerate(recipients) if to == address]
        assert email_ids(received, address) == expected
    assert {row.state for row in (await rows(engine)).values()} == {"delivered"}
    assert sorted(await rows(engine)) == ids


class WatchedChanges(Changes):
    """Changes that tell when someone starts waiting on them."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        self.waiting.set()
        return await super().wait(timeout)


async def run_until_idle(outbox: Outbox, changes: WatchedChanges) -> asyncio.Task[None]:
    task = asyncio.create_task(outbox.run())
    async with asyncio.timeout(5):
        await changes.waiting.wait()
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_run_wakes_on_a_published_reply_before_its_poll(
    engine: AsyncEngine, relay: Relay
) -> None:
    changes = WatchedChanges()
    outbox = Outbox(
        engine, RelaySettings(host=relay.host, port=relay.port), changes, Metrics(), poll=60
    )
    task = await run_until_idle(outbox, changes)
    try:
        await queue(engine, ACK)
        changes.publish(["replies"])
        await relay.wait_for(1, timeout=5)
    finally:
        await stop(task)


async def test_run_survives_a_failing_round(
    engine: AsyncEngine, relay: Relay, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    changes = WatchedChanges()
    outbox = Outbox(
        engine, RelaySettings(host=relay.host, port=relay.port), changes, Metrics(), poll=60
    )
    deliver_due = outbox.deliver_due

    async def broken_once(now: datetime) -> int:
        monkeypatch.setattr(outbox, "deliver_due", deliver_due)
        raise RuntimeError("database went away")

    monkeypatch.setattr(outbox, "deliver_due", broken_once)
    task = await run_until_idle(outbox, changes)
    try:
        assert "database went away" in caplog.text
        await queue(engine, ACK)
        changes.publish(["replies"])
        await relay.wait_for(1, timeout=5)
    finally:
        await stop(task)


async def test_without_a_relay_host_nothing_is_delivered(engine: AsyncEngine) -> None:
    await queue(engine, ACK)
    outbox = Outbox(engine, RelaySettings(), Changes(), Metrics())
    assert await outbox.deliver_due(datetime.now(UTC)) == 0
    async with asyncio.timeout(5):
        await outbox.run()  # returns at once
    assert {row.state for row in (await rows(engine)).values()} == {"pending"}
