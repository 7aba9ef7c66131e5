"""What becomes of one email: the emailId ladder, the replies, refusals; by tables."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from gateway.core import codes, outcome, replies
from gateway.core.model import (
    Account,
    EmailStatus,
    Fault,
    Inbound,
    MailContent,
    Recipient,
    ReplyKind,
    Request,
    RuleSettings,
)
from gateway.core.outcome import Reply

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # a Tuesday, 10:00 in Paris
SETTINGS = RuleSettings()
ACCOUNT = Account(
    id=7,
    keyid="demo",
    domains=frozenset({"example.com"}),
    credit=1000,
    senders=frozenset({"MaSociete"}),
)
ACK = "ack@example.com"
NOT = "not@example.com"


def _request(**fields: object) -> Request:
    base: dict[str, object] = {
        "keyid": "demo",
        "email_id": "42",
        "email_ack": ACK,
        "email_not": NOT,
        "emetteur": None,
        "tracker": "",
        "smslong": None,
        "nostop": "",
        "recipients": (Recipient("0601020304", "Bonjour"),),
        "numbered": False,
    }
    base.update(fields)
    return Request(**base)  # type: ignore[arg-type]


def _inbound(
    request: Request | None = None,
    *,
    from_address: str = "app@example.com",
    envelope_from: str = "app@example.com",
    client_ip: str = "127.0.0.1",
    reason: str = "",
) -> Inbound:
    content = MailContent(
        from_address=from_address, text=None if reason else "<envoi/>", reason=reason
    )
    return Inbound(b"raw", envelope_from, client_ip, content, None if reason else request)


def _decide(
    inbound: Inbound, account: Account | None = ACCOUNT, *, claimed: bool = True, **kw: object
) -> outcome.Outcome:
    return outcome.decide(
        inbound,
        account,
        claimed=claimed,
        now=NOW,
        settings=SETTINGS,
        **kw,  # type: ignore[arg-type]
    )


def _kinds(result: outcome.Outcome) -> list[ReplyKind]:
    return [reply.kind for reply in result.replies]


# --- the ladder, rung by rung ------------------------------------------------------------------

NOT_PROCESSABLE = _inbound(reason="no text/plain part")
LOGIN_EMPTY = _inbound(_request(keyid="  "))
UNKNOWN_KEYID = _inbound(_request(keyid="nope"))
OTHER_DOMAIN = _inbound(_request(), from_address="app@other.com")
OTHER_ENVELOPE = _inbound(_request(), envelope_from="bounce@other.com")
IP_REFUSED = _inbound(_request(), client_ip="10.9.9.9")
IP_ACCOUNT = Account(
    id=7, keyid="demo", domains=frozenset({"example.com"}), allowed_ips=("10.0.0.1",)
)
NO_EMAIL_ID = _inbound(_request(email_id=""))
TEXT_EMAIL_ID = _inbound(_request(email_id="abc"))
ORDINARY = _inbound(_request())
TOO_MANY = _inbound(_request(recipients=(), numbered=True, refusal=codes.TOO_MANY_NUMBERS))
BAD_FILE = _inbound(_request(recipients=(), numbered=True, refusal=codes.INVALID_FILE))


@pytest.mark.parametrize(
    ("inbound", "account", "claimed", "status", "code", "kinds"),
    [
        (NOT_PROCESSABLE, ACCOUNT, True, EmailStatus.NOT_PROCESSED, None, []),
        (LOGIN_EMPTY, None, True, EmailStatus.REFUSED, codes.LOGIN_EMPTY, []),
        (UNKNOWN_KEYID, None, True, EmailStatus.REFUSED, codes.BAD_CREDENTIALS, []),
        (OTHER_DOMAIN, ACCOUNT, True, EmailStatus.REFUSED, codes.DOMAIN_REFUSED, []),
        (OTHER_ENVELOPE, ACCOUNT, True, EmailStatus.REFUSED, codes.DOMAIN_REFUSED, []),
        (IP_REFUSED, IP_ACCOUNT, True, EmailStatus.REFUSED, codes.IP_NOT_ALLOWED, []),
        (NO_EMAIL_ID, ACCOUNT, True, EmailStatus.REFUSED, None, [ReplyKind.ACK]),
        (TEXT_EMAIL_ID, ACCOUNT, True, EmailStatus.REFUSED, None, [ReplyKind.ACK]),
        (ORDINARY, ACCOUNT, False, EmailStatus.DUPLICATE, None, [ReplyKind.ACK]),
        (ORDINARY, ACCOUNT, True, EmailStatus.PROCESSED, None, [ReplyKind.ACK, ReplyKind.NOT]),
        (TOO_MANY, ACCOUNT, True, EmailStatus.PROCESSED, 23, [ReplyKind.ACK, ReplyKind.NOT]),
        (BAD_FILE, ACCOUNT, True, EmailStatus.PROCESSED, 102, [ReplyKind.ACK, ReplyKind.NOT]),
    ],
    ids=[
        "not-processable",
        "keyid-empty-1",
        "keyid-unknown-3",
        "from-domain-30",
        "envelope-domain-30",
        "ip-14",
        "emailid-missing-ack2",
        "emailid-not-numeric-ack2",
        "emailid-claimed-before-ack1",
        "processed-ack0",
        "too-many-numbers-23",
        "invalid-file-102",
    ],
)
def test_each_rung_of_the_ladder(
    inbound: Inbound,
    account: Account | None,
    claimed: bool,
    status: EmailStatus,
    code: int | None,
    kinds: list[ReplyKind],
) -> None:
    result = _decide(inbound, account, claimed=claimed)
    assert (result.status, result.code, _kinds(result)) == (status, code, kinds)


@pytest.mark.parametrize(
    ("inbound", "account", "expected"),
    [
        (NOT_PROCESSABLE, ACCOUNT, None),
        (LOGIN_EMPTY, None, None),
        (UNKNOWN_KEYID, None, None),
        (OTHER_DOMAIN, ACCOUNT, None),
        (IP_REFUSED, IP_ACCOUNT, None),
        (NO_EMAIL_ID, ACCOUNT, None),
        (TEXT_EMAIL_ID, ACCOUNT, None),
        (_inbound(_request(email_id=" 42 ")), ACCOUNT, "42"),
        (TOO_MANY, ACCOUNT, "42"),
    ],
    ids=[
        "not-processable",
        "keyid-empty",
        "keyid-unknown",
        "domain",
        "ip",
        "emailid-missing",
        "emailid-not-numeric",
        "authorised-trimmed",
        "whole-request-refusal-still-claims",
    ],
)
def test_only_an_authorised_email_with_a_valid_email_id_claims_it(
    inbound: Inbound, account: Account | None, expected: str | None
) -> None:
    assert outcome.claim_for(inbound, account) == expected


def test_a_refused_email_replies_to_no_one_and_says_so() -> None:
    result = _decide(OTHER_DOMAIN)
    assert result.replies == ()
    assert result.reason == "30: Erreur sur le domaine de connexion; no reply"
    assert (result.keyid, result.account_id, result.email_id) == ("demo", 7, None)


def test_an_unknown_keyid_is_kept_without_an_account() -> None:
    result = _decide(UNKNOWN_KEYID, None)
    assert (result.keyid, result.account_id) == ("nope", None)


def test_ack_2_carries_the_given_email_id_cut_to_64() -> None:
    given = "x" * 70
    result = _decide(_inbound(_request(email_id=given)))
    assert result.email_id == "x" * 64
    assert result.replies == (
        Reply(ReplyKind.ACK, ACK, replies.ack("x" * 64, codes.ACK_MISSING_ID)),
    )


def test_ack_2_of_a_missing_email_id_says_question_mark() -> None:
    (reply,) = _decide(NO_EMAIL_ID).replies
    assert "<emailId>?</emailId>" in reply.body and "<code>2</code>" in reply.body


def test_ack_1_sends_nothing_and_debits_nothing() -> None:
    result = _decide(ORDINARY, claimed=False)
    assert (result.results, result.debit) == ((), 0)
    assert result.replies == (Reply(ReplyKind.ACK, ACK, replies.ack("42", codes.ACK_DUPLICATE)),)
    assert result.reason == "emailId already processed: Ack 1, nothing sent"


def test_a_processed_email_sends_acks_0_and_the_single_form_not() -> None:
    result = _decide(ORDINARY)
    assert [r.code for r in result.results] == [0]
    assert result.debit == 1 and len(result.sms) == 1
    assert bodies(result.replies) == [
        (ReplyKind.ACK, ACK, replies.ack("42", codes.ACK_PROCESSED)),
        (ReplyKind.NOT, NOT, replies.not_report("42", [("0601020304", 0)], numbered=False)),
    ]


def bodies(queued: Sequence[Reply]) -> list[tuple[ReplyKind, str, str]]:
    """Each reply's kind, address and body as sent (a Not report rendered)."""
    return [(reply.kind, reply.to, reply.body) for reply in queued]


def test_a_not_report_is_queued_as_what_it_says_and_rendered_when_asked() -> None:
    (_, report) = _decide(ORDINARY).replies
    assert report.content == replies.NotReport("42", (("0601020304", 0),), numbered=False)
    assert report.body == replies.not_report("42", [("0601020304", 0)], numbered=False)


def test_a_numbered_request_gets_the_numbered_not() -> None:
    numbered = _request(
        recipients=(Recipient("0601020304", "a"), Recipient("07", "b")), numbered=True
    )
    (_, report) = _decide(_inbound(numbered)).replies
    assert report.body == replies.not_report(
        "42", [("0601020304", 0), ("07", codes.NUMBER_NOT_10_DIGITS)], numbered=True
    )


@pytest.mark.parametrize("code", [codes.TOO_MANY_NUMBERS, codes.INVALID_FILE])
def test_a_whole_request_refusal_acks_0_and_nots_its_code_with_an_empty_tel(code: int) -> None:
    result = _decide(_inbound(_request(recipients=(), numbered=True, refusal=code)))
    assert bodies(result.replies) == [
        (ReplyKind.ACK, ACK, replies.ack("42", codes.ACK_PROCESSED)),
        (ReplyKind.NOT, NOT, replies.not_report("42", [("", code)], numbered=False)),
    ]
    assert [(r.tel, r.code, r.sms) for r in result.results] == [("", code, None)]
    assert (result.debit, result.reason) == (0, f"request refused: {code}")


@pytest.mark.parametrize(
    ("ack", "not_", "kinds", "warned"),
    [
        ("", "", [], []),
        ("a@x.com, b@y.com", NOT, [ReplyKind.NOT], ["emailAck"]),
        (ACK, "x@y.com\r\nBcc: v@evil.test", [ReplyKind.ACK], ["emailNot"]),
        ("Name <a@x.com>", "no-at-sign", [], ["emailAck", "emailNot"]),
        (" ack@example.com ", NOT, [ReplyKind.ACK, ReplyKind.NOT], []),
    ],
    ids=["none-given", "ack-list", "not-injection", "both-bad", "trimmed"],
)
def test_a_bad_reply_address_is_a_warning_not_a_reply(
    ack: str, not_: str, kinds: list[ReplyKind], warned: list[str]
) -> None:
    result = _decide(_inbound(_request(email_ack=ack, email_not=not_)))
    assert _kinds(result) == kinds
    assert [w.split(" ", 1)[0] for w in result.warnings] == warned
    assert all(w.endswith("is not one plain address: no reply sent there") for w in result.warnings)


@pytest.mark.parametrize(
    ("inbound", "claimed"),
    [(NO_EMAIL_ID, True), (ORDINARY, False), (TOO_MANY, True)],
    ids=["ack2", "ack1", "whole-request-refusal"],
)
def test_a_bad_reply_address_is_a_warning_on_every_replying_rung(
    inbound: Inbound, claimed: bool
) -> None:
    assert inbound.request is not None
    bad = _inbound(Request(**{**_fields(inbound.request), "email_ack": "a@x.com, b@y.com"}))
    result = _decide(bad, claimed=claimed)
    assert ReplyKind.ACK not in _kinds(result)
    assert result.warnings[-1].startswith("emailAck 'a@x.com, b@y.com' is not one plain address")


def test_nostop_on_an_account_not_approved_is_a_warning() -> None:
    result = _decide(_inbound(_request(nostop="1", emetteur="MaSociete")))
    assert result.warnings == ("nostop=1 ignored: the account is not approved to remove the STOP",)
    assert result.sms[0].text.endswith("STOP SMS au 36111")


def test_the_requests_notes_come_first_among_the_warnings() -> None:
    noted = _request(notes=("num ignored: numX tags give the recipients",), email_ack="bad")
    result = _decide(_inbound(noted))
    assert result.warnings[0] == "num ignored: numX tags give the recipients"
    assert result.warnings[1].startswith("emailAck 'bad'")


def test_faults_and_rate_budget_reach_the_rules() -> None:
    fault = Fault(id=5, code=codes.FULL_MVNO, remaining=1)
    two = _request(recipients=(Recipient("0601020304", "a"), Recipient("0601020305", "b")))
    result = _decide(_inbound(two), faults=(fault,), rate_budget=0)
    assert [r.code for r in result.results] == [codes.FULL_MVNO, codes.OVERFLOW]
    assert dict(result.faults_used) == {5: 1}
    assert result.debit == 0


def test_the_tracker_is_cleaned_for_the_sms() -> None:
    result = _decide(_inbound(_request(tracker="ab cd")))
    assert result.tracker == "abcd"
    assert result.warnings[0].startswith("tracker 'ab cd'")


@pytest.mark.parametrize(
    ("inbound", "expected"),
    [(NOT_PROCESSABLE, ""), (_inbound(_request(keyid=" demo ")), "demo"), (LOGIN_EMPTY, "")],
    ids=["not-processable", "trimmed", "blank"],
)
def test_account_key_is_the_trimmed_keyid(inbound: Inbound, expected: str) -> None:
    assert outcome.account_key(inbound) == expected


def _fields(request: Request) -> dict[str, object]:
    return {name: getattr(request, name) for name in Request.__dataclass_fields__}
