"""The detail view's reading of a raw email: headers, text and attachments, whatever the bytes."""

from __future__ import annotations

from pathlib import Path

from gateway.web.message import SHOWN_CHARS, SHOWN_HEADERS, describe

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def test_encoded_words_in_headers_are_decoded() -> None:
    found = describe((MAIL / "outlook_csv_rfc2047.eml").read_bytes())
    assert {"name": "Subject", "value": "Envoi avec fichiers"} in found["headers"]
    assert [a["filename"] for a in found["attachments"]] == ["mobiles.csv", "Message.csv"]


def test_folded_header_is_one_line() -> None:
    found = describe(b"X-Long: first\r\n second\r\n\r\nbody")
    assert found["headers"] == [{"name": "X-Long", "value": "first second"}]


def test_undecodable_bytes_become_replacement_characters() -> None:
    found = describe(b"Subject: caf\xc3\xa9 \xff\r\n\r\nbody")
    assert found["headers"] == [{"name": "Subject", "value": "café \ufffd"}]


def test_email_without_text_plain_has_no_text() -> None:
    assert describe((MAIL / "html_only.eml").read_bytes())["text"] is None


def test_text_and_headers_are_capped() -> None:
    raw = b"X-A: 1\r\n" * (SHOWN_HEADERS + 5) + b"\r\n" + b"x" * (SHOWN_CHARS + 10)
    found = describe(raw)
    assert len(found["headers"]) == SHOWN_HEADERS
    assert len(found["text"]) == SHOWN_CHARS


def test_garbage_is_described_without_raising() -> None:
    found = describe(b"\x00\xff\r\n\r\n--")
    assert found["attachments"] == []
