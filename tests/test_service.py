"""The service's memory of authorised senders: which emails skip the account lookup before
their attachments are decoded (the writer decides each one all the same); the batches handed
to the writer, up to its depth at once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

import pytest

from gateway import service
from gateway.clock import Clock
from gateway.config import load_settings
from gateway.core.model import EmailStatus, Inbound, Intake, MailContent, Request
from gateway.errors import ProcessingError
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.service import AuthorisedSenders, Service
from gateway.store.writer import Written


class _Time:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _email(keyid: str = "demo", sender: str = "app@example.com") -> Inbound:
    request = Request(
        keyid=keyid,
        email_id="1",
        email_ack="",
        email_not="",
        emetteur=None,
        tracker="",
        smslong=None,
        nostop="",
        recipients=(),
        numbered=True,
    )
    content = MailContent(from_address=sender, text="<envoi></envoi>", reason="")
    return Inbound(b"", "app@example.com", "127.0.0.1", content, request)


def test_a_sender_found_authorised_is_known_for_the_window_only() -> None:
    time = _Time()
    senders = AuthorisedSenders(time)
    email = _email()
    assert email not in senders
    senders.add(email)
    assert email in senders
    time.now += service.AUTHORISED_FOR - 0.01
    assert email in senders
    time.now += 0.02
    assert email not in senders


def test_the_keyid_s_surrounding_spaces_do_not_make_another_sender() -> None:
    senders = AuthorisedSenders(_Time())
    senders.add(_email())
    assert _email(keyid=" demo\n") in senders


@pytest.mark.parametrize(
    "other",
    [
        _email(keyid="other"),
        _email(sender="app@elsewhere.test"),
        dataclasses.replace(_email(), envelope_from="bounce@elsewhere.test"),
        dataclasses.replace(_email(), client_ip="127.0.0.2"),
    ],
    ids=["keyid", "from", "envelope sender", "client ip"],
)
def test_an_email_differing_in_what_authorisation_reads_is_another_sender(other: Inbound) -> None:
    senders = AuthorisedSenders(_Time())
    senders.add(_email())
    assert other not in senders


def test_the_senders_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "AUTHORISED_KEPT", 3)
    senders = AuthorisedSenders(_Time())
    emails = [_email(keyid=f"k{n}") for n in range(4)]
    for email in emails[:3]:
        senders.add(email)
    assert all(email in senders for email in emails[:3])
    senders.add(emails[3])  # the fourth: the three before are forgotten
    assert emails[3] in senders
    assert not any(email in senders for email in emails[:3])


# -- the batches handed to the writer ------------------------------------------------------------


class _HeldWriter:
    """A writer whose batches end only when the test lets them, in the order it chooses."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.batches: list[list[str]] = []
        self.held: list[asyncio.Future[None]] = []
        self.given = asyncio.Event()

    def prepare(self, item: Intake) -> Intake:
        return item

    async def apply(self, batch: Sequence[Intake], now: datetime) -> list[Written]:
        senders = [item.envelope_from for item in batch]
        self.batches.append(senders)
        release = asyncio.get_running_loop().create_future()
        self.held.append(release)
        self.given.set()
        await release
        if "fails@example.com" in senders:
            raise ProcessingError("this batch fails")
        return [Written(n, EmailStatus.PROCESSED, ()) for n, _ in enumerate(batch)]

    async def batches_given(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.batches) < count:
                self.given.clear()
                await self.given.wait()

    def close(self) -> None:
        return None


def _from(sender: str) -> Inbound:
    return dataclasses.replace(_email(), envelope_from=sender)


@contextlib.asynccontextmanager
async def _running(writer: _HeldWriter) -> AsyncIterator[Service]:
    async def no_account(keyid: str) -> None:
        return None

    the_service = Service(writer, no_account, Clock(), load_settings(None), Changes(), Metrics())
    loop = asyncio.create_task(the_service.run())
    try:
        async with asyncio.timeout(10):  # a test that waits for nothing fails, not hangs
            yield the_service
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop


async def test_a_writer_of_depth_two_is_given_the_next_batch_while_it_applies_one() -> None:
    """The emails that arrive while the writer holds two batches wait, then go as one; each
    email is answered from its own batch, whichever batch ends first."""
    writer = _HeldWriter(depth=2)
    async with _running(writer) as the_service:
        first = asyncio.create_task(the_service.apply(_from("a@example.com")))
        await writer.batches_given(1)
        second = asyncio.create_task(the_service.apply(_from("b@example.com")))
        await writer.batches_given(2)
        waiting = [asyncio.create_task(the_service.apply(_from(f"{n}@example.com"))) for n in "cd"]
        for _ in range(20):
            await asyncio.sleep(0)
        assert writer.batches == [["a@example.com"], ["b@example.com"]]  # c, d wait
        writer.held[1].set_result(None)
        assert (await second).email_row == 0
        await writer.batches_given(3)
        assert writer.batches[2] == ["c@example.com", "d@example.com"]
        assert not first.done()
        writer.held[0].set_result(None)
        writer.held[2].set_result(None)
        assert (await first).email_row == 0
        assert [written.email_row for written in await asyncio.gather(*waiting)] == [0, 1]


async def test_a_writer_of_depth_one_is_given_one_batch_at_a_time() -> None:
    writer = _HeldWriter(depth=1)
    async with _running(writer) as the_service:
        first = asyncio.create_task(the_service.apply(_from("a@example.com")))
        await writer.batches_given(1)
        second = asyncio.create_task(the_service.apply(_from("b@example.com")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert writer.batches == [["a@example.com"]]
        writer.held[0].set_result(None)
        await first
        await writer.batches_given(2)
        writer.held[1].set_result(None)
        await second


async def test_a_failed_batch_is_retried_alone_beside_the_other_one() -> None:
    """The emails of a batch that failed go again one by one, while the other batch in the
    writer is still applying; only the email that fails alone gets the error."""
    writer = _HeldWriter(depth=2)
    async with _running(writer) as the_service:
        first = asyncio.create_task(the_service.apply(_from("a@example.com")))
        await writer.batches_given(1)
        failing = [
            asyncio.create_task(the_service.apply(_from(sender)))
            for sender in ("fails@example.com", "b@example.com")
        ]
        await writer.batches_given(2)
        assert writer.batches[1] == ["fails@example.com", "b@example.com"]
        writer.held[1].set_result(None)
        await writer.batches_given(3)
        writer.held[2].set_result(None)
        await writer.batches_given(4)
        assert writer.batches[2:] == [["fails@example.com"], ["b@example.com"]]
        writer.held[3].set_result(None)
        with pytest.raises(ProcessingError):
            await failing[0]
        assert (await failing[1]).email_row == 0
        assert not first.done()
        writer.held[0].set_result(None)
        await first
        await the_service.drain(5)
