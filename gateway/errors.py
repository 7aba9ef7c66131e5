"""The one exception tree of the gateway (provider refusals are values, never exceptions).

GatewayError
├── ConfigError        bad settings, CLI arguments or environment: exit status 2
├── StorageError       the database cannot be used as is
│   └── NotMigratedError   the schema is not at head: run `mail2sms db upgrade`
├── ProcessingError    an email could not be applied: SMTP 451, the client retries
└── DeliveryError      a reply could not be handed to the relay (retried by the outbox)
"""


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
