"""Every annex code the email channel can produce, reached through the public surface."""

from __future__ import annotations

import pytest

from gateway.core import codes
from gateway.testing import RunningGateway

NOT_ADDRESS = "not@masociete.com"


def _send(
    gw: RunningGateway, email_id: int, *tels: str, extra: str = "", keyid: str = "demo"
) -> list[int]:
    """Send one request (num for one number, numX for several) and return its codes."""
    if len(tels) == 1:
        numbers = f"<num>{tels[0]}</num>"
    else:
        numbers = "\n".join(f"<num{i}>{tel}</num{i}>" for i, tel in enumerate(tels, start=1))
    body = (
        f"<envoi><keyid>{keyid}</keyid>{numbers}<sms>Bonjour</sms>{extra}"
        f"<emailNot>{NOT_ADDRESS}</emailNot><emailId>{email_id}</emailId></envoi>"
    )
    gw.send(gw.request_email(body))
    (email,) = gw.emails(email_id=str(email_id))
    return [r["code"] for r in email["results"]]


@pytest.mark.parametrize(
    ("tel", "extra", "code"),
    [
        ("0601020304", "", codes.OK),
        ("", "", codes.NUMBER_MISSING),
        ("060102030", "", codes.NUMBER_NOT_10_DIGITS),
        ("+44 7911 123456", "", codes.COUNTRY_NOT_ALLOWED),
        ("0600012345", "", codes.NOT_ASSIGNED),
        ("0145678901", "", codes.NOT_ASSIGNED),
        ("0601020304", "<emetteur></emetteur>", codes.SENDER_EMPTY),
        ("0601020304", "<emetteur>Inconnu</emetteur>", codes.SENDER_NOT_ALLOWED),
        ("0601020304", "<smslong>0</smslong>", codes.SMSLONG_INVALID),
        ("0601020304", "<smslong>abc</smslong>", codes.SMSLONG_INVALID),
    ],
)
def test_per_number_codes(
    mail2sms_gateway: RunningGateway, tel: str, extra: str, code: int
) -> None:
    assert _send(mail2sms_gateway, 1, tel, extra=extra) == [code]


def test_every_annex_code_is_reachable_by_a_magic_number(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    wanted = sorted(code for code in codes.MESSAGES if code != codes.OK)
    tels = [f"06990{code:05d}" for code in wanted]
    assert _send(gw, 2, *tels) == wanted
    body = gw.wait_for_reply("not", 2)["body"]
    for index, code in enumerate(wanted, start=1):
        assert f"<message{index}>{codes.MESSAGES[code]}</message{index}>" in body


def test_magic_zero_is_an_ordinary_mobile(mail2sms_gateway: RunningGateway) -> None:
    assert _send(mail2sms_gateway, 3, "0699000000") == [codes.OK]


def test_magic_number_of_a_code_outside_the_annex_is_an_ordinary_mobile(
    mail2sms_gateway: RunningGateway,
) -> None:
    assert _send(mail2sms_gateway, 3, "0699000005", "0699099999") == [codes.OK, codes.OK]


def test_blacklist_gives_11(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=10, blacklist=["06 01 02 03 04"])
    assert _send(gw, 4, "0601020304", keyid=account["keyid"]) == [codes.BLACKLISTED]


def test_magic_twelve_and_real_credit_exhaustion(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=1)
    assert _send(gw, 5, "0699000012", "0601020304", "0601020305", keyid=account["keyid"]) == [
        12,
        0,
        12,
    ]


@pytest.mark.mail2sms(config={"number_plan": {"0612": "full_mvno", "06123": "mobile"}})
def test_number_plan_overrides_give_22_and_the_longest_prefix_wins(
    mail2sms_gateway: RunningGateway,
) -> None:
    assert _send(mail2sms_gateway, 6, "0612000000", "0612300000") == [codes.FULL_MVNO, codes.OK]


@pytest.mark.mail2sms(config={"limits": {"max_recipients": 2}})
def test_too_many_recipients_refuses_the_request_with_23(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    assert _send(gw, 7, "0601020304", "0601020305", "0601020306") == [codes.TOO_MANY_NUMBERS]
    body = gw.wait_for_reply("not", 7)["body"]
    assert "<etat>\n<code>23</code>\n<tel></tel>\n" in body
    assert gw.sms() == []


def test_default_limit_is_500_recipients(mail2sms_gateway: RunningGateway) -> None:
    tels = ["0601020304"] * 501
    assert _send(mail2sms_gateway, 8, *tels) == [codes.TOO_MANY_NUMBERS]


@pytest.mark.parametrize(
    ("instant", "code"),
    [
        ("2026-12-01T19:59:59+01:00", codes.OK),
        ("2026-12-01T20:00:00+01:00", codes.QUIET_HOURS),
        ("2026-12-01T07:59:59+01:00", codes.QUIET_HOURS),
        ("2026-12-01T08:00:00+01:00", codes.OK),
        ("2026-11-29T11:00:00+01:00", codes.QUIET_HOURS),  # a Sunday
        ("2026-07-14T11:00:00+02:00", codes.QUIET_HOURS),  # Bastille Day
        ("2026-04-06T11:00:00+02:00", codes.QUIET_HOURS),  # Easter Monday
    ],
)
def test_quiet_hours_follow_the_clock_set_through_the_api(
    mail2sms_gateway: RunningGateway, instant: str, code: int
) -> None:
    gw = mail2sms_gateway
    gw.set_clock(instant)
    assert _send(gw, 9, "0601020304") == [code]


def test_quiet_hours_lifted_account_sends_at_night(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=5, quiet_hours_lifted=True)
    gw.set_clock("2026-11-29T21:00:00+01:00")
    assert _send(gw, 10, "0601020304", keyid=account["keyid"]) == [codes.OK]


def test_faults_api_forces_the_next_recipients(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    gw.add_fault(29, 2)
    assert _send(gw, 11, "0601020304", "0601020305", "0601020306") == [29, 29, 0]
    assert _send(gw, 12, "0601020304") == [0]


def test_fault_for_one_number_only(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    gw.add_fault(11, 5, number="06 01 02 03 05")
    assert _send(gw, 13, "0601020304", "0601020305") == [0, 11]


def test_rate_limit_gives_29(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=50, rate_limit=2)
    result = _send(gw, 14, "0601020304", "0601020305", "0601020306", keyid=account["keyid"])
    assert result == [0, 0, codes.OVERFLOW]


def test_international_allowed_account_sends_abroad(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=5, international_allowed=True)
    assert _send(gw, 15, "+44 7911 123456", keyid=account["keyid"]) == [codes.OK]
    assert gw.sms(email_id="15")[0]["to"] == "+447911123456"


def test_allowed_ips_refuse_other_clients_with_14(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    account = gw.add_account(domains=["example.com"], credit=5, allowed_ips=["10.0.0.0/8"])
    body = (
        f"<envoi><keyid>{account['keyid']}</keyid><num>0601020304</num><sms>x</sms>"
        f"<emailAck>ack@masociete.com</emailAck><emailId>16</emailId></envoi>"
    )
    gw.send(gw.request_email(body))
    (email,) = gw.emails()
    assert (email["status"], email["code"]) == ("refused", codes.IP_NOT_ALLOWED)
    assert gw.replies() == []


def test_lone_csv_file_is_refused_with_102(mail2sms_gateway: RunningGateway) -> None:
    gw = mail2sms_gateway
    message = gw.request_email(
        "<envoi><keyid>demo</keyid><emailNot>not@masociete.com</emailNot>"
        "<emailId>17</emailId></envoi>"
    )
    message.add_attachment(b"0601020304\n", maintype="text", subtype="csv", filename="mobiles.csv")
    gw.send(message)
    (email,) = gw.emails()
    assert [r["code"] for r in email["results"]] == [codes.INVALID_FILE]
    assert (
        "<message>Vous devez saisir un fichier valide !</message>"
        in gw.wait_for_reply("not", 17)["body"]
    )
    assert gw.sms() == []
