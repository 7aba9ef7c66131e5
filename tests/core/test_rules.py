"""The provider's decisions: authorisation and the code of each recipient."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import MappingProxyType

import pytest

from gateway.core import codes, rules
from gateway.core.model import Account, Channel, Fault, Recipient, Request, RuleSettings

TUESDAY_10H = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # 10:00 in Paris
TUESDAY_21H = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)  # 21:00 in Paris
SETTINGS = RuleSettings()
ACCOUNT = Account(
    id=1,
    keyid="demo",
    domains=frozenset({"example.com"}),
    credit=1000,
    senders=frozenset({"MaSociete"}),
)


def _request(*tels: str, text: str = "Bonjour", **fields: object) -> Request:
    base: dict[str, object] = {
        "keyid": "demo",
        "email_id": "1",
        "email_ack": "",
        "email_not": "",
        "emetteur": None,
        "tracker": "",
        "smslong": None,
        "nostop": "",
        "recipients": tuple(Recipient(tel, text) for tel in tels),
        "numbered": len(tels) > 1,
    }
    base.update(fields)
    return Request(**base)  # type: ignore[arg-type]


def _codes(request: Request, account: Account = ACCOUNT, **kwargs: object) -> list[int]:
    now = kwargs.pop("now", TUESDAY_10H)
    decision = rules.decide(request, account, now, SETTINGS, **kwargs)  # type: ignore[arg-type]
    return [r.code for r in decision.results]


@pytest.mark.parametrize(
    ("keyid", "account", "from_address", "envelope", "ip", "expected"),
    [
        ("", None, "a@example.com", "", "127.0.0.1", codes.LOGIN_EMPTY),
        ("  ", None, "a@example.com", "", "127.0.0.1", codes.LOGIN_EMPTY),
        ("nope", None, "a@example.com", "", "127.0.0.1", codes.BAD_CREDENTIALS),
        ("demo", ACCOUNT, "a@other.com", "", "127.0.0.1", codes.DOMAIN_REFUSED),
        ("demo", ACCOUNT, "a@EXAMPLE.com", "b@other.com", "127.0.0.1", codes.DOMAIN_REFUSED),
        ("demo", ACCOUNT, "", "", "127.0.0.1", codes.DOMAIN_REFUSED),
        ("demo", ACCOUNT, "a@EXAMPLE.com", "", "127.0.0.1", None),
        ("demo", ACCOUNT, "a@example.com", "b@example.com", "127.0.0.1", None),
    ],
)
def test_authorise(
    keyid: str,
    account: Account | None,
    from_address: str,
    envelope: str,
    ip: str,
    expected: int | None,
) -> None:
    assert (
        rules.authorise(
            keyid, account, from_address=from_address, envelope_from=envelope, client_ip=ip
        )
        == expected
    )


@pytest.mark.parametrize(
    ("ip", "expected"),
    [("10.1.2.3", None), ("10.9.9.9", codes.IP_NOT_ALLOWED), ("::ffff:10.1.2.3", None)],
)
def test_allowed_ips_refuse_others_with_14(ip: str, expected: int | None) -> None:
    account = Account(
        id=1, keyid="k", domains=frozenset({"example.com"}), allowed_ips=("10.1.2.0/24",)
    )
    found = rules.authorise(
        "k", account, from_address="a@example.com", envelope_from="", client_ip=ip
    )
    assert found == expected


def test_an_ordinary_mobile_is_sent_with_the_default_sender() -> None:
    decision = rules.decide(_request("0601020304"), ACCOUNT, TUESDAY_10H, SETTINGS)
    (result,) = decision.results
    assert result.code == codes.OK
    assert result.sms is not None
    assert (result.sms.to, result.sms.sender, result.sms.text) == ("0601020304", "36111", "Bonjour")
    assert decision.debit == 1


@pytest.mark.parametrize(
    ("tel", "code"),
    [
        ("", codes.NUMBER_MISSING),
        ("06010203", codes.NUMBER_NOT_10_DIGITS),
        ("+44 7911 123456", codes.COUNTRY_NOT_ALLOWED),
        ("0600012345", codes.NOT_ASSIGNED),
        ("0145678901", codes.NOT_ASSIGNED),
        ("0699000021", 21),
        ("0699000999", 999),
        ("+33 6 01 02 03 04", codes.OK),
    ],
)
def test_each_number_gets_the_first_code_that_applies(tel: str, code: int) -> None:
    assert _codes(_request(tel)) == [code]


def test_blacklisted_number_is_11() -> None:
    account = Account(id=1, keyid="demo", credit=10, blacklist=frozenset({"0601020304"}))
    assert _codes(_request("06 01 02 03 04"), account) == [codes.BLACKLISTED]


def test_custom_sender_appends_the_stop_mention() -> None:
    decision = rules.decide(
        _request("0601020304", emetteur="MaSociete"), ACCOUNT, TUESDAY_10H, SETTINGS
    )
    sms = decision.results[0].sms
    assert sms is not None
    assert sms.text == "Bonjour\r\nSTOP SMS au 36111"
    assert sms.sender == "MaSociete"


@pytest.mark.parametrize(
    ("emetteur", "code"),
    [
        ("", codes.SENDER_EMPTY),
        ("Autre", codes.SENDER_NOT_ALLOWED),
        ("12345", codes.SENDER_NOT_ALLOWED),
    ],
)
def test_sender_refusals(emetteur: str, code: int) -> None:
    assert _codes(_request("0601020304", emetteur=emetteur)) == [code]


def test_nostop_needs_the_account_flag_else_a_warning() -> None:
    request = _request("0601020304", emetteur="MaSociete", nostop="1")
    refused = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS)
    assert refused.results[0].sms is not None
    assert refused.results[0].sms.text.endswith("STOP SMS au 36111")
    assert any("nostop" in w for w in refused.warnings)
    allowed = Account(
        id=1, keyid="demo", credit=10, senders=frozenset({"MaSociete"}), nostop_allowed=True
    )
    honoured = rules.decide(request, allowed, TUESDAY_10H, SETTINGS)
    assert honoured.results[0].sms is not None
    assert honoured.results[0].sms.text == "Bonjour"


@pytest.mark.parametrize(
    ("smslong", "length", "code"),
    [
        (None, 160, codes.OK),
        (None, 161, codes.SMSLONG_INVALID),
        ("2", 161, codes.OK),
        ("2", 307, codes.SMSLONG_INVALID),
        ("999", 900, codes.OK),
        ("0", 10, codes.SMSLONG_INVALID),
        ("-1", 10, codes.SMSLONG_INVALID),
        ("deux", 10, codes.SMSLONG_INVALID),
    ],
)
def test_smslong_allowance(smslong: str | None, length: int, code: int) -> None:
    assert _codes(_request("0601020304", text="a" * length, smslong=smslong)) == [code]


def test_quiet_hours_refuse_with_24_unless_lifted() -> None:
    assert _codes(_request("0601020304"), now=TUESDAY_21H) == [codes.QUIET_HOURS]
    lifted = Account(id=1, keyid="demo", credit=10, quiet_hours_lifted=True)
    assert _codes(_request("0601020304"), lifted, now=TUESDAY_21H) == [codes.OK]


def test_credit_runs_out_for_this_and_every_later_number() -> None:
    account = Account(id=1, keyid="demo", credit=2)
    request = _request("0601020304", "0601020305", "0601020306", "0601020307", "bad")
    decision = rules.decide(request, account, TUESDAY_10H, SETTINGS)
    assert [r.code for r in decision.results] == [0, 0, 12, 12, 7]
    assert decision.debit == 2


def test_credit_counts_parts_not_messages() -> None:
    account = Account(id=1, keyid="demo", credit=3)
    request = _request("0601020304", "0601020305", text="a" * 200, smslong="2")
    assert _codes(request, account) == [codes.OK, codes.CREDIT_EXHAUSTED]


def test_rate_budget_refuses_with_29() -> None:
    request = _request("0601020304", "0601020305", "0601020306")
    assert _codes(request, rate_budget=2) == [0, 0, codes.OVERFLOW]


def test_faults_hit_the_next_matching_recipients_and_are_counted() -> None:
    fault = Fault(id=5, code=29, remaining=2, number=None, keyid="demo")
    request = _request("0601020304", "0601020305", "0601020306")
    decision = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS, faults=(fault,))
    assert [r.code for r in decision.results] == [29, 29, 0]
    assert dict(decision.faults_used) == {5: 2}


def test_a_fault_for_one_number_spares_the_others() -> None:
    fault = Fault(id=1, code=11, remaining=5, number="0601020305")
    request = _request("0601020304", "0601020305")
    assert _codes(request, faults=(fault,)) == [0, 11]


def test_a_fault_for_another_account_does_not_apply() -> None:
    fault = Fault(id=1, code=11, remaining=5, keyid="someone-else")
    assert _codes(_request("0601020304"), faults=(fault,)) == [0]


def test_number_plan_overrides_from_settings() -> None:
    settings = RuleSettings(number_plan=MappingProxyType({"0612": "full_mvno"}))
    decision = rules.decide(_request("0612345678"), ACCOUNT, TUESDAY_10H, settings)
    assert decision.results[0].code == codes.FULL_MVNO


def test_invalid_tracker_is_cleaned_with_a_warning() -> None:
    decision = rules.decide(
        _request("0601020304", tracker="mon id!"), ACCOUNT, TUESDAY_10H, SETTINGS
    )
    assert decision.tracker == "monid"
    assert decision.warnings


@pytest.mark.parametrize(
    ("email_id", "valid"),
    [
        ("1548", True),
        ("", False),
        ("abc", False),
        ("1" * 65, False),
        ("１５４８", False),  # full-width digits
        ("١٥٤٨", False),  # Arabic-Indic digits
    ],
)
def test_email_id_must_be_digits(email_id: str, valid: bool) -> None:
    assert rules.valid_email_id(email_id) is valid


# -- the HTTP channel's differences (SPEC §15) -------------------------------------------------


def test_http_custom_sender_gets_the_12_character_stop_mention() -> None:
    request = _request("0601020304", emetteur="MaSociete", channel=Channel.HTTP)
    (result,) = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS).results
    assert result.sms is not None
    assert result.sms.text == "Bonjour\r\nSTOP 36111"


def test_http_stop_caps_a_single_gsm_sms_at_148_characters() -> None:
    for length, parts in ((148, 1), (149, 2)):
        request = _request(
            "0601020304", text="a" * length, emetteur="MaSociete", smslong="2", channel=Channel.HTTP
        )
        (result,) = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS).results
        assert result.sms is not None and result.sms.parts == parts


def test_ucs2_flag_sends_a_gsm_text_in_ucs2() -> None:
    request = _request("0601020304", text="a" * 71, smslong="2", ucs2=True)
    (result,) = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS).results
    assert result.sms is not None
    assert (result.sms.encoding, result.sms.parts) == ("ucs2", 2)


def test_each_number_may_carry_its_own_tracker() -> None:
    request = dataclasses.replace(
        _request("0601020304", "0601020305", tracker="all"),
        recipients=(Recipient("0601020304", "a", tracker="one"), Recipient("0601020305", "b")),
    )
    decision = rules.decide(request, ACCOUNT, TUESDAY_10H, SETTINGS)
    assert [r.sms.tracker for r in decision.results if r.sms] == ["one", "all"]


def test_a_deferred_send_is_judged_for_quiet_hours_at_its_due_time() -> None:
    evening = _request("0601020304", due_at=TUESDAY_21H)
    assert rules.decide(evening, ACCOUNT, TUESDAY_10H, SETTINGS).results[0].code == 24
    morning = _request("0601020304", due_at=TUESDAY_10H)
    early = TUESDAY_21H.replace(hour=5)  # 06:00 in Paris, before the quiet hours end
    assert rules.decide(morning, ACCOUNT, early, SETTINGS).results[0].code == 0


@pytest.mark.parametrize(
    ("tel", "faults", "code"),
    [
        ("0601020304", (), codes.OK),
        ("06 01 02 03 04", (), codes.OK),
        ("+33601020304", (), codes.OK),
        ("0033601020304", (), codes.OK),
        ("33601020304", (), codes.OK),
        ("0033612345", (), codes.NUMBER_NOT_10_DIGITS),  # 0033… becomes 0612345 (SPEC §6)
        ("+447911123456", (), codes.COUNTRY_NOT_ALLOWED),
        ("060102030", (), codes.NUMBER_NOT_10_DIGITS),
        ("０６０１０２０３０４", (), codes.NUMBER_NOT_10_DIGITS),
        ("0699000021", (), 21),
        ("0699000012", (), 12),
        ("0699000000", (), codes.OK),
        ("0612000000", (), codes.FULL_MVNO),  # the override "0612"
        ("0612345678", (), codes.OK),  # the longer override "061234567" (mobile)
        ("0600512345", (), codes.OK),  # the override "06005" at the reserve's length
        ("0600412345", (), codes.NOT_ASSIGNED),  # the reserve, longer than "06"
        ("0701020304", (), codes.NOT_ASSIGNED),  # the override "07" at the default's length
        ("0711111111", (), codes.BLACKLISTED),  # the blacklist before the plan
        ("07 11 11 11 11", (), codes.BLACKLISTED),
        ("0612000000", (Fault(1, 29, 1, number="0612000000"),), 29),  # a fault before the plan
        ("0699000021", (Fault(1, 12, 1, keyid="demo"),), 12),  # a fault before a magic code
        ("0711111111", (Fault(1, 12, 1, keyid="other"),), codes.BLACKLISTED),
        ("0711111111", (Fault(1, 0, 1),), codes.BLACKLISTED),  # a forced 0 goes on
        ("0601020304", (Fault(1, 12, 1, number="0601020305"),), codes.OK),
    ],
)
def test_each_rule_in_order_whatever_the_number_looks_like(
    tel: str, faults: tuple[Fault, ...], code: int
) -> None:
    """The common case's shortcuts (a plain 0X number, a merged plan, no faults) agree with
    the number's general path and keep SPEC §6's order."""
    settings = RuleSettings(
        number_plan=MappingProxyType(
            {"06005": "mobile", "0612": "full_mvno", "061234567": "mobile", "07": "fixed"}
        )
    )
    account = dataclasses.replace(ACCOUNT, blacklist=frozenset({"0711111111"}))
    decision = rules.decide(_request(tel), account, TUESDAY_10H, settings, faults=faults)
    assert [r.code for r in decision.results] == [code]
