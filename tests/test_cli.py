"""The `mail2sms` command line as a real process: accounts in the database, send to a gateway."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.core import codes
from gateway.testing import RunningGateway
from tests.postgres import PostgresServer

Run = Callable[[str], subprocess.CompletedProcess[str]]


def _runner(cwd: Path, settings: Mapping[str, str]) -> Run:
    """`run("accounts list")` runs `mail2sms accounts list` (split as a shell would) in `cwd`
    with these MAIL2SMS_* settings, and none of the test's own."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAIL2SMS_")}
    environment.update(settings)

    def run(command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *shlex.split(command)],
            cwd=cwd,
            env=environment,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=120,
            check=False,
        )

    return run


@pytest.fixture
def mail2sms(database_url: str, tmp_path: Path) -> Run:
    """`mail2sms …` on this test's database (SQLite, then PostgreSQL)."""
    return _runner(tmp_path, {"MAIL2SMS_DATABASE__URL": database_url})


@pytest.fixture
def mail2sms_sqlite(tmp_path: Path) -> Run:
    """`mail2sms …` on a fresh SQLite file."""
    return _runner(tmp_path, {"MAIL2SMS_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/g.db"})


@pytest.fixture
def mail2sms_to(mail2sms_gateway: RunningGateway, tmp_path: Path) -> Run:
    """`mail2sms …` whose settings name the running gateway's ports."""
    return _runner(
        tmp_path,
        {
            "MAIL2SMS_SMTP__PORT": str(mail2sms_gateway.smtp_port),
            "MAIL2SMS_HTTP__PORT": mail2sms_gateway.api_url.rsplit(":", 1)[1],
            "MAIL2SMS_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/unused.db",
        },
    )


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def _json(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(_ok(done))
    return value


def _created(run: Run, options: str) -> dict[str, Any]:
    return _json(run(f"accounts create {options} --json"))


def _fails(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, (done.stdout, done.stderr)
    return done.stderr


# accounts create ----------------------------------------------------------------------------


def test_create_stores_every_field_and_generates_the_credentials(mail2sms: Run) -> None:
    account = _created(
        mail2sms,
        "--company Acme --contact Ann --phone 0102030405 --email ann@acme.test "
        "--domain Acme.TEST --domain acme.fr --credit 500 --sender ACME --sender PROMO "
        "--nostop-allowed --international-allowed --allowed-ip 10.0.0.0/8 "
        "--blacklist '06 01 02 03 04' --rate-limit 5",
    )
    assert len(account["keyid"]) == 20
    assert account["login"].startswith("user")
    assert len(account["password"]) >= 12
    assert [account[f] for f in ("company", "contact", "phone", "email")] == [
        "Acme",
        "Ann",
        "0102030405",
        "ann@acme.test",
    ]
    assert (account["domains"], account["senders"]) == (["acme.test", "acme.fr"], ["ACME", "PROMO"])
    assert (account["credit"], account["rate_limit"]) == (500, 5)
    assert account["nostop_allowed"] and account["international_allowed"]
    assert not account["quiet_hours_lifted"]
    assert (account["allowed_ips"], account["blacklist"]) == (["10.0.0.0/8"], ["0601020304"])


def test_create_prints_a_readable_block_with_the_credentials(mail2sms_sqlite: Run) -> None:
    out = _ok(mail2sms_sqlite("accounts create --keyid acme --password s3cret"))
    lines = dict(line.split(None, 1) for line in out.splitlines())
    assert (lines["keyid"], lines["password"]) == ("acme", "s3cret")
    assert lines["login"].startswith("user")
    assert (lines["nostop_allowed"], lines["domains"]) == ("no", "-")


def test_create_without_a_credit_says_every_sms_would_get_code_12(mail2sms_sqlite: Run) -> None:
    done = mail2sms_sqlite("accounts create --keyid acme")
    assert _ok(done)
    assert (
        "mail2sms: note: account 'acme' has no credit: every SMS it asks for gets code 12 until "
        "`mail2sms accounts set acme --credit N`"
    ) in done.stderr


def test_create_with_a_credit_has_no_note(mail2sms_sqlite: Run) -> None:
    done = mail2sms_sqlite("accounts create --keyid acme --credit 0")
    assert _ok(done)
    assert "note" not in done.stderr


def test_create_keeps_items_as_the_rules_compare_them(mail2sms_sqlite: Run) -> None:
    account = _created(
        mail2sms_sqlite,
        "--domain ' Acme.TEST ' --sender ' ACME ' --allowed-ip ' 10.0.0.1 ' "
        "--blacklist '+33 6 01 02 03 04' --blacklist '+44 20 7183 8750'",
    )
    assert (account["domains"], account["senders"], account["allowed_ips"]) == (
        ["acme.test"],
        ["ACME"],
        ["10.0.0.1"],
    )
    assert account["blacklist"] == ["0601020304", "+442071838750"]


def test_create_with_a_taken_keyid_fails_naming_set(mail2sms_sqlite: Run) -> None:
    _created(mail2sms_sqlite, "--keyid acme")
    error = _fails(mail2sms_sqlite("accounts create --keyid acme"), 1)
    assert "--keyid: an account 'acme' already exists" in error
    assert "`mail2sms accounts set acme …` changes it" in error


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("accounts create --credit -5", "--credit: an integer ≥ 0 (got '-5')"),
        ("accounts create --allowed-ip nope", "--allowed-ip: 'nope' is not an IP address"),
        ("accounts create --domain 'acme test'", "--domain: 'acme test' is not a domain name"),
        ("accounts create --domain @acme.test", "--domain: '@acme.test' is not a domain name"),
        ("accounts create --sender AB", "--sender: 'AB' is not a sender id: 4 to 11 letters"),
        ("accounts create --sender 12345", "--sender: '12345' is not a sender id"),
        ("accounts create --blacklist 12", "--blacklist: '12' is not a phone number"),
        ("accounts set acme --add-sender ACME-1", "--add-sender: 'ACME-1' is not a sender id"),
        ("accounts set acme --blacklist 06x", "--blacklist: '06x' is not a phone number"),
        ("accounts set acme --remove-domain a_b.fr", "--remove-domain: 'a_b.fr' is not a domain"),
        ("send --to 0601020304", "--text: give the message"),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    mail2sms_sqlite: Run, command: str, message: str
) -> None:
    assert message in _fails(mail2sms_sqlite(command), 2)


# accounts list and set ----------------------------------------------------------------------


def test_list_prints_a_table_newest_first(mail2sms_sqlite: Run) -> None:
    _created(mail2sms_sqlite, "--keyid acme --login acme --domain acme.test")
    _created(
        mail2sms_sqlite,
        "--keyid shop --login shop --company Shop --credit 9 --quiet-hours-lifted --nostop-allowed",
    )
    header, *rows = _ok(mail2sms_sqlite("accounts list")).splitlines()
    assert header.split() == ["KEYID", "LOGIN", "COMPANY", "DOMAINS", "CREDIT", "FLAGS"]
    assert [row.split() for row in rows] == [
        ["shop", "shop", "Shop", "-", "9", "nostop-allowed,quiet-hours-lifted"],
        ["acme", "acme", "-", "acme.test", "0", "-"],
    ]


def test_list_json_has_the_api_shape_without_passwords(mail2sms_sqlite: Run) -> None:
    created = _created(mail2sms_sqlite, "--keyid acme")
    listed = {name: value for name, value in created.items() if name != "password"}
    assert _json(mail2sms_sqlite("accounts list --json")) == {"items": [listed], "total": 1}


def test_set_changes_only_the_given_fields(mail2sms: Run) -> None:
    before = _created(
        mail2sms,
        "--keyid acme --domain acme.test --domain acme.fr --sender ACME --nostop-allowed "
        "--credit 10 --blacklist 0601020304",
    )
    after = _json(
        mail2sms(
            "accounts set acme --credit 500 --no-nostop-allowed --quiet-hours-lifted "
            "--add-sender PROMO --remove-domain ACME.FR --no-blacklist --json"
        )
    )
    unchanged = {name: value for name, value in before.items() if name != "password"}
    assert after == {  # the password is shown once, at creation
        **unchanged,
        "credit": 500,
        "nostop_allowed": False,
        "quiet_hours_lifted": True,
        "senders": ["ACME", "PROMO"],
        "domains": ["acme.test"],
        "blacklist": [],
    }


def test_set_removes_an_item_written_another_way(mail2sms_sqlite: Run) -> None:
    _created(mail2sms_sqlite, "--keyid acme --blacklist 0601020304 --blacklist 0601020305")
    account = _json(
        mail2sms_sqlite("accounts set acme --remove-blacklist '+33 6.01.02.03.04' --json")
    )
    assert account["blacklist"] == ["0601020305"]


def test_accounts_commands_name_their_database_on_stderr(
    mail2sms: Run, database_url: str, tmp_path: Path
) -> None:
    done = mail2sms("accounts list --json")
    shown = f"{tmp_path / 'g.db'} (SQLite)" if database_url.startswith("sqlite") else database_url
    assert _json(done) == {"items": [], "total": 0}
    assert done.stderr == f"mail2sms: database {shown}\n"


@pytest.mark.postgres
def test_accounts_name_a_database_server_without_its_password(
    postgres_url: str, tmp_path: Path
) -> None:
    url = postgres_url.replace("://postgres@", "://postgres:s3cret@")
    done = _runner(tmp_path, {"MAIL2SMS_DATABASE__URL": url})("accounts list --json")
    assert _json(done) == {"items": [], "total": 0}
    assert done.stderr == f"mail2sms: database {postgres_url.replace('@', ':***@')}\n"


def test_set_add_credit_adds_to_the_balance(mail2sms_sqlite: Run) -> None:
    _created(mail2sms_sqlite, "--keyid acme --credit 10")
    assert _json(mail2sms_sqlite("accounts set acme --add-credit 100 --json"))["credit"] == 110


def test_set_refuses_a_credit_below_zero(mail2sms_sqlite: Run) -> None:
    _created(mail2sms_sqlite, "--keyid acme --credit 10")
    error = _fails(mail2sms_sqlite("accounts set acme --add-credit -11"), 1)
    assert "--add-credit: account 'acme' has 10 credits" in error


def test_set_an_unknown_keyid_fails_naming_list(mail2sms_sqlite: Run) -> None:
    error = _fails(mail2sms_sqlite("accounts set nope --credit 1"), 1)
    assert "no account with keyid 'nope'; `mail2sms accounts list` shows them" in error


@pytest.mark.postgres
def test_accounts_refuse_a_database_not_migrated(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    with postgres_server.database(migrated=False) as url:
        run = _runner(tmp_path, {"MAIL2SMS_DATABASE__URL": url})
        assert "run `mail2sms db upgrade`" in _fails(run("accounts list"), 1)
        _ok(run("db upgrade"))
        assert _created(run, "--keyid acme")["keyid"] == "acme"


# send ---------------------------------------------------------------------------------------


def test_send_delivers_a_request_and_prints_the_answer(
    mail2sms_gateway: RunningGateway, mail2sms_to: Run
) -> None:
    out = _ok(
        mail2sms_to(
            "send --to '06 01 02 03 04' --text 'Bonjour\nà <toi> & moi' --sender MaSociete "
            "--tracker t-1 --email-id 4242"
        )
    )
    assert "emailId 4242: 250 2.0.0" in out
    (sms,) = mail2sms_gateway.sms(tracker="t-1")
    assert (sms["to"], sms["sender"], sms["account"]) == ("0601020304", "MaSociete", "demo")
    assert sms["text"] == "Bonjour\nà <toi> & moi\r\nSTOP SMS au 36111"
    (email,) = mail2sms_gateway.emails()
    assert (email["sender"], email["email_id"]) == ("app@example.com", "4242")


def test_send_wait_prints_the_ack_and_the_not(
    mail2sms_gateway: RunningGateway, mail2sms_to: Run
) -> None:
    out = _ok(mail2sms_to("send --to 0601020304 --to 0701020304 --text x --email-id 77 --wait"))
    ack = mail2sms_gateway.wait_for_reply("ack", 77)
    not_ = mail2sms_gateway.wait_for_reply("not", 77)
    assert ack["to"] == not_["to"] == "app@example.com"
    assert f"--- Ack emailId 77 to app@example.com ---\n{ack['body']}" in out
    assert f"--- Not emailId 77 to app@example.com ---\n{not_['body']}" in out
    assert "<code1>0</code1>" in not_["body"] and "<code2>0</code2>" in not_["body"]


def test_send_wait_exits_1_naming_each_number_not_sent(
    mail2sms_gateway: RunningGateway, mail2sms_to: Run
) -> None:
    done = mail2sms_to("send --to 0601020304 --to 0699000021 --text x --email-id 78 --wait")
    not_ = mail2sms_gateway.wait_for_reply("not", 78)
    assert "<code2>21</code2>" in not_["body"]
    assert f"--- Not emailId 78 to app@example.com ---\n{not_['body']}" in done.stdout
    assert done.returncode == 1
    assert done.stderr == (
        "mail2sms: emailId 78: 1 of 2 recipients not sent: 0699000021: code 21 "
        f"({codes.message(21)})\n"
    )


def test_send_wait_exits_1_for_an_email_id_already_processed(mail2sms_to: Run) -> None:
    _ok(mail2sms_to("send --to 0601020304 --text x --email-id 79 --wait"))
    again = mail2sms_to("send --to 0601020304 --text x --email-id 79 --wait")
    assert "<code>1</code>" in again.stdout
    assert again.returncode == 1
    assert again.stderr == "mail2sms: emailId 79 was already processed: nothing sent\n"


def test_send_wait_for_a_refused_email_says_there_is_no_reply(mail2sms_to: Run) -> None:
    done = mail2sms_to("send --keyid nope --from app@x.test --to 0601020304 --text x --wait")
    assert done.returncode == 1
    assert "did not process it, so no reply: 3: " in done.stdout


def test_send_csv_attaches_the_files_and_sends_one_sms_per_line(
    mail2sms_gateway: RunningGateway, mail2sms_to: Run, tmp_path: Path
) -> None:
    (tmp_path / "numbers.csv").write_bytes(b"0601020304;;Anne\r\n0601020305;;Bob\r\n")
    (tmp_path / "text.csv").write_bytes(b"Bonjour [1]\n")
    _ok(mail2sms_to("send --csv numbers.csv text.csv --email-id 9"))
    texts = {s["to"]: s["text"] for s in mail2sms_gateway.wait_for_sms(2, email_id="9")}
    assert texts == {"0601020304": "Bonjour Anne", "0601020305": "Bonjour Bob"}


def test_send_print_writes_the_email_with_line_breaks_as_o_umlaut(mail2sms_to: Run) -> None:
    out = _ok(
        mail2sms_to(
            "send --to 0601020304 --text 'one\ntwo' --ack a@b.test --nostop --smslong 2 "
            "--email-id 5 --print"
        )
    )
    message = message_from_bytes(out.encode("utf-8"), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert (message["From"], message["To"]) == ("app@example.com", "sendsms@isendpro-api.com")
    assert message.get_content().splitlines() == [
        "<envoi>",
        "<keyid>demo</keyid>",
        "<num>0601020304</num>",
        "<sms>oneÖtwo</sms>",
        "<smslong>2</smslong>",
        "<emailAck>a@b.test</emailAck>",
        "<nostop>1</nostop>",
        "<emailId>5</emailId>",
        "</envoi>",
    ]


@pytest.mark.mail2sms(config={"smtp": {"max_message_size": 2048}})
def test_send_refused_by_the_gateway_exits_1_with_its_answer(mail2sms_to: Run) -> None:
    error = _fails(mail2sms_to(f"send --to 0601020304 --text {'x' * 4000}"), 1)
    assert "the gateway answered 552" in error


def test_send_when_nothing_listens_says_what_to_start(mail2sms_sqlite: Run) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = _fails(mail2sms_sqlite(f"send --port {port} --to 0601020304 --text x"), 1)
    assert f"cannot send to 127.0.0.1:{port}" in error
    assert "is `mail2sms serve` running?" in error


# help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", ["", "accounts", "accounts create", "accounts set", "send", "config"]
)
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert exited.value.code == 0
    assert "examples:\n  mail2sms " in capsys.readouterr().out
