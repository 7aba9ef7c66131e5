"""Mail as real clients write it, through a real SMTP conversation (issue: CSV and real mail)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.testing import RunningGateway

MAIL = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
STOP = "\r\nSTOP SMS au 36111"
DOC_KEYID = "a296464ce012b8ab710a"  # the keyid of the provider's own examples
DOC_ACCOUNT = {
    "accounts": [
        {"keyid": DOC_KEYID, "domains": ["example.com"], "credit": 100, "senders": ["MaSociete"]}
    ]
}

# fixture -> (emailId, [(tel, code, text or None, parts, encoding)])
CASES = {
    "thunderbird_utf8_flowed": (
        "1548",
        [
            (
                "0601020304",
                0,
                "L'été est fini! Super promo -10% à partir de 50€ d'achat !!! "
                "Offre valable jusqu'au 30/09 en magasin." + STOP,
                1,
                "gsm7",
            )
        ],
    ),
    "python_email_base64": (
        "1548",
        [
            (
                "0601020304",
                0,
                "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!" + STOP,
                1,
                "gsm7",
            ),
            (
                "0601020305",
                0,
                "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!" + STOP,
                1,
                "gsm7",
            ),
        ],
    ),
    # The document's CSV example as Thunderbird attaches it (RFC 2231 names, BOM): its two SMS.
    "thunderbird_csv_rfc2231": (
        "1548",
        [
            (
                "0601020304",
                0,
                "Bonjour Michel Martin, votre nouvelle carte sera disponible le 10/10/2015" + STOP,
                1,
                "gsm7",
            ),
            (
                "0601020305",
                0,
                "Bonjour Sarah Dupont, votre nouvelle carte sera disponible le 02/08/2015" + STOP,
                1,
                "gsm7",
            ),
        ],
    ),
    # Outlook's ’ is outside GSM 03.38: UCS-2, 2 parts, over the 1-part default allowance.
    "outlook_cp1252_qp": (
        "1548",
        [("0601020304", 34, None, 0, ""), ("0601020305", 34, None, 0, "")],
    ),
    # The en dash is outside GSM 03.38 too.
    "outlook_csv_rfc2047": (
        "1549",
        [("0601020304", 34, None, 0, ""), ("0601020305", 34, None, 0, "")],
    ),
    # ê (empêchement) forces UCS-2: 106 characters are 2 parts.
    "apple_mail_flowed_delsp": ("2001", [("0601020304", 34, None, 0, "")]),
}


@pytest.mark.mail2sms(config=DOC_ACCOUNT)
@pytest.mark.parametrize("name", sorted(CASES))
def test_real_client_mail_gives_the_expected_sms(
    mail2sms_gateway: RunningGateway, name: str
) -> None:
    gw = mail2sms_gateway
    email_id, expected = CASES[name]
    gw.send((MAIL / f"{name}.eml").read_bytes())
    (email,) = gw.emails()
    assert email["status"] == "processed", email["reason"]
    assert [(r["tel"], r["code"]) for r in email["results"]] == [(t, c) for t, c, *_ in expected]
    sent = {s["to"]: s for s in gw.sms()}
    for tel, code, text, parts, encoding in expected:
        if code == 0:
            assert (sent[tel]["text"], sent[tel]["parts"], sent[tel]["encoding"]) == (
                text,
                parts,
                encoding,
            )
        else:
            assert tel not in sent
    if name == "apple_mail_flowed_delsp":  # written without emailAck/emailNot: no reply
        assert gw.replies() == []
        return
    report = gw.wait_for_reply("not", email_id)["body"]
    numbered = len(expected) > 1 or "csv" in name
    for index, (tel, code, *_) in enumerate(expected, start=1):
        n = str(index) if numbered else ""
        assert f"<code{n}>{code}</code{n}>\n<tel{n}>{tel}</tel{n}>" in report


@pytest.mark.mail2sms(config=DOC_ACCOUNT)
@pytest.mark.parametrize("name", ["html_only", "gmail_alternative"])
def test_html_mail_is_not_processed_and_gets_no_reply(
    mail2sms_gateway: RunningGateway, name: str
) -> None:
    gw = mail2sms_gateway
    gw.send((MAIL / f"{name}.eml").read_bytes())
    (email,) = gw.emails()
    assert email["status"] == "not_processed"
    assert "only text/plain is processed" in email["reason"]
    assert gw.replies() == []
    assert gw.sms() == []


def test_csv_campaign_with_placeholders_and_a_missing_value(
    mail2sms_gateway: RunningGateway,
) -> None:
    gw = mail2sms_gateway
    message = gw.request_email(
        "<envoi><keyid>demo</keyid><emetteur>MaSociete</emetteur>"
        "<emailNot>not@masociete.com</emailNot><emailId>31</emailId></envoi>"
    )
    mobiles = "0601020304;;Michel;;Martin\r\n\r\n0601020305;;Sarah\r\n".encode("utf-8-sig")
    text = "Bonjour [1] [2] !\r\n".encode("cp1252")
    message.add_attachment(mobiles, maintype="text", subtype="csv", filename="Mobiles.CSV")
    message.add_attachment(
        text, maintype="application", subtype="octet-stream", filename="message.csv"
    )
    gw.send(message)
    texts = {s["to"]: s["text"] for s in gw.wait_for_sms(2)}
    assert texts == {
        "0601020304": "Bonjour Michel Martin !" + STOP,
        "0601020305": "Bonjour Sarah  !" + STOP,
    }
    report = gw.wait_for_reply("not", 31)["body"]
    assert "<etat1>" in report
    assert "<etat2>" in report
