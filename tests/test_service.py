"""The service's memory of authorised senders: which emails skip the account lookup before
their attachments are decoded (the writer decides each one all the same); the batches handed
to the writer, up to its depth at once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import socket
from collections.abc import AsyncIterator, Callable, Sequence
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
from gateway.smtp import start_smtp
from gateway.store.batch import Answered
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
    """A writer whose batches end only when the test lets them, in the order it chooses.
    `starts`: it takes batches through `start` (as the process writer does), else `apply`."""

    def __init__(self, depth: int, *, starts: bool = False) -> None:
        self.depth = depth
        self.starts = starts
        self.batches: list[list[str]] = []
        self.held: list[asyncio.Future[None]] = []
        self.answers: list[Callable[[], None]] = []
        self.given = asyncio.Event()

    def prepare(self, item: Intake) -> Intake:
        return item

    def _given(self, batch: Sequence[Intake]) -> asyncio.Future[None]:
        self.batches.append([item.envelope_from for item in batch])
        release = asyncio.get_running_loop().create_future()
        self.held.append(release)
        self.given.set()
        return release

    @staticmethod
    def _outcome(batch: Sequence[Intake]) -> list[Written] | Exception:
        if any(item.envelope_from == "fails@example.com" for item in batch):
            return ProcessingError("this batch fails")
        return [Written(n, EmailStatus.PROCESSED, ()) for n, _ in enumerate(batch)]

    async def apply(self, batch: Sequence[Intake], now: datetime) -> list[Written]:
        await self._given(batch)
        outcome = self._outcome(batch)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def start(self, batch: Sequence[Intake], now: datetime, answered: Answered) -> bool:
        if not self.starts:
            return False
        answer = functools.partial(answered, self._outcome(batch))
        self.answers.append(answer)  # called by the test itself, or once it releases the batch
        self._given(batch).add_done_callback(lambda _: answer())
        return True

    async def batches_given(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.batches) < count:
                self.given.clear()
                await self.given.wait()

    def close(self) -> None:
        return None


def _from(sender: str) -> Inbound:
    return dataclasses.replace(_email(), envelope_from=sender)


_BOTH_WAYS = pytest.mark.parametrize("starts", [False, True], ids=["apply", "start"])


@contextlib.asynccontextmanager
async def _running(writer: _HeldWriter) -> AsyncIterator[Service]:
    async def no_account(keyid: str) -> None:
        return None

    the_service = Service(writer, no_account, Clock(), load_settings(None), Changes(), Metrics())
    try:
        async with asyncio.timeout(10):  # a test that waits for nothing fails, not hangs
            yield the_service
    finally:
        the_service.close()


@_BOTH_WAYS
async def test_a_writer_of_depth_two_is_given_the_next_batch_while_it_applies_one(
    starts: bool,
) -> None:
    """The emails that arrive while the writer holds two batches wait, then go as one; each
    email is answered from its own batch, whichever batch ends first."""
    writer = _HeldWriter(depth=2, starts=starts)
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


@_BOTH_WAYS
async def test_a_writer_of_depth_one_is_given_one_batch_at_a_time(starts: bool) -> None:
    writer = _HeldWriter(depth=1, starts=starts)
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


@_BOTH_WAYS
async def test_a_failed_batch_is_retried_alone_beside_the_other_one(starts: bool) -> None:
    """The emails of a batch that failed go again one by one, while the other batch in the
    writer is still applying; only the email that fails alone gets the error."""
    writer = _HeldWriter(depth=2, starts=starts)
    async with _running(writer) as the_service:
        first = asyncio.create_task(the_service.apply(_from("a@example.com")))
        await writer.batches_given(1)
        second = asyncio.create_task(the_service.apply(_from("x@example.com")))
        await writer.batches_given(2)
        failing = [
            asyncio.create_task(the_service.apply(_from(sender)))
            for sender in ("fails@example.com", "b@example.com")
        ]
        for _ in range(20):
            await asyncio.sleep(0)
        writer.held[1].set_result(None)  # x's batch ends: the two waiting go as one
        assert (await second).email_row == 0
        await writer.batches_given(3)
        assert writer.batches[2] == ["fails@example.com", "b@example.com"]
        writer.held[2].set_result(None)
        await writer.batches_given(4)
        writer.held[3].set_result(None)
        await writer.batches_given(5)
        assert writer.batches[3:] == [["fails@example.com"], ["b@example.com"]]
        writer.held[4].set_result(None)
        with pytest.raises(ProcessingError):
            await failing[0]
        assert (await failing[1]).email_row == 0
        assert not first.done()
        writer.held[0].set_result(None)
        await first
        await the_service.drain(5)


async def test_a_started_batch_s_answer_answers_its_emails_and_hands_the_next_over() -> None:
    """The writer's answer to a batch it took through `start`: in that same call, with no
    task's turn in between, each email's `answer` is told its result and the emails waiting
    go to the writer as the next batch."""
    writer = _HeldWriter(depth=1, starts=True)
    told: list[tuple[str, int]] = []
    async with _running(writer) as the_service:

        def applied(sender: str) -> asyncio.Task[Written]:
            def answer(written: Written) -> None:
                told.append((sender, written.email_row))

            return asyncio.create_task(the_service.apply(_from(sender), answer=answer))

        first = applied("a@example.com")
        await writer.batches_given(1)
        waiting = [applied(f"{n}@example.com") for n in "bc"]
        for _ in range(20):
            await asyncio.sleep(0)
        assert writer.batches == [["a@example.com"]]
        writer.answers[0]()  # the writer's answer, as the process writer's socket gives it
        assert told == [("a@example.com", 0)]
        assert writer.batches == [["a@example.com"], ["b@example.com", "c@example.com"]]
        assert not first.done()  # its future is set: the task has its turn later
        writer.answers[1]()
        assert told[1:] == [("b@example.com", 0), ("c@example.com", 1)]
        assert (await first).email_row == 0
        assert [w.email_row for w in await asyncio.gather(*waiting)] == [0, 1]
        await the_service.drain(5)


async def test_a_batch_that_fails_once_the_service_is_closed_is_not_applied_again() -> None:
    """After close (the gateway stopping, its writer gone), a batch's failure is each of its
    emails' error: nothing is applied again one by one, which would start a writer anew."""
    writer = _HeldWriter(depth=1, starts=True)
    async with _running(writer) as the_service:
        emails = [
            asyncio.create_task(the_service.apply(_from(sender)))
            for sender in ("fails@example.com", "b@example.com")
        ]
        await writer.batches_given(1)
        assert writer.batches == [["fails@example.com", "b@example.com"]]
        the_service.close()
        writer.answers[0]()
        for email in emails:
            with pytest.raises(ProcessingError):
                await email
        assert len(writer.batches) == 1
        await the_service.drain(5)


async def test_an_smtp_client_has_its_250_the_moment_the_writer_answers() -> None:
    """The email's `250` is written by the writer's answer itself, before the session's task
    has another turn; the DATA command then answers nothing more (QUIT's 221 comes next)."""
    writer = _HeldWriter(depth=1, starts=True)
    settings = load_settings(None)
    async with _running(writer) as the_service:
        server, port = await start_smtp(the_service, settings.smtp)
        loop = asyncio.get_running_loop()
        client = socket.socket()
        client.setblocking(False)
        try:
            await loop.sock_connect(client, ("127.0.0.1", port))

            async def said(line: bytes, code: bytes) -> None:
                if line:
                    await loop.sock_sendall(client, line)
                data = b""
                while not data.endswith(b"\r\n") or data.splitlines()[-1][3:4] == b"-":
                    data += await loop.sock_recv(client, 4096)
                assert data.startswith(code), data

            await said(b"", b"220")
            await said(b"EHLO client.example.com\r\n", b"250")
            await said(b"MAIL FROM:<app@example.com>\r\n", b"250")
            await said(b"RCPT TO:<sendsms@isendpro-api.com>\r\n", b"250")
            await said(b"DATA\r\n", b"354")
            await loop.sock_sendall(client, b"Subject: x\r\n\r\n<envoi></envoi>\r\n.\r\n")
            await writer.batches_given(1)
            writer.answers[0]()  # no await from here to the read
            assert client.recv(4096) == b"250 2.0.0 OK: applied as email 0\r\n"
            await said(b"QUIT\r\n", b"221")
        finally:
            client.close()
            server.close()
            await server.wait_closed()
