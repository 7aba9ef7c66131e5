"""The admin API's queries, bodies and answers (SPEC §11): they check what comes in, shape what
goes out, and /openapi.json is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    RootModel,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import SkipJsonSchema

from gateway.config import MAX_BIG, MAX_SMALL, AccountSettings, parse_instant
from gateway.core.codes import MESSAGES
from gateway.core.model import Channel, EmailStatus, Encoding, ReplyKind, ReplyState, SmsState
from gateway.core.numbers import normalise

MAX_LIMIT = 1000  # the largest page
MAX_WAIT = 30.0  # a long-poll answers after at most this many seconds
MAX_INT = MAX_BIG  # the largest integer every backend stores (offsets, counts)
MAX_ID = 2**63 - 1  # the largest row id
FAILURE_CODES = tuple(sorted(code for code in MESSAGES if code))
NUMBER_MAX = 32  # faults.number

# The gateway's clock as ISO 8601 with its offset, exactly as stored (not re-rendered).
Instant = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
Total = Annotated[int, Field(ge=0, description="all matches")]
Item = TypeVar("Item", bound=BaseModel)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    # Answers are checked too: a column the model does not know is a bug, not a silent drop.
    model_config = ConfigDict(extra="forbid")


# Queries ------------------------------------------------------------------------------------


class NoQuery(_In):
    """An endpoint that takes no query parameter."""


class Paging(_In):
    limit: int = Field(100, ge=0, le=MAX_LIMIT, description="page size")
    offset: int = Field(0, ge=0, le=MAX_INT, description="matches to skip")
    before_id: Annotated[int, Field(ge=1, le=MAX_INT)] | SkipJsonSchema[None] = Field(
        None, description="only items whose id is below this one: the next page, by keyset"
    )
    wait_for: Annotated[int, Field(ge=0, le=MAX_INT)] | SkipJsonSchema[None] = Field(
        None, description="answer as soon as at least this many match"
    )
    timeout: float = Field(
        5.0, ge=0, le=MAX_WAIT, allow_inf_nan=False, description="longest wait, in seconds"
    )

    def page(self) -> dict[str, int | None]:
        """The page's bounds, as the store's list functions take them."""
        return {"limit": self.limit, "offset": self.offset, "before_id": self.before_id}


Number = Annotated[str, AfterValidator(normalise)] | SkipJsonSchema[None]
EmailRow = Annotated[int, Field(ge=1, le=MAX_INT)] | SkipJsonSchema[None]
# The filters of the page, on each list: an email or a reply is selected by its request's SMS.
SENT_TO = "its request sent an SMS to this number (normalised first)"
SENT_WITH = "its request sent an SMS with this tracker"
BY_MAIL = "mail (every email), or http (none: HTTP requests have no email)"


class SmsQuery(Paging):
    to: Number = Field(None, description="recipient (normalised first)")
    account: str | SkipJsonSchema[None] = Field(None, description="account keyid")
    tracker: str | SkipJsonSchema[None] = Field(None, description="the client's tracker")
    email_id: str | SkipJsonSchema[None] = Field(None, description="emailId of the request")
    channel: Channel | SkipJsonSchema[None] = Field(None, description="mail or http")
    email_row: EmailRow = Field(None, description="`id` of the inbound email that sent it")


class EmailQuery(Paging):
    status: EmailStatus | SkipJsonSchema[None] = Field(None, description="outcome")
    email_id: str | SkipJsonSchema[None] = Field(None, description="emailId of the request")
    account: str | SkipJsonSchema[None] = Field(None, description="account keyid, as given")
    number: Number = Field(None, description=SENT_TO)
    tracker: str | SkipJsonSchema[None] = Field(None, description=SENT_WITH)
    channel: Channel | SkipJsonSchema[None] = Field(None, description=BY_MAIL)


class AccountQuery(Paging):
    pass


class ReplyQuery(Paging):
    kind: ReplyKind | SkipJsonSchema[None] = None
    email_id: str | SkipJsonSchema[None] = Field(None, description="emailId of the request")
    to: str | SkipJsonSchema[None] = Field(None, description="emailAck or emailNot address")
    account: str | SkipJsonSchema[None] = Field(None, description="account keyid of its email")
    number: Number = Field(None, description=SENT_TO)
    tracker: str | SkipJsonSchema[None] = Field(None, description=SENT_WITH)
    channel: Channel | SkipJsonSchema[None] = Field(None, description=BY_MAIL)
    email_row: EmailRow = Field(None, description="`id` of the inbound email it answers")


# Bodies -------------------------------------------------------------------------------------

ACCOUNT_NOTES = {
    "keyid": "the account key (keyid in requests)",
    "company": "raison sociale",
    "domains": "authorised sender domains (From: and envelope)",
    "credit": "in SMS parts",
    "senders": "approved sender ids (emetteur)",
    "allowed_ips": "addresses or networks; empty = any",
    "blacklist": "numbers refused with code 11",
    "rate_limit": "SMS parts/s, 0 = unlimited",
}


def _account_schema(schema: dict[str, Any]) -> None:
    for name, field in schema["properties"].items():
        field.pop("default", None)  # absent means generated (create) or unchanged (patch)
        if name in ACCOUNT_NOTES:
            field["description"] = ACCOUNT_NOTES[name]


class AccountFields(AccountSettings):
    """The keys of [[accounts]] in the configuration, each optional: create generates keyid,
    login and password when absent; patch changes only the fields given."""

    model_config = ConfigDict(json_schema_extra=_account_schema)
    keyid: str = Field(default_factory=str, min_length=1, max_length=64)


class ClockBody(_In):
    now: datetime = Field(
        description="ISO 8601 with offset", examples=["2026-11-29T21:00:00+01:00"]
    )

    @field_validator("now", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("an ISO 8601 instant, e.g. 2026-11-29T21:00:00+01:00")
        return parse_instant(value)


def _failure_codes(schema: dict[str, JsonValue]) -> None:
    schema["enum"] = list(FAILURE_CODES)


class FaultBody(_In):
    model_config = ConfigDict(strict=True)
    code: int = Field(description="an annex code other than 0", json_schema_extra=_failure_codes)
    count: int = Field(1, ge=1, le=MAX_SMALL, description="recipients it will hit")
    number: str | None = Field(None, description="only this number")
    keyid: str | None = Field(None, max_length=64, description="only this account")

    @field_validator("code")
    @classmethod
    def _failure(cls, value: int) -> int:
        if value not in FAILURE_CODES:
            raise ValueError(
                f"one of the annex's failure codes ({', '.join(map(str, FAILURE_CODES))})"
            )
        return value

    @field_validator("number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is not None and not 0 < len(normalise(value)) <= NUMBER_MAX:
            raise ValueError("a phone number or null")
        return None if value is None else normalise(value)


# Answers ------------------------------------------------------------------------------------


class Error(_Out):
    error: str = Field(description="what is wrong")
    field: str | SkipJsonSchema[None] = Field(None, description="the parameter or field at fault")


class Page(_Out, Generic[Item]):
    items: list[Item]
    total: Total


class Sms(_Out):
    id: int
    to: str = Field(description="the recipient, normalised (0XXXXXXXXX)")
    sender: str = Field(description="the sender id shown on the phone")
    text: str = Field(description="as delivered, STOP mention included (after CR LF)")
    parts: int = Field(ge=1)
    encoding: Encoding
    tracker: str
    account: str = Field(description="keyid")
    email_id: str | None = Field(description="emailId of the request; null over HTTP")
    created_at: Instant = Field(description="the gateway's clock")
    channel: Channel = Field(description="how the request came: mail or the HTTP API")
    state: SmsState = Field(description="sent, or scheduled until its due time")
    due_at: Instant | None = Field(description="a deferred send's due time (date_envoi)")


class Result(_Out):
    tel: str = Field(description="the number as the client wrote it")
    code: int = Field(description="0 = sent, else the annex's code")
    message: str = Field(description="the annex's message")


class Email(_Out):
    id: int
    status: EmailStatus
    reason: str = Field(description="why it was refused or not processed")
    code: int | None
    email_id: str | None
    account: str | None = Field(description="keyid, as given")
    sender: str = Field(description="From: address")
    envelope_from: str
    client_ip: str
    subject: str
    message_id: str
    received_at: Instant
    results: list[Result]
    warnings: list[str]
    raw_url: str = Field(description="the message as received", json_schema_extra={"format": "uri"})


class Header(_Out):
    name: str
    value: str = Field(description="decoded (RFC 2047) and unfolded")


class AttachmentInfo(_Out):
    filename: str
    size: int = Field(ge=0, description="bytes, decoded")


class EmailDetail(Email):
    """An inbound email as listed, with what the detail view shows of the message."""

    headers: list[Header] = Field(description="in order, at most 200")
    text: str | None = Field(
        description="the text/plain body the gateway read (its first 65,536 characters); "
        "null when it found none"
    )
    attachments: list[AttachmentInfo]


class Reply(_Out):
    id: int
    kind: ReplyKind
    to: str = Field(description="emailAck or emailNot address")
    email_id: str | None
    body: str = Field(description="the XML (sent encoded ISO-8859-1)")
    state: ReplyState
    attempts: int
    last_error: str
    created_at: Instant
    next_attempt_at: Instant | None
    delivered_at: Instant | None


class Account(AccountSettings):
    """An account: the keys of [[accounts]] but its password, and when it was created."""

    model_config = ConfigDict(
        json_schema_extra=_account_schema, json_schema_serialization_defaults_required=True
    )
    # Never shown but at creation (NewAccount): whoever reads the API does not get logins.
    password: SkipJsonSchema[str] = Field("", exclude=True)
    created_at: Instant
    parent_id: int | None = Field(None, description="a sub-account's parent (HTTP /subaccount)")
    price: str = Field("", description="a sub-account's price, recorded only (no money here)")


class NewAccount(Account):
    """An account just created: the only answer that shows its password."""

    password: str = Field(description="shown this once; keep it (SMTP AUTH login)")


class Fault(_Out):
    id: int
    code: int
    remaining: int = Field(description="recipients it will still hit")
    number: str | None
    keyid: str | None
    created_at: Instant


class SmsPage(Page[Sms]):
    pass


class EmailPage(Page[Email]):
    pass


class ReplyPage(Page[Reply]):
    pass


class AccountPage(Page[Account]):
    pass


class FaultPage(Page[Fault]):
    pass


class Clock(_Out):
    now: Instant = Field(description="the gateway's current instant")
    frozen: bool


class Deleted(_Out):
    deleted: int


class Removed(_Out):
    sms: int
    replies: int
    email_ids: int
    emails: int


class Reset(_Out):
    deleted: Removed = Field(description="rows deleted per table")


class Health(_Out):
    status: Literal["ok", "error"]
    error: str | SkipJsonSchema[None] = None


class Info(_Out):
    version: str
    gateway_addresses: list[str]
    stop_text: str = Field(description="the STOP mention appended for custom senders")
    stop_http_text: str = Field(description="the STOP mention of SMS sent over the HTTP API")
    clock: Clock


class Document(RootModel[dict[str, Any]]):
    """An OpenAPI 3.1 document."""
