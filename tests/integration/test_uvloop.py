"""The gateway on uvloop's event loop (runtime.event_loop = "uvloop"): the same conversations,
answers and writes as on asyncio's, through the paths that touch the loop's transports
directly (the writer process's socket, a connection refused or shed, STARTTLS)."""

from __future__ import annotations

import smtplib
import ssl
from email import policy
from pathlib import Path

import pytest
import uvloop

from gateway.client import request_body
from gateway.testing import RunningGateway
from tests.integration.test_durability import gateway_process, listing, write_config
from tests.integration.test_smtp_sessions import Peer, greeted
from tests.integration.test_smtp_sessions import peers as peers  # the fixture

ON_UVLOOP = {"runtime": {"event_loop": "uvloop"}}


def _body(email_id: str) -> str:
    return request_body(
        [
            ("keyid", "demo"),
            ("num", "0601020304"),
            ("sms", "Bonjour"),
            ("emetteur", "MaSociete"),
            ("emailId", email_id),
        ]
    )


def _send(gw: RunningGateway, client: smtplib.SMTP, email_id: str) -> None:
    raw = gw.request_email(_body(email_id)).as_bytes(policy=policy.SMTP)
    client.sendmail("app@example.com", [gw.address], raw)


@pytest.mark.mail2sms(config=ON_UVLOOP)
def test_the_gateway_runs_on_uvloop_and_applies_an_email(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    assert isinstance(gw._loop, uvloop.Loop)
    with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10) as client:
        _send(gw, client, "1")
    (sms,) = gw.wait_for_sms(1)
    assert (sms["to"], sms["text"]) == ("0601020304", "Bonjour\r\nSTOP SMS au 36111")


@pytest.mark.mail2sms(
    config={"smtp": {"starttls": True, "auth": "accounts"}, **ON_UVLOOP},
)
def test_starttls_and_login_on_uvloop(gateway_on: RunningGateway) -> None:
    gw = gateway_on
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10) as client:
        client.starttls(context=context)
        client.login("demo", "demo")
        _send(gw, client, "2")
    assert len(gw.wait_for_sms(1)) == 1


@pytest.mark.mail2sms(config={"smtp": {"max_connections": 1}, **ON_UVLOOP})
def test_a_connection_over_the_cap_is_refused_and_an_idle_one_shed_on_uvloop(
    gateway_on: RunningGateway, peers: list[Peer]
) -> None:
    gw = gateway_on
    holder = greeted(gw, peers)
    assert holder.command(b"HELO holder.example").startswith(b"250 ")
    assert holder.command(b"MAIL FROM:<app@example.com>").startswith(b"250 ")
    refused = Peer(gw)  # the only slot is in a transaction: never shed
    peers.append(refused)
    assert refused.reply().startswith(b"421 ")
    assert refused.reply() == b""  # and closed

    assert holder.command(b"RSET").startswith(b"250 ")  # idle now: shed for the next client
    with smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10) as client:
        _send(gw, client, "3")
        assert holder.reply().startswith(b"421 4.7.0 ")
        assert holder.reply() == b""
    assert len(gw.wait_for_sms(1)) == 1


def test_serve_on_uvloop_says_so_and_applies_through_its_writer_process(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    with config.open("a", encoding="utf-8") as file:
        file.write('[runtime]\nevent_loop = "uvloop"\n')
    with gateway_process(config) as gateway:
        assert "mail2sms: event loop uvloop.Loop\n" in gateway.printed
        raw = (
            "From: app@example.com\r\nTo: sendsms@isendpro-api.com\r\nSubject: sms\r\n\r\n"
            + _body("4")
        ).encode()
        with smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10) as client:
            client.ehlo("app.example.com")
            client.mail("app@example.com")
            client.rcpt("sendsms@isendpro-api.com")
            code, answer = client.data(raw)
        assert code == 250 and answer.startswith(b"2.0.0 OK"), (code, answer)
        (sms,) = listing(gateway.api_url, "sms")
        assert sms["email_id"] == "4"
