"""The pytest plugin as our users meet it: a test file of theirs, run by pytest in a process of
its own, finding the fixtures through the installed package's `pytest11` entry point."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

USER_TESTS = """
import smtplib
from email.message import EmailMessage

import httpx
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


def test_the_providers_http_api_is_at_http_api_url(mail2sms_gateway):
    answer = httpx.get(f"{mail2sms_gateway.http_api_url}/credit?keyid=demo&credit=1")
    assert answer.json() == {"etat": {"credit": 1000}}


def test_waiting_for_sms_filters_by_channel(mail2sms_gateway):
    send(mail2sms_gateway, 9)
    (sms,) = mail2sms_gateway.wait_for_sms(channel="mail")
    assert sms["channel"] == "mail"
    assert mail2sms_gateway.sms(channel="http") == []


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


def _users_pytest(folder: Path, tests: str) -> subprocess.CompletedProcess[str]:
    """pytest on a user's test file holding `tests`, in a process of its own."""
    (folder / "test_with_mail2sms.py").write_text(tests, encoding="utf-8")
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("MAIL2SMS_", "PYTEST_")) and k != "PYTHONPATH"
    }
    # Warnings are errors, as in ours; pytest-asyncio (ours, not the user's) stays out: its
    # warning about its own unset option is not the plugin's business.
    command = "pytest -p no:cacheprovider -p no:asyncio -W error -q test_with_mail2sms.py"
    return subprocess.run(
        [sys.executable, "-m", *command.split()],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_users_test_file_passes_with_only_the_installed_plugin(tmp_path: Path) -> None:
    done = _users_pytest(tmp_path, USER_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "11 passed" in done.stdout


FAILING_TESTS = """
import pytest


def test_a_wait_that_times_out(mail2sms_gateway):
    mail2sms_gateway.wait_for_sms(to="0601020304", timeout=0)


def test_a_reply_that_never_comes(mail2sms_gateway):
    mail2sms_gateway.wait_for_reply("ack", 42, timeout=0)


def test_an_account_the_api_refuses(mail2sms_gateway):
    mail2sms_gateway.add_account(senders=["AB"])


@pytest.mark.mail2sms(config={"smtp": {"max_mesage_size": 2048}})
def test_an_unknown_key_in_the_marker(mail2sms_gateway):
    pass


@pytest.mark.mail2sms(config={"limits": {"max_recipients": "many"}})
def test_a_wrong_value_in_the_marker(mail2sms_gateway):
    pass
"""


@pytest.fixture(scope="module")
def failed(tmp_path_factory: pytest.TempPathFactory) -> str:
    """What pytest printed for FAILING_TESTS."""
    done = _users_pytest(tmp_path_factory.mktemp("user"), FAILING_TESTS)
    assert "3 failed, 2 errors" in done.stdout, done.stdout + done.stderr
    return done.stdout


def _section(output: str, test: str) -> str:
    """The part of pytest's report about one test."""
    start = output.index(f" {test} _")
    following = re.search(r"\n_{3,} .* _{3,}\n|\n={3,} ", output[start:])
    assert following is not None
    return output[start : start + following.start()]


@pytest.mark.parametrize(
    ("test", "said"),
    [
        ("test_a_wait_that_times_out", "E       AssertionError: expected 1 SMS matching {'to': "),
        ("test_a_reply_that_never_comes", "E       AssertionError: no ack reply for emailId 42"),
        ("test_an_account_the_api_refuses", "E       ValueError: POST /api/v1/accounts: senders: "),
    ],
)
def test_the_plugins_own_frames_are_hidden_from_a_failure(
    failed: str, test: str, said: str
) -> None:
    section = _section(failed, test)
    assert said in section
    assert section.count("\n>") == 1  # the user's own line, and no frame of ours
    assert "gateway/" not in section


@pytest.mark.parametrize(
    ("test", "said"),
    [
        (
            "test_an_unknown_key_in_the_marker",
            "@pytest.mark.mail2sms(config=...): invalid configuration: smtp.max_mesage_size: "
            "unknown key, did you mean smtp.max_message_size?",
        ),
        (
            "test_a_wrong_value_in_the_marker",
            "@pytest.mark.mail2sms(config=...): invalid configuration: limits.max_recipients: "
            "a whole number (got 'many')",
        ),
    ],
)
def test_a_bad_marker_config_is_a_one_line_failure_naming_the_key(
    failed: str, test: str, said: str
) -> None:
    _, *lines = _section(failed, f"ERROR at setup of {test}").splitlines()
    assert lines == [said]
