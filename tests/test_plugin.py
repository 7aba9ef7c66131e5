"""The pytest plugin as our users meet it: a test file of theirs, run by pytest in a process of
its own, finding the fixtures through the installed package's `pytest11` entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

USER_TESTS = """
import smtplib
from email.message import EmailMessage

import pytest


def send(gateway, email_id, *, keyid="demo", sender="app@example.com", number="0601020304"):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = gateway.address
    message["Subject"] = "envoi"
    message.set_content(
        f"<envoi><keyid>{keyid}</keyid><num>{number}</num><sms>Bonjour</sms>"
        "<emetteur>MaSociete</emetteur><emailAck>ack@example.com</emailAck>"
        f"<emailNot>not@example.com</emailNot><emailId>{email_id}</emailId></envoi>"
    )
    with smtplib.SMTP(gateway.smtp_host, gateway.smtp_port) as client:
        client.send_message(message)


def test_an_email_gives_an_sms_an_ack_and_a_not(mail2sms_gateway):
    send(mail2sms_gateway, 1)
    (sms,) = mail2sms_gateway.wait_for_sms(to="0601020304")
    assert (sms["sender"], sms["text"]) == ("MaSociete", "Bonjour\\r\\nSTOP SMS au 36111")
    assert "<code>0</code>" in mail2sms_gateway.wait_for_reply("ack", 1)["body"]
    assert "<tel>0601020304</tel>" in mail2sms_gateway.wait_for_reply("not", "1")["body"]


def test_the_clock_starts_on_a_tuesday_at_ten_in_paris(mail2sms_gateway):
    send(mail2sms_gateway, 2)
    assert mail2sms_gateway.sms()[0]["created_at"] == "2026-12-01T09:00:00+00:00"


def test_sunday_evening_is_quiet_hours(mail2sms_gateway):
    mail2sms_gateway.set_clock("2026-11-29T21:00:00+01:00")
    send(mail2sms_gateway, 3)
    (email,) = mail2sms_gateway.emails()
    assert [r["code"] for r in email["results"]] == [24]
    assert mail2sms_gateway.sms() == []


def test_an_added_account_sends_from_its_own_domain(mail2sms_gateway):
    account = mail2sms_gateway.add_account(domains=["shop.test"], credit=5, senders=["MaSociete"])
    assert account["password"]
    send(mail2sms_gateway, 4, keyid=account["keyid"], sender="app@shop.test")
    (sms,) = mail2sms_gateway.wait_for_sms(account=account["keyid"])
    assert mail2sms_gateway.account(account["keyid"])["credit"] == 4


def test_reset_forgets_messages_and_email_ids(mail2sms_gateway):
    send(mail2sms_gateway, 5)
    mail2sms_gateway.reset()
    assert mail2sms_gateway.sms() == mail2sms_gateway.emails() == []
    send(mail2sms_gateway, 5)
    assert [e["status"] for e in mail2sms_gateway.emails()] == ["processed"]


def test_wait_for_sms_tells_what_arrived_instead(mail2sms_gateway):
    send(mail2sms_gateway, 6, keyid="nope")
    with pytest.raises(AssertionError, match="refused — 3: "):
        mail2sms_gateway.wait_for_sms(timeout=0)


@pytest.mark.mail2sms(config={"stop": {"text": "STOP au 36180"}})
def test_the_marker_overrides_settings(mail2sms_gateway):
    send(mail2sms_gateway, 7)
    assert mail2sms_gateway.sms()[0]["text"] == "Bonjour\\r\\nSTOP au 36180"


def test_session_gateway_first(mail2sms_gateway_session):
    send(mail2sms_gateway_session, 8)
    mail2sms_gateway_session.set_clock("2026-11-29T21:00:00+01:00")
    mail2sms_gateway_session.add_fault(29, count=5)
    assert len(mail2sms_gateway_session.sms()) == 1


def test_session_gateway_is_reset_before_the_next_test(mail2sms_gateway_session):
    assert mail2sms_gateway_session.sms() == []
    assert mail2sms_gateway_session.account()["credit"] == 1000
    send(mail2sms_gateway_session, 8)
    (email,) = mail2sms_gateway_session.emails()
    assert (email["status"], [r["code"] for r in email["results"]]) == ("processed", [0])
"""


def test_a_users_test_file_passes_with_only_the_installed_plugin(tmp_path: Path) -> None:
    (tmp_path / "test_with_mail2sms.py").write_text(USER_TESTS, encoding="utf-8")
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("MAIL2SMS_", "PYTEST_")) and k != "PYTHONPATH"
    }
    # Warnings are errors, as in ours; pytest-asyncio (ours, not the user's) stays out: its
    # warning about its own unset option is not the plugin's business.
    command = "pytest -p no:cacheprovider -p no:asyncio -W error -q test_with_mail2sms.py"
    done = subprocess.run(
        [sys.executable, "-m", *command.split()],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9 passed" in done.stdout
