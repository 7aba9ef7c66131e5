"""From <envoi> fields and attachments to a Request."""

from __future__ import annotations

from types import MappingProxyType

from gateway.core import codes, request
from gateway.core.model import Attachment, Envoi, Recipient


def _envoi(**fields: str) -> Envoi:
    return Envoi(found=True, fields=MappingProxyType({k.lower(): v for k, v in fields.items()}))


def test_num_gives_the_single_form() -> None:
    built = request.build(_envoi(keyid="k", num="0601020304", sms="hi"), (), max_recipients=500)
    assert built.recipients == (Recipient("0601020304", "hi"),)
    assert built.numbered is False


def test_numx_are_ordered_by_their_number_and_share_sms() -> None:
    built = request.build(
        _envoi(num2="0601020305", num10="0601020310", num1="0601020304", sms="hi"),
        (),
        max_recipients=500,
    )
    assert [r.tel for r in built.recipients] == ["0601020304", "0601020305", "0601020310"]
    assert {r.text for r in built.recipients} == {"hi"}
    assert built.numbered is True


def test_smsx_goes_to_numx_and_sms_is_the_default() -> None:
    built = request.build(
        _envoi(num1="0601020304", num2="0601020305", sms1="one", sms="default"),
        (),
        max_recipients=500,
    )
    assert [r.text for r in built.recipients] == ["one", "default"]


def test_num_beside_numx_is_ignored_with_a_note() -> None:
    built = request.build(_envoi(num="0600000000", num1="0601020304"), (), max_recipients=500)
    assert [r.tel for r in built.recipients] == ["0601020304"]
    assert any("num ignored" in note for note in built.notes)


def test_no_number_at_all_is_one_empty_recipient() -> None:
    built = request.build(_envoi(keyid="k", sms="hi"), (), max_recipients=500)
    assert built.recipients == (Recipient("", "hi"),)


def test_more_recipients_than_the_limit_refuses_the_request() -> None:
    fields = {f"num{i}": "0601020304" for i in range(1, 4)}
    built = request.build(_envoi(**fields), (), max_recipients=2)
    assert built.refusal == codes.TOO_MANY_NUMBERS
    assert built.recipients == ()


def test_csv_attachments_replace_the_body_numbers() -> None:
    files = (
        Attachment("mobiles.csv", b"0601020304;;Michel\n0601020305;;Sarah\n"),
        Attachment("message.csv", b"Bonjour [1]\n"),
    )
    built = request.build(_envoi(num="0600000000"), files, max_recipients=500)
    assert built.recipients == (
        Recipient("0601020304", "Bonjour Michel"),
        Recipient("0601020305", "Bonjour Sarah"),
    )
    assert built.numbered is True


def test_one_csv_file_alone_is_an_invalid_file() -> None:
    built = request.build(_envoi(), (Attachment("mobiles.csv", b"0601020304\n"),), max_recipients=5)
    assert built.refusal == codes.INVALID_FILE


def test_csv_over_the_limit_is_code_23() -> None:
    files = (
        Attachment("mobiles.csv", b"0601020304\n0601020305\n0601020306\n"),
        Attachment("message.csv", b"hi\n"),
    )
    assert request.build(_envoi(), files, max_recipients=2).refusal == codes.TOO_MANY_NUMBERS


def test_absent_emetteur_and_smslong_stay_none() -> None:
    built = request.build(_envoi(num="0601020304"), (), max_recipients=5)
    assert built.emetteur is None
    assert built.smslong is None


def test_num0_and_leading_zeros_are_not_recipients_and_are_noted() -> None:
    built = request.build(
        _envoi(num0="0601020300", num01="0601020301", num1="0601020304", sms="hi"),
        (),
        max_recipients=500,
    )
    assert [r.tel for r in built.recipients] == ["0601020304"]
    assert any("<num0>" in note and "<num01>" in note for note in built.notes)


def test_numbered_tags_are_ordered_by_x_and_odd_ones_noted_in_body_order() -> None:
    built = request.build(
        _envoi(
            num10="0601020310",
            num1234567="0601020399",
            num2="0601020302",
            numx="0601020398",
            num007="0601020397",
            num1="0601020301",
            sms2="two",
            sms="all",
        ),
        (),
        max_recipients=500,
    )
    assert [(r.tel, r.text) for r in built.recipients] == [
        ("0601020301", "all"),
        ("0601020302", "two"),
        ("0601020310", "all"),
    ]
    assert built.notes[0].startswith("<num1234567>, <num007> ignored")
    assert built.numbered and built.refusal is None


def test_num_beyond_the_limit_is_one_number_too_many() -> None:
    built = request.build(_envoi(num501="0601020304", sms="hi"), (), max_recipients=500)
    assert built.refusal == codes.TOO_MANY_NUMBERS
    assert built.recipients == ()


def test_num500_is_the_last_recipient_tag() -> None:
    built = request.build(_envoi(num500="0601020304", sms="hi"), (), max_recipients=500)
    assert built.refusal is None
    assert [r.tel for r in built.recipients] == ["0601020304"]


def test_a_huge_csv_is_code_23_after_reading_one_line_past_the_limit() -> None:
    mobiles = b"".join(b"06%08d;;v\n" % i for i in range(200_000))
    built = request.build(
        _envoi(keyid="k"),
        (Attachment("mobiles.csv", mobiles), Attachment("message.csv", b"[1]\n")),
        max_recipients=500,
    )
    assert built.refusal == codes.TOO_MANY_NUMBERS
