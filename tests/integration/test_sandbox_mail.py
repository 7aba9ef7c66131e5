"""The shared sandbox on the mail side (SPEC §16): work per email bounded and in the right
order — the sender authorised before attachments are decoded or a CSV read, MIME parts
capped, big emails read off the event loop — through a real SMTP conversation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from gateway import service
from gateway.core import csvmerge, intake, mime
from gateway.core.model import Account, Inbound, Intake
from gateway.testing import RunningGateway

CAMPAIGN = (
    "<envoi><keyid>{keyid}</keyid><emetteur>MaSociete</emetteur><emailId>{email_id}</emailId>"
    "<emailNot>not@example.com</emailNot></envoi>"
)
ONE_NUMBER = "<num>0601020304</num><sms>x</sms>"
# A request of 300 numbers (~9 KiB): its reading takes long enough to be worth a thread.
NUMBERS_300 = "".join(f"<num{n}>06010{n:05d}</num{n}>" for n in range(1, 301)) + "<sms>x</sms>"


def _request(email_id: int, recipients: str) -> str:
    """The demo account's campaign body with these recipients and their text."""
    return CAMPAIGN.format(keyid="demo", email_id=email_id).replace(
        "</envoi>", f"{recipients}</envoi>"
    )


@pytest.fixture
def merges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The size of each mobiles.csv the gateway merged (in this process: the fixture's
    gateway runs on a thread of the test's process)."""
    seen: list[int] = []
    merge = csvmerge.merge

    def spy(mobiles: bytes, message: bytes, **options: int | None) -> object:
        seen.append(len(mobiles))
        return merge(mobiles, message, **options)

    monkeypatch.setattr(csvmerge, "merge", spy)
    yield seen


@pytest.fixture
def lookups(mail2sms_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keyids whose account the gateway looked up before decoding an email's attachments
    (an authorised sender remembered for an hour: however slow the machine, the emails of a
    test fall within the window)."""
    monkeypatch.setattr(service, "AUTHORISED_FOR", 3600.0)
    seen: list[str] = []
    submitted = mail2sms_gateway.gateway.service
    lookup = submitted._lookup

    async def spy(keyid: str) -> Account | None:
        seen.append(keyid)
        return await lookup(keyid)

    monkeypatch.setattr(submitted, "_lookup", spy)
    return seen


def _csv_email(gw: RunningGateway, keyid: str, email_id: int, lines: int) -> bytes:
    mobiles = b"".join(b"0612%06d;;v\n" % n for n in range(lines))
    message = gw.request_email(
        CAMPAIGN.format(keyid=keyid, email_id=email_id),
        attachments=[("mobiles.csv", mobiles), ("message.csv", b"Bonjour [1]\n")],
    )
    return message.as_bytes()


def test_an_unknown_keyid_s_csv_is_never_read(
    mail2sms_gateway: RunningGateway, merges: list[int]
) -> None:
    gw = mail2sms_gateway
    assert gw.send(_csv_email(gw, "nobody", 1, 150_000)).startswith("250")
    (email,) = gw.emails()
    assert (email["status"], email["code"]) == ("refused", 3)
    assert merges == []


def test_a_foreign_domain_s_csv_is_never_read(
    mail2sms_gateway: RunningGateway, merges: list[int]
) -> None:
    gw = mail2sms_gateway
    raw = _csv_email(gw, "demo", 2, 10).replace(b"app@example.com", b"app@elsewhere.test")
    assert gw.send(raw).startswith("250")
    assert gw.emails()[0]["code"] == 30
    assert merges == []


def test_an_authorised_csv_is_read_and_sent(
    mail2sms_gateway: RunningGateway, merges: list[int]
) -> None:
    gw = mail2sms_gateway
    gw.send(_csv_email(gw, "demo", 3, 3))
    assert len(gw.wait_for_sms(count=3)) == 3
    assert len(merges) == 1


def test_an_authorised_sender_s_next_csv_is_read_without_a_lookup(
    mail2sms_gateway: RunningGateway, merges: list[int], lookups: list[str]
) -> None:
    gw = mail2sms_gateway
    gw.send(_csv_email(gw, "demo", 10, 3))
    gw.send(_csv_email(gw, "demo", 11, 2))
    assert len(gw.wait_for_sms(count=5)) == 5
    assert lookups == ["demo"]
    assert len(merges) == 2


def test_a_sender_refused_since_its_last_csv_is_refused_all_the_same(
    mail2sms_gateway: RunningGateway, lookups: list[str]
) -> None:
    """Within the window the CSV is read without a lookup; the writer's decision, on the
    account as it is now, refuses the email."""
    gw = mail2sms_gateway
    gw.send(_csv_email(gw, "demo", 12, 3))
    gw.update_account(domains=["elsewhere.test"])
    gw.send(_csv_email(gw, "demo", 13, 3))
    refused, sent = gw.emails()
    assert (sent["status"], refused["status"], refused["code"]) == ("processed", "refused", 30)
    assert len(gw.sms()) == 3
    assert lookups == ["demo"]


def test_an_unauthorised_sender_is_looked_up_at_each_email(
    mail2sms_gateway: RunningGateway, merges: list[int], lookups: list[str]
) -> None:
    gw = mail2sms_gateway
    for email_id in (14, 15):
        gw.send(_csv_email(gw, "nobody", email_id, 3))
    assert lookups == ["nobody", "nobody"]
    assert merges == []


def test_an_authorised_huge_csv_is_23_after_reading_past_the_limit_only(
    mail2sms_gateway: RunningGateway,
) -> None:
    gw = mail2sms_gateway
    gw.send(_csv_email(gw, "demo", 4, 150_000))
    report = gw.wait_for_reply("not", 4)
    assert "<code>23</code>" in report["body"]
    assert gw.sms() == []


def test_an_email_of_too_many_mime_parts_is_not_processed(
    mail2sms_gateway: RunningGateway,
) -> None:
    gw = mail2sms_gateway
    parts = [(f"part{n}.txt", b"x") for n in range(2 * mime.MAX_PARTS)]
    raw = gw.request_email(CAMPAIGN.format(keyid="demo", email_id=5), attachments=parts)
    assert gw.send(raw).startswith("250")
    (email,) = gw.emails()
    assert email["status"] == "not_processed"
    assert f"more than {mime.MAX_PARTS} MIME parts" in email["reason"]
    assert email["sender"] == "app@example.com"


def test_a_big_email_is_read_off_the_event_loop(
    mail2sms_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gw = mail2sms_gateway
    threads: list[str] = []
    read = intake.read_named

    def spy(raw: bytes, **options: object) -> object:
        threads.append(threading.current_thread().name)
        return read(raw, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(intake, "read_named", spy)
    small = gw.request_email(_request(6, ONE_NUMBER))
    gw.send(small)
    big = gw.request_email(_request(7, ONE_NUMBER) + "\n" + "y" * 200_000)
    gw.send(big)
    many = gw.request_email(_request(8, NUMBERS_300))
    assert len(many.as_bytes()) > service.OFF_LOOP_BYTES
    gw.send(many)
    assert threads[0] == "mail2sms"  # the gateway's event loop thread
    assert threads[1] != "mail2sms" and threads[2] != "mail2sms"


def test_a_big_email_is_made_ready_for_the_writer_off_the_event_loop(
    mail2sms_gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch, lookups: list[str]
) -> None:
    """The writer's `prepare` (the process writer pickles there) runs in the thread that read
    the email, once it is whole; a small email, one whose attachments are left unread, or one
    over PREPARED_MAX_BYTES reaches the writer as read."""
    gw = mail2sms_gateway
    submitted = gw.gateway.service
    prepare = submitted._writer.prepare
    prepared: list[tuple[str, str, int]] = []

    def spy(item: Intake) -> object:
        assert isinstance(item, Inbound) and item.request is not None
        request = item.request
        prepared.append(
            (threading.current_thread().name, request.email_id, len(request.recipients))
        )
        return prepare(item)

    monkeypatch.setattr(submitted._writer, "prepare", spy)
    small = _request(20, ONE_NUMBER)
    gw.send(gw.request_email(small))
    many = _request(21, NUMBERS_300)
    gw.send(gw.request_email(many))
    gw.send(_csv_email(gw, "nobody", 22, 400))
    gw.send(_csv_email(gw, "demo", 23, 400))  # looked up, then its attachments decoded
    gw.send(_csv_email(gw, "demo", 24, 400))  # known: decoded with its body
    monkeypatch.setattr(service, "PREPARED_MAX_BYTES", 100_000)
    padded = gw.request_email(many.replace("<emailId>21<", "<emailId>25<") + "\n" + "y" * 100_000)
    gw.send(padded)  # too big to be held twice while it waits: pickled with its batch
    assert lookups == ["nobody", "demo"]
    assert [(email_id, count) for _, email_id, count in prepared] == [
        ("21", 300),
        ("23", 400),
        ("24", 400),
    ]
    assert "mail2sms" not in {thread for thread, _, _ in prepared}  # never the event loop's
    assert [e["status"] for e in gw.emails()] == [
        "processed",
        "processed",
        "processed",
        "refused",
        "processed",
        "processed",
    ]  # newest first


def test_a_refused_email_keeps_only_raw_max_bytes_of_itself(
    mail2sms_gateway: RunningGateway,
) -> None:
    gw = mail2sms_gateway
    body = CAMPAIGN.format(keyid="nobody", email_id=8) + "\n" + "z" * 200_000
    gw.send(gw.request_email(body))
    (email,) = gw.emails()
    raw = httpx.get(email["raw_url"], timeout=10).content
    assert len(raw) == 64 * 1024
    assert any("cut to its first 65536" in warning for warning in email["warnings"])


def test_a_processed_email_is_kept_whole(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    body = _request(9, ONE_NUMBER) + "\n" + "z" * 100_000
    sent = gw.request_email(body).as_bytes()
    gw.send(sent)
    (email,) = gw.emails()
    assert len(httpx.get(email["raw_url"], timeout=10).content) > 100_000
