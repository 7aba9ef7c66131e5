"""From the `<envoi>` fields and the attachments to one Request (recipients and their texts)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from gateway.core import codes, csvmerge
from gateway.core.model import Attachment, Envoi, Recipient, Request

# X runs from 1 to 500 in the provider's document (the most numbers one request may carry),
# written without leading zeros.
_NUMBERED = re.compile(r"num([0-9]+)")


def build(envoi: Envoi, attachments: Sequence[Attachment], *, max_recipients: int) -> Request:
    notes: list[str] = []
    if envoi.error:
        notes.append(f"envoi: {envoi.error}")
    mobiles, message = csvmerge.find_csv(attachments)
    refusal: int | None = None
    numbered = True
    if mobiles is not None or message is not None:
        recipients, refusal = _from_csv(mobiles, message, max_recipients + 1)
        if any(_field_is_recipient(name) for name in envoi.fields):
            notes.append("num/sms in the body ignored: the CSV attachments give the recipients")
    else:
        recipients, highest = _from_body(envoi, notes)
        numbered = highest > 0
        if highest > max_recipients:
            refusal = codes.TOO_MANY_NUMBERS  # a num501 tag is a 501st number
    if refusal is None and len(recipients) > max_recipients:
        refusal = codes.TOO_MANY_NUMBERS
    if refusal is not None:
        recipients = ()
    return Request(
        keyid=envoi.get("keyid") or "",
        email_id=envoi.get("emailid") or "",
        email_ack=envoi.get("emailack") or "",
        email_not=envoi.get("emailnot") or "",
        emetteur=envoi.get("emetteur"),
        tracker=envoi.get("tracker") or "",
        smslong=envoi.get("smslong"),
        nostop=envoi.get("nostop") or "",
        recipients=recipients,
        numbered=numbered,
        refusal=refusal,
        notes=tuple(notes),
    )


def _field_is_recipient(name: str) -> bool:
    return name in ("num", "sms") or re.fullmatch(r"(num|sms)\d+", name) is not None


def _from_csv(
    mobiles: bytes | None, message: bytes | None, max_lines: int
) -> tuple[tuple[Recipient, ...], int | None]:
    if mobiles is None or message is None:
        return (), codes.INVALID_FILE
    merged = csvmerge.merge(mobiles, message, max_lines=max_lines)
    if merged is None:
        return (), codes.INVALID_FILE
    return tuple(itertools.starmap(Recipient, merged)), None  # (tel, text) each


def _numbered(envoi: Envoi) -> tuple[list[tuple[int, str]], list[str]]:
    """The numX tags ordered by X, and the num… tags ignored (num0, num01: X written with a
    leading zero; more than 6 digits), in body order."""
    numbered: list[tuple[int, str]] = []
    ignored: list[str] = []
    for name in envoi.fields:
        if name.startswith("num") and (match := _NUMBERED.fullmatch(name)) is not None:
            digits = match.group(1)
            if digits[0] == "0" or len(digits) > 6:
                ignored.append(name)
            else:
                numbered.append((int(digits), name))
    numbered.sort()
    return numbered, ignored


def _from_body(envoi: Envoi, notes: list[str]) -> tuple[tuple[Recipient, ...], int]:
    """The recipients of the body's num/numX tags, and the highest X (0: a single num)."""
    default_text = envoi.get("sms") or ""
    numbered, ignored = _numbered(envoi)
    if ignored:
        shown = ", ".join(f"<{name}>" for name in ignored[:5])
        notes.append(f"{shown} ignored: X in numX counts from 1, without leading zeros")
    if not numbered:
        return (Recipient(tel=envoi.get("num") or "", text=default_text),), 0
    if envoi.get("num") is not None:
        notes.append("num ignored: numX tags give the recipients")
    fields = envoi.fields
    recipients = tuple(
        Recipient(tel=fields[name], text=fields.get(f"sms{index}") or default_text)
        for index, name in numbered
    )
    return recipients, numbered[-1][0]
