"""The provider's HTTP API (SPEC §15): its fields read into a Request, and its answer shapes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.core import codes, rules
from gateway.core.model import Channel, Decision, Recipient, Request, RuleSettings

DEFAULT_ZONE = "Europe/Paris"
_DATE_ENVOI = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?")

# A JSON body gives str, int, float, bool, None, list or dict; form fields and the query
# string give str or, for a repeated name, a list of str.
FieldValue = object


@dataclass(frozen=True, slots=True)
class GeneralError:
    """A refusal of the whole call (HTTP 400, no `tel`): nothing sent, nothing debited."""

    code: int
    field: str = ""  # the field at fault, named in the message of a 999
    detail: str = ""

    @property
    def message(self) -> str:
        text = codes.message(self.code)
        if self.code == codes.INTERNAL and self.field:
            return f"{text} ({self.field}: {self.detail})" if self.detail else text
        return text


class Refused(Exception):
    """Carries a GeneralError out of the field readers; the public readers return it."""

    def __init__(self, error: GeneralError) -> None:
        super().__init__(error.message)
        self.error = error


def _refuse(code: int, field: str = "", detail: str = "") -> Refused:
    return Refused(GeneralError(code, field, detail))


def text(fields: Mapping[str, FieldValue], name: str, *, required: bool = False) -> str | None:
    """A single value as text (a JSON number as its digits); None when absent."""
    value = fields.get(name.lower())
    if value is None:
        if required:
            raise _refuse(codes.INTERNAL, name, "missing")
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _refuse(codes.INTERNAL, name, "must be a string")
    return value if isinstance(value, str) else _number_text(value)


def texts(fields: Mapping[str, FieldValue], name: str) -> list[str] | None:
    """A list of values (a single value is a list of one); None when absent."""
    value = fields.get(name.lower())
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    found: list[str] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise _refuse(codes.INTERNAL, name, "must be a string or a list of strings")
        found.append(item if isinstance(item, str) else _number_text(item))
    return found


def _number_text(value: int | float) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def keyid(fields: Mapping[str, FieldValue]) -> str:
    """The account key; empty or absent is code 1 for the whole call."""
    key = (text(fields, "keyid") or "").strip()
    if not key:
        raise _refuse(codes.LOGIN_EMPTY, "keyid")
    return key


def flag(fields: Mapping[str, FieldValue], name: str) -> bool:
    """`"1"` (or 1) sets a flag such as `ucs2`; anything else leaves it unset."""
    return (text(fields, name) or "").strip() == "1"


def due_at(fields: Mapping[str, FieldValue], now: datetime) -> datetime | None:
    """`date_envoi` (YYYY-MM-DD hh:mm) in `gmt_zone` (default Europe/Paris) as a UTC instant;
    None for "now": absent, empty, or not later than `now`."""
    written = (text(fields, "date_envoi") or "").strip()
    if not written:
        return None
    zone_name = (text(fields, "gmt_zone") or "").strip() or DEFAULT_ZONE
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise _refuse(codes.INTERNAL, "gmt_zone", f"unknown time zone {zone_name!r}") from None
    match = _DATE_ENVOI.fullmatch(written)
    if match is None:
        raise _refuse(codes.INTERNAL, "date_envoi", "format YYYY-MM-DD hh:mm")
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    if year < 1970:
        raise _refuse(codes.INTERNAL, "date_envoi", "year from 1970")
    try:
        instant = datetime(year, month, day, hour, minute, second, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise _refuse(codes.INTERNAL, "date_envoi", str(exc)) from None
    return instant if instant > now else None


def send_request(
    fields: Mapping[str, FieldValue],
    *,
    multi: bool,
    now: datetime,
    max_recipients: int,
    directory: Sequence[str] = (),
) -> Request | GeneralError:
    """The Request of a `/sms` (one number) or `/smsmulti` call, or its general error.

    `/smsmulti`: `sms` and `tracker` are one value for all numbers or one per number;
    `directory` holds the numbers of the `repertoireId` directory, sent after `num`."""
    try:
        return _send_request(fields, multi, now, max_recipients, directory)
    except Refused as refused:
        return refused.error


def _send_request(
    fields: Mapping[str, FieldValue],
    multi: bool,
    now: datetime,
    max_recipients: int,
    directory: Sequence[str],
) -> Request:
    key = keyid(fields)
    if multi:
        tels = texts(fields, "num")
        if tels is None and not directory and text(fields, "repertoireId") is None:
            raise _refuse(codes.INTERNAL, "num", "missing")
        tels = [*(tels or ()), *directory]
        if not tels:
            raise _refuse(codes.NUMBER_MISSING, "num")
    else:
        tels = [text(fields, "num", required=True) or ""]
    if len(tels) > max_recipients:
        raise _refuse(codes.TOO_MANY_NUMBERS, "num")
    messages = _per_number(fields, "sms", len(tels), required=True)
    trackers = _per_number(fields, "tracker", len(tels), required=False)
    numbered = multi
    return Request(
        keyid=key,
        email_id="",
        email_ack="",
        email_not="",
        emetteur=text(fields, "emetteur"),
        tracker="" if multi else (trackers[0] if trackers else ""),
        smslong=text(fields, "smslong"),
        nostop=text(fields, "nostop") or "",
        recipients=tuple(
            Recipient(
                tel=tel,
                text=messages[index],
                tracker=trackers[index] if multi and trackers else None,
            )
            for index, tel in enumerate(tels)
        ),
        numbered=numbered,
        channel=Channel.HTTP,
        ucs2=flag(fields, "ucs2"),
        due_at=due_at(fields, now),
    )


def _per_number(
    fields: Mapping[str, FieldValue], name: str, count: int, *, required: bool
) -> list[str]:
    values = texts(fields, name)
    if values is None:
        if required:
            raise _refuse(codes.INTERNAL, name, "missing")
        return []
    if len(values) == 1:
        return values * count
    if len(values) != count:
        detail = f"one value for all numbers or one per number ({len(values)} for {count})"
        raise _refuse(codes.INTERNAL, name, detail)
    return values


# Answers -------------------------------------------------------------------------------------


def etat(entries: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The provider's envelope: `{"etat": {"etat": [...]}}`."""
    return {"etat": {"etat": list(entries)}}


def error_body(error: GeneralError) -> dict[str, object]:
    return etat([{"code": str(error.code), "message": error.message}])


def send_entries(decision: Decision) -> list[dict[str, str]]:
    """One entry per number, in request order: code as a string, the annex message, and the
    SMS parts billed (`smslong`)."""
    return [
        {
            "code": str(result.code),
            "tel": result.tel,
            "message": codes.message(result.code),
            "smslong": str(result.sms.parts if result.sms is not None else 0),
        }
        for result in decision.results
    ]


def count_entries(
    request: Request, settings: RuleSettings, *, nostop_allowed: bool
) -> list[dict[str, str]]:
    """`/comptage`: the characters and SMS parts of each number's message as a send would
    deliver it (STOP mention for a custom sender, NFC, `ucs2`), nothing judged or sent."""
    custom = request.emetteur is not None and bool(request.emetteur.strip())
    stop = custom and not (request.nostop.strip() == "1" and nostop_allowed)
    entries = []
    for recipient in request.recipients:
        delivered, parts, _ = rules.rendered(
            recipient.text, stop, settings.http_stop_text, request.ucs2
        )
        entries.append(
            {"tel": recipient.tel, "nb_sms": str(parts), "nb_caractere": str(len(delivered))}
        )
    return entries


