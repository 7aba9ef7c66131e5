"""The gateway end to end: a real SMTP conversation in, SMS and Ack/Not out (SPEC §2–10)."""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import sqlite3
from collections.abc import Callable
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.testing import RunningGateway
from tests.postgres import PostgresServer
from tests.relay import Relay

REQUESTS = Path(__file__).resolve().parents[1] / "fixtures" / "requests"
PROMO = "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!"
STOP = "\r\nSTOP SMS au 36111"


def _eml(name: str) -> bytes:
    return (REQUESTS / f"{name}.eml").read_bytes()


def _expected(name: str) -> bytes:
    return (REQUESTS / name).read_bytes()


def _body(reply: dict[str, object]) -> bytes:
    assert isinstance(reply["body"], str)
    return reply["body"].encode("iso-8859-1", "xmlcharrefreplace")


def _request(gw: RunningGateway, body: str, sender: str = "app@example.com") -> bytes:
    return gw.request_email(body, sender=sender).as_bytes()


def test_single_recipient_example_sends_one_sms_with_stop(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    gw.send(_eml("single"))
    (sms,) = gw.wait_for_sms(1, email_id="1548")
    assert (sms["to"], sms["sender"], sms["text"]) == ("0601020304", "MaSociete", PROMO + STOP)
    assert (sms["parts"], sms["encoding"], sms["account"]) == (1, "gsm7", "demo")
    assert _body(gw.wait_for_reply("ack", 1548)) == _expected("single.ack.xml")
    assert _body(gw.wait_for_reply("not", 1548)) == _expected("single.not.xml")


@pytest.mark.parametrize("name", ["numx_same_text", "numx_own_text"])
def test_numx_examples_give_numbered_not(gateway_on: RunningGateway, name: str) -> None:
    gw = gateway_on
    gw.send(_eml(name))
    email_id = {"numx_same_text": 1549, "numx_own_text": 1550}[name]
    sent = gw.wait_for_sms(2, email_id=str(email_id))
    assert sorted(s["to"] for s in sent) == ["0601020304", "0601020305"]
    assert _body(gw.wait_for_reply("ack", email_id)) == _expected(f"{name}.ack.xml")
    assert _body(gw.wait_for_reply("not", email_id)) == _expected(f"{name}.not.xml")


def test_own_texts_go_to_their_numbers(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    gw.send(_eml("numx_own_text"))
    texts = {s["to"]: s["text"] for s in gw.wait_for_sms(2)}
    assert texts["0601020304"].startswith("L'été est fini! Super promo -10%")
    assert texts["0601020305"].startswith("L'été est fini! Super promo -20%")


def test_duplicate_email_id_gets_ack_1_and_sends_nothing(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    gw.send(_eml("single"))
    gw.send(_eml("single"))
    acks = gw.replies(kind="ack", email_id="1548")
    assert [_body(a) for a in acks] == [
        _expected("single.duplicate.ack.xml"),
        _expected("single.ack.xml"),
    ]
    assert len(gw.replies(kind="not")) == 1
    assert len(gw.sms()) == 1
    assert [e["status"] for e in gw.emails()] == ["duplicate", "processed"]


def test_missing_email_id_gets_ack_2_and_sends_nothing(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    gw.send(_eml("missing_email_id"))
    (ack,) = gw.replies(kind="ack")
    assert _body(ack) == _expected("missing_email_id.ack.xml")
    assert gw.replies(kind="not") == []
    assert gw.sms() == []


@pytest.mark.parametrize(
    ("keyid", "sender", "code"),
    [("", "app@example.com", 1), ("unknown", "app@example.com", 3), ("demo", "app@evil.test", 30)],
)
def test_unauthorised_email_is_refused_without_any_reply(
    gateway_on: RunningGateway, keyid: str, sender: str, code: int
) -> None:
    gw = gateway_on
    body = (
        f"<envoi><keyid>{keyid}</keyid><num>0601020304</num><sms>x</sms>"
        "<emailAck>ack@masociete.com</emailAck><emailId>1</emailId></envoi>"
    )
    gw.send(_request(gw, body, sender), mail_from=sender)
    (email,) = gw.emails()
    assert (email["status"], email["code"]) == ("refused", code)
    assert gw.replies() == []
    assert gw.sms() == []


@pytest.mark.parametrize(
    ("sender", "status"), [("app@example.com", "processed"), ("app@evil.test", "refused")]
)
def test_an_empty_envelope_sender_leaves_the_from_header_to_decide(
    gateway_on: RunningGateway, sender: str, status: str
) -> None:
    gw = gateway_on
    body = "<envoi><keyid>demo</keyid><num>0601020304</num><sms>x</sms><emailId>1</emailId></envoi>"
    gw.send(_request(gw, body, sender), mail_from="")  # MAIL FROM:<>, as a bounce has
    (email,) = gw.emails()
    assert (email["status"], email["sender"]) == (status, sender)


def test_html_only_mail_is_not_processed(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    message = gw.request_email("")
    message.set_content(
        "<html><body><envoi><keyid>demo</keyid></envoi></body></html>", subtype="html"
    )
    gw.send(message)
    (email,) = gw.emails()
    assert email["status"] == "not_processed"
    assert "text/plain" in email["reason"]
    assert gw.replies() == []


def test_other_recipients_are_refused_with_550(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=30) as client:
        client.ehlo()
        client.mail("app@example.com")
        code, _ = client.rcpt("someone@elsewhere.test")
    assert code == 550


@pytest.mark.mail2sms(config={"smtp": {"max_message_size": 2048}})
def test_message_over_size_gets_552(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    body = "<envoi><keyid>demo</keyid><sms>" + "x" * 4000 + "</sms></envoi>"
    with pytest.raises(smtplib.SMTPException) as raised:
        gw.send(_request(gw, body))
    assert "552" in str(raised.value)
    assert gw.emails() == []


def test_credit_is_debited_per_part_and_runs_out_with_12(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    account = gw.add_account(domains=["example.com"], credit=3)
    body = (
        f"<envoi><keyid>{account['keyid']}</keyid>"
        "<num1>0601020304</num1><num2>0601020305</num2><num3>0601020306</num3>"
        "<sms>" + "a" * 200 + "</sms><smslong>2</smslong>"
        "<emailNot>not@masociete.com</emailNot><emailId>77</emailId></envoi>"
    )
    gw.send(_request(gw, body))
    (email,) = gw.emails()
    assert [r["code"] for r in email["results"]] == [0, 12, 12]
    not_body = gw.wait_for_reply("not", 77)["body"]
    assert "<code2>12</code2>" in not_body
    assert "Votre crédit de MT est épuisé" in not_body
    detail = gw.account(account["keyid"])
    assert detail["credit"] == 1


def _break_sms_inserts(gw: RunningGateway, request: pytest.FixtureRequest, broken: bool) -> None:
    """Make every SMS insert fail (a trigger), or work again, behind the gateway's back."""
    url = make_url(gw.settings.database.url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        with contextlib.closing(sqlite3.connect(url.database)) as db, db:
            db.execute(
                "CREATE TRIGGER no_sms BEFORE INSERT ON sms BEGIN SELECT RAISE(ABORT, 'x'); END"
                if broken
                else "DROP TRIGGER no_sms"
            )
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    assert url.database is not None
    server.sql(
        "CREATE FUNCTION no_sms() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'x'; END $$;"
        " CREATE TRIGGER no_sms BEFORE INSERT ON sms FOR EACH ROW EXECUTE FUNCTION no_sms();"
        if broken
        else "DROP TRIGGER no_sms ON sms; DROP FUNCTION no_sms();",
        url.database,
    )


def test_a_failure_inside_processing_answers_451_and_keeps_nothing(
    gateway_on: RunningGateway, request: pytest.FixtureRequest
) -> None:
    gw = gateway_on
    _break_sms_inserts(gw, request, broken=True)
    with pytest.raises(smtplib.SMTPDataError) as raised:
        gw.send(_eml("single"))
    assert raised.value.smtp_code == 451
    assert gw.emails() == []
    assert gw.replies() == []
    _break_sms_inserts(gw, request, broken=False)
    gw.send(_eml("single"))  # the client's retry is applied in full, once
    assert len(gw.sms()) == 1
    assert [e["status"] for e in gw.emails()] == ["processed"]


def test_state_survives_a_restart(settings_on: Callable[..., Settings]) -> None:
    settings = settings_on()
    first = RunningGateway(settings)
    try:
        first.send(_eml("single"))
    finally:
        first.stop()
    second = RunningGateway(settings)
    try:
        assert len(second.sms()) == 1
        second.send(_eml("single"))
        assert [e["status"] for e in second.emails()] == ["duplicate", "processed"]
    finally:
        second.stop()


async def _states_become(gw: RunningGateway, wanted: set[str], deadline: float) -> bool:
    """Poll the API (the outbox marks a reply after the relay's 250) until the deadline."""
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while loop.time() < until:
        if {r["state"] for r in await asyncio.to_thread(gw.replies)} == wanted:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_replies_reach_the_relay_with_the_exact_bytes(
    settings_on: Callable[..., Settings],
) -> None:
    relay = await Relay().start()
    settings = settings_on({"relay": {"host": "127.0.0.1", "port": relay.port}})
    gw = await asyncio.to_thread(RunningGateway, settings)
    try:
        await asyncio.to_thread(gw.send, _eml("single"))
        received = await relay.wait_for(2, timeout=10)
        by_recipient = {r.rcpt_tos[0]: r for r in received}
        for address, expected in (
            ("ack@masociete.com", "single.ack.xml"),
            ("not@masociete.com", "single.not.xml"),
        ):
            message = message_from_bytes(by_recipient[address].content, policy=policy.default)
            payload = message.get_payload(decode=True)
            assert isinstance(payload, bytes)
            assert payload.replace(b"\r\n", b"\n") == _expected(expected)
            assert message.get_content_charset() == "iso-8859-1"
        assert await _states_become(gw, {"delivered"}, deadline=10)
    finally:
        await asyncio.to_thread(gw.stop)
        await relay.stop()
