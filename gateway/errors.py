"""The one exception tree of the gateway (provider refusals are values, never exceptions).

GatewayError
├── ConfigError        bad settings, CLI arguments or environment: exit status 2
├── StorageError       the database cannot be used as is
│   └── NotMigratedError   the schema is not at head: run `mail2sms db upgrade`
├── ProcessingError    an email could not be applied: SMTP 451, the client retries
├── DeliveryError      a reply could not be handed to the relay (retried by the outbox)
│   └── PermanentDeliveryError   refused for good: not retried
└── FieldError         an admin write (API or CLI) refused, naming the field at fault
    ├── InvalidFieldError  the value cannot be used (HTTP 400)
    ├── NotFoundError      no such account (HTTP 404)
    └── ConflictError      the keyid or login is already used (HTTP 409)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the writer process imports this module, and needs no pydantic (its RSS)
    from pydantic import ValidationError


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose."""


class ConfigError(GatewayError):
    """A setting, argument or environment variable is wrong; the message names it and the fix."""


class StorageError(GatewayError):
    """The database is unusable in its current state."""


class NotMigratedError(StorageError):
    """The database schema is not at the head revision."""


class ProcessingError(GatewayError):
    """Applying an email failed; nothing of it was committed."""


class DeliveryError(GatewayError):
    """The relay refused or could not be reached."""


class PermanentDeliveryError(DeliveryError):
    """The relay refused this reply with a 5xx, or it cannot be sent at all: do not retry."""


class FieldError(GatewayError):
    """An admin write refused because of one field; `reason` says why without naming it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidFieldError(FieldError):
    """A field's value is of the wrong type, out of range or names nothing that exists."""


class NotFoundError(FieldError):
    """The account the write is about does not exist."""


class ConflictError(FieldError):
    """The write would give a second account the same keyid or login."""


def invalid_field(
    exc: ValidationError, known: Iterable[str], unknown: str = "unknown field"
) -> InvalidFieldError:
    """pydantic's first complaint as a refusal naming its field ("body" for the whole)."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "body"
    if error["type"] == "extra_forbidden":
        return InvalidFieldError(field, f"{unknown}; known: {', '.join(known)}")
    if error["type"] == "missing":
        return InvalidFieldError(field, "required")
    reason = str(error["msg"]).removeprefix("Value error, ")
    given = repr(error.get("input"))
    return InvalidFieldError(field, reason if given in reason else f"{reason} (got {given})")
