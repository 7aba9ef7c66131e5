"""STARTTLS and AUTH on the SMTP listener, driven by real TLS clients (SPEC §2, issue 14)."""

from __future__ import annotations

import smtplib
import sqlite3
import ssl
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest
from cryptography import x509

from gateway.client import request_body
from gateway.testing import RunningGateway, fixture_settings
from gateway.tls import self_signed

ACCOUNTS_LOGIN = {"starttls": True, "auth": "accounts"}
BODY = request_body(
    [
        ("keyid", "demo"),
        ("num", "0601020304"),
        ("sms", "Bonjour"),
        ("emetteur", "MaSociete"),
        ("emailId", "7"),
    ]
)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    """start(**smtp settings) → a running gateway on SQLite, stopped after the test."""
    running: list[RunningGateway] = []

    def make(**smtp: Any) -> RunningGateway:
        gateway = RunningGateway(fixture_settings(tmp_path / "g.db", {"smtp": smtp}))
        running.append(gateway)
        return gateway

    yield make
    for gateway in running:
        gateway.stop()


def _trust_anything() -> ssl.SSLContext:
    """What an application does with a test server's self-signed certificate."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _client(gw: RunningGateway) -> smtplib.SMTP:
    client = smtplib.SMTP(gw.smtp_host, gw.smtp_port, timeout=10)
    client.ehlo("app.example.com")
    return client


def _request(gw: RunningGateway) -> bytes:
    return gw.request_email(BODY).as_bytes(policy=policy.SMTP)


def _send(client: smtplib.SMTP, gw: RunningGateway) -> None:
    client.sendmail("app@example.com", [gw.address], _request(gw))


@pytest.mark.mail2sms(config={"smtp": ACCOUNTS_LOGIN})
def test_starttls_then_account_login_sends_the_request_and_its_sms(
    gateway_on: RunningGateway,
) -> None:
    gw = gateway_on
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        client.login("demo", "demo")
        _send(client, gw)
    (sms,) = gw.wait_for_sms(1)
    assert (sms["to"], sms["text"]) == ("0601020304", "Bonjour\r\nSTOP SMS au 36111")


def test_aiosmtplib_with_start_tls_and_login_sends_the_request(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)

    async def send() -> None:
        await aiosmtplib.send(
            _request(gw),
            sender="app@example.com",
            recipients=[gw.address],
            hostname=gw.smtp_host,
            port=gw.smtp_port,
            start_tls=True,
            validate_certs=False,
            username="demo",
            password="demo",
            timeout=10,
        )

    gw._call(send())  # on the gateway's loop: one loop, as an async application has
    assert len(gw.wait_for_sms(1)) == 1


def test_login_mechanism_is_accepted_as_well_as_plain(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        client.ehlo("app.example.com")
        client.user, client.password = "demo", "demo"
        code, _ = client.auth("LOGIN", client.auth_login)
        assert code == 235


def test_wrong_password_gets_535(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("demo", "not-demo")
    assert refused.value.smtp_code == 535
    assert refused.value.smtp_error.startswith(b"5.7.8")


def test_unknown_login_gets_535(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
            client.login("nobody", "demo")
    assert refused.value.smtp_code == 535


def test_an_account_created_after_start_can_log_in_at_once(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)
    account = gw.add_account(domains=["example.com"], credit=10)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        code, _ = client.login(account["login"], account["password"])
    assert code == 235


def test_any_accepts_every_login(start: Any) -> None:
    gw = start(starttls=True, auth="any")
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        client.login("whoever", "whatever")
        _send(client, gw)
    assert len(gw.wait_for_sms(1)) == 1


def test_mail_before_auth_gets_530_when_auth_is_required(start: Any) -> None:
    gw = start(starttls=True, auth="any", auth_required=True)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        client.ehlo("app.example.com")
        code, message = client.mail("app@example.com")
    assert (code, message) == (530, b"5.7.0 Authentication required")


def test_auth_is_offered_only_after_starttls_when_starttls_is_on(start: Any) -> None:
    gw = start(**ACCOUNTS_LOGIN)
    with _client(gw) as client:
        assert client.has_extn("starttls")
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AGRlbW8AZGVtbw==")[0] == 538  # encryption required
        client.starttls(context=_trust_anything())
        client.ehlo("app.example.com")
        assert client.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert not client.has_extn("starttls")


def test_auth_is_offered_in_clear_when_starttls_is_off(start: Any) -> None:
    gw = start(auth="accounts", auth_required=True)
    with _client(gw) as client:
        assert not client.has_extn("starttls")
        client.login("demo", "demo")
        _send(client, gw)
    assert len(gw.wait_for_sms(1)) == 1


def test_auth_off_offers_no_auth_even_after_starttls(start: Any) -> None:
    gw = start(starttls=True)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        client.ehlo("app.example.com")
        assert not client.has_extn("auth")
        assert client.docmd("AUTH", "PLAIN AGRlbW8AZGVtbw==")[0] == 504
        _send(client, gw)  # TLS without a login is a usable setting of its own
    assert len(gw.wait_for_sms(1)) == 1


def test_self_signed_certificate_names_localhost_and_the_loopback_addresses(start: Any) -> None:
    gw = start(starttls=True)
    with _client(gw) as client:
        client.starttls(context=_trust_anything())
        served = client.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
    names = x509.load_der_x509_certificate(served).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert {str(n.value) for n in names.value} == {"localhost", "127.0.0.1", "::1"}


def test_given_certificate_and_key_are_served_and_verify(start: Any, tmp_path: Path) -> None:
    cert_pem, key_pem = self_signed(("127.0.0.1",))
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    gw = start(
        starttls=True,
        tls_cert=str(tmp_path / "cert.pem"),
        tls_key=str(tmp_path / "key.pem"),
        auth="accounts",
    )
    verifying = ssl.create_default_context(cadata=cert_pem.decode("ascii"))
    with _client(gw) as client:
        client.starttls(context=verifying)  # checks the chain and the name 127.0.0.1
        client.login("demo", "demo")
        _send(client, gw)
    assert len(gw.wait_for_sms(1)) == 1


def test_a_login_that_cannot_be_checked_gets_454_without_internals(
    start: Any, tmp_path: Path
) -> None:
    gw = start(auth="accounts")
    with sqlite3.connect(tmp_path / "g.db") as db:  # the accounts cannot be read any more
        db.execute("ALTER TABLE accounts RENAME TO accounts_gone")
    with _client(gw) as client:
        code, message = client.docmd("AUTH", "PLAIN AGRlbW8AZGVtbw==")
    assert (code, message) == (454, b"4.7.0 Temporary authentication failure, please retry")
