"""The values that flow through the pure core: frozen dataclasses (three per-recipient ones
aside, for speed: see Recipient), no behaviour."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

GSM7 = "gsm7"
UCS2 = "ucs2"


class EmailStatus(StrEnum):
    """What became of an inbound email (the `status` of an email item)."""

    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    REFUSED = "refused"
    NOT_PROCESSED = "not_processed"


class ReplyKind(StrEnum):
    ACK = "ack"
    NOT = "not"


class ReplyState(StrEnum):
    """Where an Ack/Not reply is: waiting for the relay, delivered, kept (no relay), failed."""

    PENDING = "pending"
    DELIVERED = "delivered"
    KEPT = "kept"
    FAILED = "failed"


class Channel(StrEnum):
    """The way a request came in."""

    MAIL = "mail"
    HTTP = "http"


class SmsState(StrEnum):
    """An SMS reached the phone (`sent`) or waits for its `date_envoi` (`scheduled`)."""

    SENT = "sent"
    SCHEDULED = "scheduled"


class Encoding(StrEnum):
    GSM7 = GSM7
    UCS2 = UCS2


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes


@dataclass(frozen=True, slots=True)
class MailContent:
    """What `mime.extract` finds in a raw email."""

    from_address: str  # lower-cased addr-spec of the From: header, "" when absent or unreadable
    text: str | None  # the decoded text/plain body; None when the email is not processable
    reason: str  # why it is not processable; "" when text is set
    attachments: tuple[Attachment, ...] = ()
    subject: str = ""
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class Envoi:
    """The `<envoi>` element: lower-cased tag name -> value (decoded, Ö already a line feed)."""

    found: bool
    fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    error: str = ""  # why the element could not be read safely ("" when fine)

    def get(self, name: str) -> str | None:
        return self.fields.get(name.lower())


# Recipient, Sms and Result are not frozen, unlike the rest: a request makes one of each per
# recipient (500 a numX request), and a frozen dataclass's __init__ sets each field through
# object.__setattr__: 0.88 µs an SMS against 0.33 (bench/). Nothing changes them once made.
@dataclass(slots=True)
class Recipient:
    tel: str  # the number exactly as the client wrote it (echoed back in <tel>)
    text: str  # the message for that number
    tracker: str | None = None  # this number's own tracker (HTTP smsmulti); None: the request's


@dataclass(frozen=True, slots=True)
class Request:
    """One request after the body and its CSV attachments were read."""

    keyid: str
    email_id: str
    email_ack: str
    email_not: str
    emetteur: str | None  # None when the tag is absent
    tracker: str
    smslong: str | None  # None when the tag is absent
    nostop: str
    recipients: tuple[Recipient, ...]
    numbered: bool  # numX or CSV: the Not uses the numbered <etatN> form
    refusal: int | None = None  # a whole-request refusal (23, 102) once authorised
    notes: tuple[str, ...] = ()  # what was read but ignored, recorded as warnings on the email
    channel: Channel = Channel.MAIL  # decides the STOP mention (SPEC §7 mail, §15 HTTP)
    ucs2: bool = False  # HTTP `ucs2=1`: sent in UCS-2 whatever the characters
    due_at: datetime | None = None  # HTTP `date_envoi`: a deferred send, None = now


@dataclass(frozen=True, slots=True)
class Account:
    """A snapshot of one account, read in the transaction that applies the email."""

    id: int
    keyid: str
    domains: frozenset[str] = frozenset()
    credit: int = 0
    senders: frozenset[str] = frozenset()
    nostop_allowed: bool = False
    quiet_hours_lifted: bool = False
    international_allowed: bool = False
    allowed_ips: tuple[str, ...] = ()
    blacklist: frozenset[str] = frozenset()  # normalised numbers (0XXXXXXXXX)
    rate_limit: int = 0  # SMS parts per second, 0 = unlimited


@dataclass(frozen=True, slots=True)
class Fault:
    """An injected failure: the next `remaining` matching recipients get `code`."""

    id: int
    code: int
    remaining: int
    number: str | None = None  # normalised number, None = any
    keyid: str | None = None  # None = any account


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The settings the rules read, taken from the validated config once."""

    stop_text: str = "STOP SMS au 36111"
    http_stop_text: str = "STOP 36111"  # the document's 12 characters with CR LF (SPEC §15)
    default_sender: str = "36111"
    max_recipients: int = 500
    magic_numbers: bool = True
    alsace_moselle: bool = False
    number_plan: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    raw_max_bytes: int = 64 * 1024  # what a refused or unprocessed email keeps of its raw


# Not frozen: see Recipient.
@dataclass(slots=True)
class Sms:
    """One SMS exactly as the operator would have received it."""

    to: str  # normalised: 0XXXXXXXXX
    sender: str
    text: str  # as delivered, STOP mention included
    parts: int
    encoding: str  # GSM7 or UCS2
    tracker: str = ""  # the client's id for the send, as stored


# Not frozen: see Recipient.
@dataclass(slots=True)
class Result:
    tel: str  # as the client wrote it
    code: int
    sms: Sms | None = None  # set exactly when code == 0


@dataclass(frozen=True, slots=True)
class Decision:
    results: tuple[Result, ...]
    debit: int  # SMS parts taken from the credit
    faults_used: Mapping[int, int] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()
    tracker: str = ""  # the request's tracker as stored on every SMS


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """How much of an email the core reads (the `[limits]` settings)."""

    max_body_chars: int = 1_000_000
    max_tags: int = 2100
    max_value_chars: int = 10_000
    max_recipients: int = 500


@dataclass(frozen=True, slots=True)
class Inbound:
    """One email as the SMTP channel received it and the core read it."""

    raw: bytes  # the message as received, stored as is
    envelope_from: str  # MAIL FROM, "" for the null sender
    client_ip: str
    content: MailContent
    request: Request | None  # None when the email is not processable (content.reason says why)


@dataclass(frozen=True, slots=True)
class HttpCall:
    """One send over the provider's HTTP API (SPEC §15) as its channel read it."""

    request: Request  # channel HTTP: no emailId, no replies
    client_ip: str


# What a channel hands to the pipeline.
Intake = Inbound | HttpCall
