"""Reading raw emails: bodies, charsets, transfer encodings, format=flowed, attachments."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.mime import extract
from gateway.core.model import Attachment

MAIL = Path(__file__).parent.parent / "fixtures" / "mail"

ENVOI_THUNDERBIRD = (
    "Bonjour,\n\n<envoi>\n<keyid>a296464ce012b8ab710a</keyid>\n<num>0601020304</num>\n"
    "<sms>L'été est fini! Super promo -10% à partir de 50€ d'achat !!! Offre valable "
    "jusqu'au 30/09 en magasin.</sms>\n<emetteur>MaSociete</emetteur>\n"
    "<emailNot>not@masociete.com</emailNot>\n<emailAck>ack@masociete.com</emailAck>\n"
    "<emailId>1548</emailId>\n</envoi>\n\n-- \nJérôme Martin\n"
)
ENVOI_OUTLOOK = (
    "<envoi>\n<keyid>a296464ce012b8ab710a</keyid>\n<num1>0601020304</num1>\n"
    "<num2>0601020305</num2>\n"
    "<sms1>L’été est fini! Super promo -10% à partir de 50€ d’achat !!!</sms1>\n"
    "<sms2>L’été est fini! Super promo -20% à partir de 100€ d’achat !!!</sms2>\n"
    "<emetteur>MaSociete</emetteur>\n<emailNot>not@masociete.com</emailNot>\n"
    "<emailAck>ack@masociete.com</emailAck>\n<emailId>1548</emailId>\n</envoi>\n\n"
    "Cordialement,\nSophie Martin\n\n"
)
ENVOI_APPLE = (
    "<envoi>\n<keyid>a296464ce012b8ab710a</keyid>\n<num>0601020304</num>\n"
    "<sms>Rendez-vous confirmé demain à 10h30 au cabinet du docteur Lefèvre.ÖMerci de "
    "prévenir en cas d'empêchement.</sms>\n<emailId>2001</emailId>\n</envoi>\n"
)
ENVOI_PYTHON = (
    "<envoi>\n<keyid>a296464ce012b8ab710a</keyid>\n<num1>0601020304</num1>\n"
    "<num2>0601020305</num2>\n"
    "<sms>L'été est fini! Super promo -10% à partir de 50€ d'achat !!!</sms>\n"
    "<emetteur>MaSociete</emetteur>\n<tracker>monCompte_monId</tracker>\n"
    "<emailNot>not@masociete.com</emailNot>\n<emailAck>ack@masociete.com</emailAck>\n"
    "<emailId>1548</emailId>\n</envoi>\n"
)
ENVOI_CSV = (
    "<envoi>\n<keyid>a296464ce012b8ab710a</keyid>\n<emetteur>MaSociete</emetteur>\n"
    "<emailNot>not@masociete.com</emailNot>\n<emailAck>ack@masociete.com</emailAck>\n"
    "<emailId>{}</emailId>\n</envoi>\n"
)


def fixture(name: str, *, crlf: bool = False) -> bytes:
    raw = (MAIL / name).read_bytes()
    return raw.replace(b"\n", b"\r\n") if crlf else raw


def mail(headers: str, body: bytes = b"<envoi></envoi>\n") -> bytes:
    """A minimal email: the given header lines (LF-separated), a blank line, the body."""
    head = "From: Jean <jean@example.com>\n" + headers
    return head.rstrip("\n").encode("ascii").replace(b"\n", b"\r\n") + b"\r\n\r\n" + body


def mixed(*parts: str, boundary: str = "b0") -> bytes:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return mail(
        f'Content-Type: multipart/mixed; boundary="{boundary}"', body.encode("utf-8", "strict")
    )


TEXT_PART = "Content-Type: text/plain; charset=utf-8\r\n\r\n<envoi></envoi>"


# -- the clients' own emails ---------------------------------------------------------------


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("thunderbird_utf8_flowed.eml", ENVOI_THUNDERBIRD),
        ("outlook_cp1252_qp.eml", ENVOI_OUTLOOK),
        ("apple_mail_flowed_delsp.eml", ENVOI_APPLE),
        ("python_email_base64.eml", ENVOI_PYTHON),
        ("thunderbird_csv_rfc2231.eml", ENVOI_CSV.format(1548)),
        ("outlook_csv_rfc2047.eml", ENVOI_CSV.format(1549) + "\n"),
    ],
)
def test_client_email_gives_its_exact_text(name: str, text: str, crlf: bool) -> None:
    content = extract(fixture(name, crlf=crlf))
    assert (content.text, content.reason) == (text, "")


@pytest.mark.parametrize(
    ("name", "from_address", "subject", "message_id"),
    [
        (
            "thunderbird_utf8_flowed.eml",
            "jerome.martin@example.com",
            "Promo de l’été",
            "<5b0c6c1e-9d1a-4b1b-8a8e-3f1f6f0c2a11@example.com>",
        ),
        (
            "outlook_cp1252_qp.eml",
            "sophie.martin@example.com",
            "Envoi SMS",
            "<AM0PR01MB1234567890ABCDEF@AM0PR01MB1234.eurprd01.prod.outlook.com>",
        ),
        (
            "apple_mail_flowed_delsp.eml",
            "claire.dubois@example.com",
            "Rappel",
            "<A1B2C3D4-E5F6-7890-ABCD-EF1234567890@example.com>",
        ),
        (
            "python_email_base64.eml",
            "robot@example.com",
            "Envoi 1548",
            "<170000000000.4242.1548@app.example.com>",
        ),
    ],
)
def test_client_email_gives_its_from_subject_and_message_id(
    name: str, from_address: str, subject: str, message_id: str
) -> None:
    content = extract(fixture(name))
    assert (content.from_address, content.subject, content.message_id) == (
        from_address,
        subject,
        message_id,
    )


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("html_only.eml", "html body: only text/plain is processed"),
        ("gmail_alternative.eml", "multipart/alternative: only text/plain is processed"),
    ],
)
def test_formatted_client_email_is_not_processed(name: str, reason: str) -> None:
    content = extract(fixture(name))
    assert (content.text, content.reason, content.attachments) == (None, reason, ())


def test_thunderbird_csv_attachments_keep_rfc2231_names_and_bytes() -> None:
    content = extract(fixture("thunderbird_csv_rfc2231.eml"))
    assert content.attachments == (
        Attachment(
            "mobiles.csv",
            "\ufeff0601020304;;Michel;;Martin;;10/10/2015\r\n"
            "0601020305;;Sarah;;Dupont;;02/08/2015\r\n".encode(),
        ),
        Attachment(
            "message.csv", b"Bonjour [1] [2], votre nouvelle carte sera disponible le [3]\r\n"
        ),
    )


def test_outlook_csv_attachments_keep_rfc2047_names_and_bytes() -> None:
    content = extract(fixture("outlook_csv_rfc2047.eml"))
    assert content.attachments == (
        Attachment(
            "mobiles.csv",
            "0601020304;;Hélène;;Lefèvre;;10/10/2015\r\n\r\n"
            "0601020305;;Zoé;;Dupont;;02/08/2015\r\n".encode("cp1252"),
        ),
        Attachment(
            "Message.csv",
            "Bonjour [1] [2], votre nouvelle carte sera disponible le [3] – à bientôt\r\n".encode(
                "cp1252"
            ),
        ),
    )


# -- transfer encodings and charsets --------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "body", "text"),
    [
        ("Content-Transfer-Encoding: 7bit", b"caf=E9 ok", "caf=E9 ok"),
        ("Content-Transfer-Encoding: 8bit", b"caf\xc3\xa9", "café"),
        ("Content-Transfer-Encoding: binary", b"caf\xc3\xa9", "café"),
        (
            "Content-Transfer-Encoding: quoted-printable",
            b"caf=C3=A9 =3D s=\r\nuite",
            "café = suite",
        ),
        ("Content-Transfer-Encoding: base64", b"Y2Fmw6k=", "café"),
        ("Content-Transfer-Encoding: base64", b"Y2Fm\r\nw6k=\r\n", "café"),
        ("Content-Transfer-Encoding: base64", b"Y2Fmw6k", "café"),  # padding missing
        ("Content-Transfer-Encoding: BASE64 ", b"Y2Fmw6k=", "café"),
        ("Content-Transfer-Encoding: Quoted-Printable", b"caf=C3=A9", "café"),
        ("", b"caf\xc3\xa9", "café"),
    ],
    ids=[
        "7bit",
        "8bit",
        "binary",
        "qp",
        "base64",
        "base64-lines",
        "base64-no-padding",
        "base64-odd-header",
        "qp-capitalised",
        "none",
    ],
)
def test_transfer_encoding_is_decoded(headers: str, body: bytes, text: str) -> None:
    content = extract(mail("Content-Type: text/plain; charset=utf-8\n" + headers, body))
    assert content.text == text


@pytest.mark.parametrize(
    ("charset", "body", "text"),
    [
        ("utf-8", b"50\xe2\x82\xac d\xe2\x80\x99achat", "50€ d’achat"),
        ('"UTF-8"', b"caf\xc3\xa9", "café"),
        ("iso-8859-1", b"50\x80 d\x92achat \xe9t\xe9", "50€ d’achat été"),
        ("ISO-8859-1", b"\x80\x92\xe9", "€’é"),
        ("latin-1", b"\x80\x92\xe9", "€’é"),
        ("latin1", b"\x80\x92\xe9", "€’é"),
        ("windows-1252", b"\x80\x92\xe9", "€’é"),
        ("iso-8859-15", b"\xa4", "€"),
        ("us-ascii", b"plain", "plain"),
        ("us-ascii", b"caf\xc3\xa9", "café"),  # mislabelled UTF-8
        ("us-ascii", b"caf\xe9", "café"),  # mislabelled windows-1252
        ("x-unknown-charset", b"caf\xc3\xa9", "café"),
        ("x-unknown-charset", b"caf\xe9 \x80", "café €"),
        ("base64", b"caf\xe9", "café"),  # a codec, but not a text encoding
        ("utf-8", b"caf\xe9 ok", "caf\ufffd ok"),  # declared UTF-8 that is not: replaced
        ("iso-8859-1", b"\x81", "\ufffd"),  # undefined in windows-1252: replaced
    ],
)
def test_declared_charset_is_decoded(charset: str, body: bytes, text: str) -> None:
    content = extract(mail(f"Content-Type: text/plain; charset={charset}", body))
    assert content.text == text


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"caf\xc3\xa9 50\xe2\x82\xac", "café 50€"),
        (b"caf\xe9 50\x80", "café 50€"),
        (b"plain ascii", "plain ascii"),
        (b"\x81\x8d", "\ufffd\ufffd"),
    ],
    ids=["utf-8", "windows-1252", "ascii", "undecodable"],
)
def test_undeclared_charset_is_utf8_else_windows_1252(body: bytes, text: str) -> None:
    assert extract(mail("Content-Type: text/plain", body)).text == text


def test_missing_content_type_is_read_as_text_plain() -> None:
    assert extract(mail("Subject: x", b"<envoi>caf\xc3\xa9</envoi>")).text == "<envoi>café</envoi>"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"a\r\nb\r\n", "a\nb\n"),
        (b"a\nb\n", "a\nb\n"),
        (b"a\rb\r", "a\nb\n"),
        (b"a\r\n\r\nb", "a\n\nb"),
    ],
    ids=["crlf", "lf", "cr", "blank-line"],
)
def test_line_ends_become_lf(body: bytes, text: str) -> None:
    content = extract(mail("Content-Type: text/plain; charset=utf-8", body))
    assert content.text == text


def test_line_ends_in_base64_text_become_lf() -> None:
    headers = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64"
    assert extract(mail(headers, b"YQ0KYg0K")).text == "a\nb\n"  # "a\r\nb\r\n"


# -- format=flowed (RFC 3676) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "body", "text"),
    [
        ("format=flowed", b"one two \r\nthree\r\n", "one two three\n"),
        ("format=flowed", b"a \r\nb \r\nc\r\nd\r\n", "a b c\nd\n"),
        ("format=flowed; delsp=yes", b"one two  \r\nthree\r\n", "one two three\n"),
        ("format=flowed; delsp=yes", b"emp\xc3\xaa \r\nchement\r\n", "empêchement\n"),
        ("format=flowed; DelSp=Yes", b"emp \r\nchement", "empchement"),
        ("format=flowed; delsp=no", b"one \r\ntwo", "one two"),
        ("format=Flowed", b"one \r\ntwo", "one two"),
        ("format=flowed", b"-- \r\nJean\r\n", "-- \nJean\n"),  # the signature separator
        ("format=flowed", b" From here\r\n  indented\r\n", "From here\n indented\n"),
        ("format=flowed", b"> quoted \r\n> more\r\nreply\r\n", "> quoted more\nreply\n"),
        ("format=flowed", b"> quoted \r\nnot quoted\r\n", "> quoted \nnot quoted\n"),
        ("format=flowed", b"last line \r\n", "last line \n"),
        ("format=flowed", b"last line ", "last line "),
        ("", b"one \r\ntwo \r\n", "one \ntwo \n"),  # not flowed: trailing spaces stay
    ],
)
def test_format_flowed_is_unwrapped(params: str, body: bytes, text: str) -> None:
    headers = "Content-Type: text/plain; charset=utf-8" + (f"; {params}" if params else "")
    assert extract(mail(headers, body)).text == text


def test_format_flowed_is_unwrapped_after_quoted_printable() -> None:
    headers = (
        "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n"
        "Content-Transfer-Encoding: quoted-printable"
    )
    body = b"du docteur =20\r\nLef=C3=A8vre, emp=C3=AA=20\r\nchement\r\n"
    assert extract(mail(headers, body)).text == "du docteur Lefèvre, empêchement\n"


# -- what is and is not processed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "reason"),
    [
        ("text/html; charset=utf-8", "html body: only text/plain is processed"),
        ("TEXT/HTML", "html body: only text/plain is processed"),
        ("application/pdf", "application/pdf body: only text/plain is processed"),
        ("text/enriched", "text/enriched body: only text/plain is processed"),
        ("image/png", "image/png body: only text/plain is processed"),
    ],
)
def test_single_part_that_is_not_text_plain_is_not_processed(
    content_type: str, reason: str
) -> None:
    content = extract(mail(f"Content-Type: {content_type}", b"<envoi></envoi>"))
    assert (content.text, content.reason) == (None, reason)


def test_multipart_alternative_with_html_is_not_processed() -> None:
    body = (
        b"--b1\r\nContent-Type: text/plain\r\n\r\n<envoi></envoi>\r\n"
        b"--b1\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b1--\r\n"
    )
    content = extract(mail('Content-Type: multipart/alternative; boundary="b1"', body))
    assert (content.text, content.reason) == (
        None,
        "multipart/alternative: only text/plain is processed",
    )


def test_multipart_alternative_of_text_plain_only_is_read_as_that_text() -> None:
    body = b"--b1\r\nContent-Type: text/plain\r\n\r\n<envoi></envoi>\r\n--b1--\r\n"
    content = extract(mail('Content-Type: multipart/alternative; boundary="b1"', body))
    assert (content.text, content.reason) == ("<envoi></envoi>", "")


@pytest.mark.parametrize("subtype", ["related", "signed", "report", "digest"])
def test_other_multipart_is_not_processed(subtype: str) -> None:
    body = b"--b1\r\nContent-Type: text/plain\r\n\r\n<envoi></envoi>\r\n--b1--\r\n"
    content = extract(mail(f'Content-Type: multipart/{subtype}; boundary="b1"', body))
    assert (content.text, content.reason) == (
        None,
        f"multipart/{subtype}: only text/plain is processed",
    )


def test_multipart_mixed_reads_its_first_text_plain_part() -> None:
    content = extract(mixed(TEXT_PART))
    assert (content.text, content.reason, content.attachments) == ("<envoi></envoi>", "", ())


def test_multipart_mixed_with_html_body_is_not_processed() -> None:
    content = extract(mixed("Content-Type: text/html\r\n\r\n<p>x</p>"))
    assert (content.text, content.reason) == (None, "html body: only text/plain is processed")


def test_multipart_mixed_with_alternative_body_is_not_processed() -> None:
    alternative = (
        'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nx\r\n"
        "--b2\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--b2--"
    )
    attachment = 'Content-Type: text/csv; name="mobiles.csv"\r\n\r\n0601020304'
    content = extract(mixed(alternative, attachment))
    assert (content.text, content.reason) == (
        None,
        "multipart/alternative: only text/plain is processed",
    )


def test_multipart_mixed_of_attachments_only_is_not_processed() -> None:
    attachment = (
        'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="a.txt"\r\n\r\nx'
    )
    content = extract(mixed(attachment))
    assert content.text is None
    assert content.reason == "multipart/mixed without a text body: only text/plain is processed"


def test_multipart_mixed_body_is_the_first_part_without_a_file_name() -> None:
    attachment = (
        'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="m.csv"\r\n\r\nx'
    )
    content = extract(mixed(attachment, TEXT_PART))
    assert (content.text, content.attachments) == ("<envoi></envoi>", (Attachment("m.csv", b"x"),))


def test_multipart_mixed_parts_without_a_file_name_are_not_attachments() -> None:
    content = extract(mixed(TEXT_PART, "Content-Type: text/plain\r\n\r\nsignature"))
    assert content.attachments == ()


def test_multipart_mixed_without_boundary_is_not_processed() -> None:
    content = extract(mail("Content-Type: multipart/mixed", b"<envoi></envoi>"))
    assert content.text is None
    assert content.reason.startswith("multipart/mixed without a text body")


# -- attachments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "filename"),
    [
        ('Content-Disposition: attachment; filename="mobiles.csv"', "mobiles.csv"),
        ("Content-Disposition: attachment; filename=mobiles.csv", "mobiles.csv"),
        ('Content-Type: text/csv; name="mobiles.csv"', "mobiles.csv"),
        ("Content-Disposition: attachment; filename*=UTF-8''mobiles.csv", "mobiles.csv"),
        ("Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.csv", "café.csv"),
        ("Content-Disposition: attachment; filename*=iso-8859-1'fr'caf%E9.csv", "café.csv"),
        (
            "Content-Disposition: attachment;\r\n filename*0*=UTF-8''mobi;\r\n filename*1=les.csv",
            "mobiles.csv",
        ),
        (
            'Content-Disposition: attachment; filename="=?UTF-8?B?bWVzc2FnZS5jc3Y=?="',
            "message.csv",
        ),
        (
            'Content-Disposition: attachment; filename="=?iso-8859-1?Q?caf=E9.csv?="',
            "café.csv",
        ),
        (
            'Content-Disposition: attachment; filename="=?utf-8?q?mess?= =?utf-8?q?age.csv?="',
            "message.csv",
        ),
        ('Content-Disposition: attachment; filename="  mobiles.csv  "', "mobiles.csv"),
    ],
)
def test_attachment_file_name_is_decoded(headers: str, filename: str) -> None:
    content = extract(mixed(TEXT_PART, f"{headers}\r\n\r\nx"))
    assert [attachment.filename for attachment in content.attachments] == [filename]


def test_raw_8bit_attachment_file_name_is_read_as_utf8() -> None:
    part = 'Content-Disposition: attachment; filename="café.csv"\r\n\r\nx'
    assert extract(mixed(TEXT_PART, part)).attachments[0].filename == "café.csv"


@pytest.mark.parametrize(
    ("encoding", "payload", "content"),
    [
        ("base64", "MDYwMTAyMDMwNDs7TWljaGVsDQo=", b"0601020304;;Michel\r\n"),
        ("quoted-printable", "H=E9l=E8ne;;x=\r\ny", b"H\xe9l\xe8ne;;xy"),
        ("7bit", "0601020304", b"0601020304"),
        ("base64", "bm90IGJhc2U2NA", b"not base64"),  # padding missing
        ("base64", "not base64 !", b"not base64 !"),  # undecodable: kept as written
    ],
)
def test_attachment_content_is_transfer_decoded(
    encoding: str, payload: str, content: bytes
) -> None:
    part = (
        'Content-Disposition: attachment; filename="f.csv"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n{payload}"
    )
    assert extract(mixed(TEXT_PART, part)).attachments == (Attachment("f.csv", content),)


def test_attachments_keep_their_order() -> None:
    parts = [f'Content-Disposition: attachment; filename="{n}.csv"\r\n\r\n{n}' for n in "abc"]
    names = [a.filename for a in extract(mixed(TEXT_PART, *parts)).attachments]
    assert names == ["a.csv", "b.csv", "c.csv"]


# -- headers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_header", "address"),
    [
        ("Jean <jean@example.com>", "jean@example.com"),
        ("Jean.Martin@Example.COM", "jean.martin@example.com"),
        ('"Martin, Jean" <Jean@Example.com>', "jean@example.com"),
        ("Martin, Jean <jean@example.com>", "jean@example.com"),
        ("=?utf-8?q?J=C3=A9r=C3=B4me?= <jerome@example.com>", "jerome@example.com"),
        ("=?utf-8?q?a=40trusted.example?= <b@other.example>", "b@other.example"),
        ('"a@trusted.example" <b@other.example>', "b@other.example"),
        ("jean@example.com (Jean Martin)", "jean@example.com"),
        ("a@trusted.example <b@other.example>", ""),  # ambiguous
        ("a@example.com, b@example.com", ""),
        ("Jean Martin", ""),
        ("<>", ""),
        ("@example.com", ""),
        ("jean@", ""),
        ("<jean\x00@example.com>", ""),
        ("jean@exa\x7fmple.com", ""),
        ('"jean martin"@example.com', ""),  # a quoted local part: not a sender we can match
        ("", ""),
    ],
)
def test_from_address_is_the_lower_cased_addr_spec(from_header: str, address: str) -> None:
    raw = f"From: {from_header}\r\nContent-Type: text/plain\r\n\r\nx".encode()
    assert extract(raw).from_address == address


def test_overlong_from_gives_an_empty_address() -> None:
    raw = b"From: " + b"x" * 3000 + b" <jean@example.com>\r\n\r\nx"
    assert extract(raw).from_address == ""


def test_absent_from_gives_an_empty_address() -> None:
    assert extract(b"Subject: x\r\n\r\n<envoi></envoi>").from_address == ""


def test_raw_8bit_display_name_does_not_hide_the_address() -> None:
    raw = "From: Jérôme Martin <Jerome@Example.com>\r\n\r\nx".encode()
    assert extract(raw).from_address == "jerome@example.com"


@pytest.mark.parametrize(
    ("subject", "decoded"),
    [
        (b"Envoi SMS", "Envoi SMS"),
        (b"=?UTF-8?Q?Promo_de_l=E2=80=99=C3=A9t=C3=A9?=", "Promo de l’été"),
        (b"=?utf-8?b?Y2Fmw6k=?=", "café"),
        (b"=?utf-8?q?caf?= =?utf-8?q?=C3=A9?= ok", "café ok"),
        (b"=?iso-8859-1?q?caf=E9?=", "café"),
        (b"=?utf-8*fr?q?caf=C3=A9?=", "café"),
        (b"=?x-unknown?q?caf=C3=A9?=", "café"),
        (b"=?utf-8?b?####?=", "=?utf-8?b?####?="),
        (b"caf\xc3\xa9", "café"),
        (b"caf\xe9", "café"),
        (b"a long\r\n subject", "a long subject"),
        (b"  padded  ", "padded"),
    ],
)
def test_subject_is_decoded(subject: bytes, decoded: str) -> None:
    assert extract(b"Subject: " + subject + b"\r\n\r\nx").subject == decoded


def test_message_id_is_kept_as_written() -> None:
    raw = b"Message-ID:\r\n <abc.123@example.com>\r\n\r\nx"
    assert extract(raw).message_id == "<abc.123@example.com>"


def test_absent_subject_and_message_id_are_empty() -> None:
    content = extract(b"From: a@example.com\r\n\r\nx")
    assert (content.subject, content.message_id) == ("", "")


# -- never raises ---------------------------------------------------------------------------


GARBAGE = [
    b"",
    b"\x00",
    b"\x00" * 4096,
    b"\xff\xfe\xfd" * 100,
    b"no headers at all, just text\r\n",
    b":\r\n:\r\n\r\n",
    b"From: \x00\x00<\x00@\x00>\r\nSubject: \x00=?utf-8?b?\x00?=\r\n\r\n\x00body",
    b"From: " + b"a" * 100_000 + b"\r\n\r\nx",
    b'Content-Type: text/plain; charset="\x00\xff"\r\n\r\n\xff\x00',
    b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=\r\n\r\n \r\n>>> \r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n=\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nA\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=\xff=Z=",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644\r\n",
    b'Content-Type: multipart/mixed; boundary=""\r\n\r\n--\r\n\r\n----\r\n',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\n--b--',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
    b"Content-Disposition: attachment; filename*0*=x''%ZZ; filename*1*=%\r\n\r\n--b--",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
    + b"--b\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n" * 2000,
    b"Content-Type: message/rfc822\r\n\r\nFrom: x\r\n\r\nbody",
    b"Content-Type: /\r\n\r\nx",
    b"Content-Type: text/plain; charset=*''\r\n\r\nx",
    b"Content-Type: text/plain; format*=''%FF%FE\r\n\r\nx",
]


@pytest.mark.parametrize("raw", GARBAGE, ids=[f"garbage-{i}" for i in range(len(GARBAGE))])
def test_garbage_never_raises(raw: bytes) -> None:
    content = extract(raw)
    assert content.text is not None or content.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    content = extract(raw)
    assert content.text is not None or content.reason


HEADER_LINES = st.sampled_from(
    [
        b"From: =?utf-8?q?x?= <a@b.c>\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: multipart/alternative; boundary=b\r\n",
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n",
        b"Content-Type: text/html\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Disposition: attachment; filename*=utf-8''%C3\r\n",
        b"\r\n",
        b"--b\r\n",
        b"--b--\r\n",
        b"=?utf-8?b?=\r\n",
        b"> \r\n",
        b"\x00\xff\r\n",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(HEADER_LINES | st.binary(max_size=20), max_size=40).map(b"".join))
def test_arbitrary_mime_soup_never_raises(raw: bytes) -> None:
    content = extract(raw)
    assert content.text is not None or content.reason


def test_too_many_parts_are_not_parsed_beyond_the_headers() -> None:
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\n{n}\r\n" for n in range(150))
    raw = (
        "From: App <app@example.com>\r\nSubject: many\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' + parts + "--b--\r\n"
    ).encode()
    content = extract(raw)
    assert content.text is None and "MIME parts" in content.reason
    assert content.from_address == "app@example.com" and content.subject == "many"


def test_attachments_can_be_named_without_being_decoded() -> None:
    raw = (
        b"From: app@example.com\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\n<envoi></envoi>\r\n"
        b"--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=mobiles.csv"
        b"\r\nContent-Transfer-Encoding: base64\r\n\r\nMDYwMTAyMDMwNA==\r\n--b--\r\n"
    )
    named = extract(raw, attachments=False)
    assert [(a.filename, a.content) for a in named.attachments] == [("mobiles.csv", b"")]
    assert extract(raw).attachments[0].content == b"0601020304"
