"""Ack and Not bodies, byte for byte in the provider's shapes."""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

import pytest

from gateway.core import codes, replies

ACK_0 = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    "<etatAck>\n"
    "<emailId>1548</emailId>\n"
    "<code>0</code>\n"
    "<message>Votre email a bien ete traite</message>\n"
    "</etatAck>\n"
)


def test_ack_has_the_documents_shape() -> None:
    assert replies.ack("1548", 0) == ACK_0


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (0, "Votre email a bien ete traite"),
        (1, "emailId deja traite"),
        (2, "emailId non renseigne"),
    ],
)
def test_ack_message_follows_the_code(code: int, message: str) -> None:
    assert f"<code>{code}</code>\n<message>{message}</message>" in replies.ack("7", code)


def test_ack_without_email_id_says_question_mark() -> None:
    assert "<emailId>?</emailId>" in replies.ack(None, 2)


def test_not_single_form_uses_plain_etat() -> None:
    body = replies.not_report("1548", [("0601020304", 0)], numbered=False)
    assert body == (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        "<etatNot>\n<emailId>1548</emailId>\n</etatNot>\n"
        "<etat>\n<code>0</code>\n<tel>0601020304</tel>\n"
        "<message>Votre message a bien été envoyé</message>\n</etat>\n"
    )


def test_not_numbered_form_counts_from_one() -> None:
    body = replies.not_report("9", [("0601020304", 0), ("0601020305", 7)], numbered=True)
    assert "<etat1>\n<code1>0</code1>\n<tel1>0601020304</tel1>" in body
    assert (
        "<etat2>\n<code2>7</code2>\n<tel2>0601020305</tel2>\n"
        "<message2>Un numéro de téléphone est sur 10 chiffres</message2>\n</etat2>\n"
    ) in body


def test_not_escapes_what_the_client_wrote() -> None:
    body = replies.not_report("1", [("<06>&", 7)], numbered=False)
    assert "<tel>&lt;06&gt;&amp;</tel>" in body


def test_encoding_is_latin1_with_character_references_beyond() -> None:
    assert replies.encode("é€") == b"\xe9&#8364;"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("ack@masociete.com", "ack@masociete.com"),
        ("  ack@masociete.com ", "ack@masociete.com"),
        ("ack@masociete.com\r\nBcc: victim@example.org", None),
        ("a@b.com, c@d.com", None),
        ("Name <a@b.com>", None),
        ("no-at-sign", None),
        ("a@b..com", None),
        ("", None),
    ],
)
def test_reply_address_is_exactly_one_plain_address(given: str, expected: str | None) -> None:
    assert replies.reply_address(given) == expected


def _not_line_by_line(email_id: str, results: list[tuple[str, int]], *, numbered: bool) -> str:
    """The Not body as the document shows it: five lines per number, every value escaped."""

    def text(value: str) -> str:
        return escape(re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", "", value))

    lines = [replies.DECLARATION, "<etatNot>", f"<emailId>{text(email_id)}</emailId>", "</etatNot>"]
    for index, (tel, code) in enumerate(results, start=1):
        n = str(index) if numbered else ""
        lines += [
            f"<etat{n}>",
            f"<code{n}>{code}</code{n}>",
            f"<tel{n}>{text(tel)}</tel{n}>",
            f"<message{n}>{text(codes.message(code))}</message{n}>",
            f"</etat{n}>",
        ]
    return "\n".join([*lines, ""])


@pytest.mark.parametrize("numbered", [False, True])
def test_not_of_plain_numbers_is_the_documents_shape_escaped_or_not(numbered: bool) -> None:
    results = [
        ("0601020304", 0),
        ("06 01 02 03 04", 7),
        ("+33601020304", 0),
        ("06<01>&02", 7),
        ("06\r\n01", 7),
        ("０６０１０２０３０４", 7),
        ("", 6),
        ("abc", 7),
        ("0699000024", 24),
        ("0699001000", 1000),
        ("0699000999", 999),
        ("0601020304", 27),
        ("0601020304", 12345),  # no annex message: the generic one
    ]
    expected = _not_line_by_line("42", results, numbered=numbered)
    assert replies.not_report("42", results, numbered=numbered) == expected
