"""The provider's HTTP API fields read into a Request, its general errors and answer shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core import codes, httpapi
from gateway.core.httpapi import GeneralError
from gateway.core.model import Channel, Decision, Recipient, Request, Result, RuleSettings, Sms

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Paris


def _send(multi: bool = False, **fields: object) -> Request | GeneralError:
    return httpapi.send_request(
        {k.lower(): v for k, v in fields.items()}, multi=multi, now=NOW, max_recipients=3
    )


def _request(multi: bool = False, **fields: object) -> Request:
    built = _send(multi, **fields)
    assert isinstance(built, Request), built
    return built


def test_sms_gives_one_http_recipient() -> None:
    built = _request(keyid="k", num="0601020304", sms="Bonjour", emetteur="MaSociete")
    assert built.recipients == (Recipient("0601020304", "Bonjour"),)
    assert (built.channel, built.keyid, built.emetteur) == (Channel.HTTP, "k", "MaSociete")
    assert built.due_at is None and built.ucs2 is False


def test_a_json_number_is_read_as_its_digits() -> None:
    assert _request(keyid="k", num=33601020304, sms="x").recipients[0].tel == "33601020304"


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"num": "0601020304", "sms": "x"}, codes.LOGIN_EMPTY, "keyid"),
        ({"keyid": "  ", "num": "0601020304", "sms": "x"}, codes.LOGIN_EMPTY, "keyid"),
        ({"keyid": "k", "sms": "x"}, codes.INTERNAL, "num"),
        ({"keyid": "k", "num": "0601020304"}, codes.INTERNAL, "sms"),
        ({"keyid": "k", "num": {"a": 1}, "sms": "x"}, codes.INTERNAL, "num"),
        ({"keyid": "k", "num": ["06", "07"], "sms": "x"}, codes.INTERNAL, "num"),
        ({"keyid": "k", "num": "06", "sms": True}, codes.INTERNAL, "sms"),
        ({"keyid": "k", "num": "06", "sms": "x", "date_envoi": "demain"}, 999, "date_envoi"),
        ({"keyid": "k", "num": "06", "sms": "x", "date_envoi": "2026-02-30 10:00"}, 999,
         "date_envoi"),
        ({"keyid": "k", "num": "06", "sms": "x", "date_envoi": "0001-01-01 10:00"}, 999,
         "date_envoi"),
        ({"keyid": "k", "num": "06", "sms": "x", "date_envoi": "2027-01-01 10:00",
          "gmt_zone": "Mars/Olympus"}, 999, "gmt_zone"),
    ],
)
def test_general_errors_name_their_field(fields: dict[str, object], code: int, field: str) -> None:
    error = _send(**fields)
    assert isinstance(error, GeneralError)
    assert (error.code, error.field) == (code, field)
    if code == codes.INTERNAL:
        assert field in error.message and error.message.startswith(codes.MESSAGES[999])


def test_smsmulti_one_text_for_all_or_one_per_number() -> None:
    shared = _request(True, keyid="k", num=["0601020304", "0601020305"], sms="Bonjour")
    assert [r.text for r in shared.recipients] == ["Bonjour", "Bonjour"]
    own = _request(True, keyid="k", num=["0601020304", "0601020305"], sms=["a", "b"])
    assert [r.text for r in own.recipients] == ["a", "b"]
    assert own.numbered is True


def test_smsmulti_texts_neither_one_nor_one_per_number_is_999_sms() -> None:
    error = _send(True, keyid="k", num=["0601020304", "0601020305"], sms=["a", "b", "c"])
    assert isinstance(error, GeneralError)
    assert (error.code, error.field) == (codes.INTERNAL, "sms")
    assert "3 for 2" in error.message


def test_smsmulti_trackers_per_number() -> None:
    built = _request(True, keyid="k", num=["0601020304", "0601020305"], sms="x", tracker=["a", "b"])
    assert [r.tracker for r in built.recipients] == ["a", "b"]
    one = _request(True, keyid="k", num=["0601020304", "0601020305"], sms="x", tracker="t")
    assert [r.tracker for r in one.recipients] == ["t", "t"]


def test_smsmulti_more_numbers_than_the_limit_is_23() -> None:
    error = _send(True, keyid="k", num=["0601020304"] * 4, sms="x")
    assert isinstance(error, GeneralError) and error.code == codes.TOO_MANY_NUMBERS


def test_smsmulti_directory_numbers_follow_num() -> None:
    built = httpapi.send_request(
        {"keyid": "k", "num": ["0601020304"], "sms": "x", "repertoireid": "7"},
        multi=True,
        now=NOW,
        max_recipients=3,
        directory=("0601020305", "0601020306"),
    )
    assert isinstance(built, Request)
    assert [r.tel for r in built.recipients] == ["0601020304", "0601020305", "0601020306"]


@pytest.mark.parametrize(
    ("date_envoi", "zone", "expected"),
    [
        ("2026-12-24 18:30", None, datetime(2026, 12, 24, 17, 30, tzinfo=UTC)),
        ("2027-07-14 18:30", None, datetime(2027, 7, 14, 16, 30, tzinfo=UTC)),  # summer time
        ("2026-12-24 18:30", "America/New_York", datetime(2026, 12, 24, 23, 30, tzinfo=UTC)),
        ("2026-12-24 18:30:15", "Etc/GMT-12", datetime(2026, 12, 24, 6, 30, 15, tzinfo=UTC)),
        ("2026-12-01 09:59", None, None),  # already past: sent now
        ("", None, None),
    ],
)
def test_date_envoi_is_read_in_its_zone(
    date_envoi: str, zone: str | None, expected: datetime | None
) -> None:
    fields: dict[str, object] = {"keyid": "k", "num": "06", "sms": "x", "date_envoi": date_envoi}
    if zone is not None:
        fields["gmt_zone"] = zone
    assert _request(**fields).due_at == expected


def test_ucs2_and_nostop_flags() -> None:
    built = _request(keyid="k", num="06", sms="x", ucs2="1", nostop=1)
    assert built.ucs2 is True and built.nostop == "1"


def test_send_entries_are_strings_in_request_order() -> None:
    decision = Decision(
        results=(
            Result("0601020304", 0, Sms("0601020304", "36111", "x", 2, "gsm7")),
            Result("0101020304", codes.NOT_ASSIGNED),
        ),
        debit=2,
    )
    assert httpapi.etat(httpapi.send_entries(decision)) == {
        "etat": {
            "etat": [
                {"code": "0", "tel": "0601020304", "message": codes.MESSAGES[0], "smslong": "2"},
                {"code": "21", "tel": "0101020304", "message": codes.MESSAGES[21],
                 "smslong": "0"},
            ]
        }
    }


def test_error_body_has_no_tel() -> None:
    body = httpapi.error_body(GeneralError(codes.BAD_CREDENTIALS, "keyid"))
    assert body == {"etat": {"etat": [{"code": "3", "message": codes.MESSAGES[3]}]}}


def test_count_entries_count_as_a_send_would() -> None:
    request = _request(keyid="k", num="0601020304", sms="a" * 148, emetteur="MaSociete")
    (entry,) = httpapi.count_entries(request, RuleSettings(), nostop_allowed=False)
    assert entry == {"tel": "0601020304", "nb_sms": "1", "nb_caractere": "160"}
    plain = _request(keyid="k", num="0601020304", sms="a" * 161)
    (entry,) = httpapi.count_entries(plain, RuleSettings(), nostop_allowed=False)
    assert entry == {"tel": "0601020304", "nb_sms": "2", "nb_caractere": "161"}
    nostop = _request(keyid="k", num="06", sms="abc", emetteur="MaSociete", nostop="1")
    (entry,) = httpapi.count_entries(nostop, RuleSettings(), nostop_allowed=True)
    assert entry["nb_caractere"] == "3"
