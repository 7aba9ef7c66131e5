"""Settings: one TOML file plus MAIL2SMS_<SECTION>__<KEY> overrides, validated once, frozen."""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from gateway.clock import in_range
from gateway.core.numbers import check_format
from gateway.core.sender import well_formed
from gateway.errors import ConfigError

ENV_PREFIX = "MAIL2SMS_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/gateway.db"
NumberKind = Literal["mobile", "unassigned", "fixed", "full_mvno"]
EventLoop = Literal["asyncio", "uvloop"]
EVENT_LOOPS: tuple[str, ...] = get_args(EventLoop)
# The largest integers the database columns hold on every backend: BIGINT (kept well below
# 2^63 so that sums never overflow) and INTEGER.
MAX_BIG = 2**62
MAX_SMALL = 2**31 - 1


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    gateway_addresses: tuple[str, ...] = ("sendsms@isendpro-api.com",)
    max_message_size: int = Field(4 * 1024 * 1024, ge=1024)
    # checked against max_message_size even when unset
    max_inflight_bytes: int = Field(32 * 1024 * 1024, ge=1024, validate_default=True)
    max_connections: int = Field(200, ge=1)
    timeout: float = Field(60.0, gt=0)
    max_session_seconds: float = Field(300.0, gt=0)
    max_recipients_per_transaction: int = Field(100, ge=1)
    max_recipients_per_session: int = Field(1000, ge=1)
    starttls: bool = False
    tls_cert: str = ""
    tls_key: str = Field("", validate_default=True)  # checked against tls_cert even when unset
    auth: Literal["off", "any", "accounts"] = "off"
    auth_required: bool = False

    @field_validator("max_inflight_bytes")
    @classmethod
    def _one_message_fits(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("max_message_size", 0):
            raise ValueError("must be at least smtp.max_message_size (one message must fit)")
        return value

    @field_validator("tls_cert")
    @classmethod
    def _certificate_needs_starttls(cls, value: str, info: ValidationInfo) -> str:
        if value and not info.data.get("starttls", False):
            raise ValueError(
                "a certificate is only used with smtp.starttls = true; set it, or empty "
                "smtp.tls_cert and smtp.tls_key"
            )
        return value

    @field_validator("tls_key")
    @classmethod
    def _key_with_certificate(cls, value: str, info: ValidationInfo) -> str:
        if "tls_cert" in info.data and bool(value) != bool(info.data["tls_cert"]):
            raise ValueError(
                "give smtp.tls_cert and smtp.tls_key together (PEM files), or leave both "
                "empty for a self-signed certificate"
            )
        return value

    @field_validator("auth_required")
    @classmethod
    def _required_needs_auth(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("auth", "off") == "off":
            raise ValueError('smtp.auth_required = true needs smtp.auth = "any" or "accounts"')
        return value

    @field_validator("gateway_addresses")
    @classmethod
    def _lower_addresses(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("at least one gateway address is needed")
        for address in value:
            if "@" not in address or any(c.isspace() for c in address):
                raise ValueError(f"{address!r} is not an email address")
        return tuple(a.lower() for a in value)


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8025, ge=0, le=65535)
    admin_token: str = ""
    allowed_hosts: tuple[str, ...] = ()
    max_streams: int = Field(1000, ge=1)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]", name):
                raise ValueError(
                    f"{name!r}: a host name or address as clients write it in their URLs, "
                    "without scheme or port (e.g. sandbox.example.com, 10.0.0.5, [fd00::5])"
                )
        return tuple(name.lower() for name in value)


class DatabaseSettings(_Section):
    url: str = DEFAULT_DATABASE_URL

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "use sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:pass@host/db"
            )
        return value


class RelaySettings(_Section):
    host: str = ""
    port: int = Field(25, ge=1, le=65535)
    sender: str = "noreply@isendpro-api.com"
    max_attempts: int = Field(10, ge=1)
    backoff: float = Field(2.0, gt=0)
    max_backoff: float = Field(600.0, gt=0)


class ClockSettings(_Section):
    fixed: str = ""

    @field_validator("fixed")
    @classmethod
    def _iso_instant(cls, value: str) -> str:
        if value:
            parse_instant(value)
        return value

    def frozen_at(self) -> datetime | None:
        return parse_instant(self.fixed) if self.fixed else None


class StopSettings(_Section):
    text: str = "STOP SMS au 36111"
    http_text: str = "STOP 36111"


class SmsSettings(_Section):
    default_sender: str = "36111"
    magic_numbers: bool = True


class QuietHoursSettings(_Section):
    alsace_moselle: bool = False


class StorageSettings(_Section):
    """What the database keeps (SPEC §16): a bounded disk whatever arrives."""

    raw_max_bytes: int = Field(64 * 1024, ge=0, le=2**31)
    max_age: int = Field(0, ge=0, le=100 * 365 * 86400)  # seconds; 0 = keep everything
    max_emails: int = Field(0, ge=0, le=2**62)  # 0 = no limit
    prune_interval: float = Field(60.0, gt=0, le=86400)


class LimitsSettings(_Section):
    max_recipients: int = Field(500, ge=1)
    max_body_chars: int = Field(1_000_000, ge=1000)
    max_tags: int = Field(2100, ge=10)
    max_value_chars: int = Field(10_000, ge=100)


class RuntimeSettings(_Section):
    """How the gateway's process runs: its event loop, asyncio's own or uvloop's (README,
    Performance)."""

    event_loop: EventLoop = "asyncio"

    @field_validator("event_loop")
    @classmethod
    def _installed(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError(
                "uvloop is not installed (it has no Windows build): "
                'pip install uvloop, or set "asyncio"'
            )
        return value


class AccountSettings(_Section):
    # Lengths and bounds are the columns' (a test checks them against tables.py).
    keyid: str = Field(min_length=1, max_length=64)
    login: str = Field("", max_length=64)
    password: str = Field("", max_length=128)
    company: str = Field("", max_length=200)
    contact: str = Field("", max_length=200)
    phone: str = Field("", max_length=40)
    email: str = Field("", max_length=254)
    domains: tuple[str, ...] = ()
    credit: int = Field(0, ge=0, le=MAX_BIG)
    senders: tuple[str, ...] = ()
    nostop_allowed: bool = False
    quiet_hours_lifted: bool = False
    international_allowed: bool = False
    allowed_ips: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()
    rate_limit: int = Field(0, ge=0, le=MAX_SMALL)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL's text and JSON cannot hold U+0000: refuse it here, naming the field.
        texts = value if isinstance(value, tuple) else (value,)
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("contains a NUL character (U+0000)")
        return value

    # The items are checked one by one, with the functions the CLI parses its options with.
    @field_validator("domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(domain_name(item) for item in value)

    @field_validator("senders")
    @classmethod
    def _senders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sender_id(item) for item in value)

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(ip_network(item) for item in value)

    @field_validator("blacklist")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(phone_number(item) for item in value)


_DOMAIN_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def domain_name(value: str) -> str:
    """A sender domain as accounts keep it (trimmed, lower case); ValueError unless it is a
    domain name (an internationalised one too)."""
    domain = value.strip().lower()
    try:
        ascii_form = domain.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_form = ""
    labels = ascii_form.split(".")
    if len(ascii_form) > 253 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"{value!r} is not a domain name, e.g. example.com")
    return domain


def sender_id(value: str) -> str:
    """An approved sender id (trimmed); ValueError for one no request could use (SPEC §7)."""
    sender = value.strip()
    if not well_formed(sender):
        raise ValueError(
            f"{value!r} is not a sender id: 4 to 11 letters, digits or spaces, with a letter"
        )
    return sender


def ip_network(value: str) -> str:
    """A client IP address or network; ValueError for anything else."""
    item = value.strip()
    try:
        ipaddress.ip_network(item, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address or network") from None
    return item


def phone_number(value: str) -> str:
    """A blacklisted number, normalised as recipients are (SPEC §6: 0XXXXXXXXX, or E.164 for
    a foreign one); ValueError for one that no recipient could match."""
    code, number = check_format(value, international_allowed=True)
    if code is not None:
        raise ValueError(
            f"{value!r} is not a phone number: 10 digits starting with 0, or + and a country code"
        )
    return number


DEMO_ACCOUNT = AccountSettings(
    keyid="demo",
    login="demo",
    password="demo",
    company="Demo",
    domains=("example.com",),
    credit=1000,
    senders=("MaSociete",),
)


class Settings(_Section):
    smtp: SmtpSettings = SmtpSettings()
    http: HttpSettings = HttpSettings()
    database: DatabaseSettings = DatabaseSettings()
    relay: RelaySettings = RelaySettings()
    clock: ClockSettings = ClockSettings()
    stop: StopSettings = StopSettings()
    sms: SmsSettings = SmsSettings()
    quiet_hours: QuietHoursSettings = QuietHoursSettings()
    limits: LimitsSettings = LimitsSettings()
    storage: StorageSettings = StorageSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    number_plan: dict[str, NumberKind] = Field(default_factory=dict)
    hlr: dict[str, str] = Field(default_factory=dict)
    accounts: tuple[AccountSettings, ...] = (DEMO_ACCOUNT,)

    @field_validator("number_plan")
    @classmethod
    def _digit_prefixes(cls, value: dict[str, NumberKind]) -> dict[str, NumberKind]:
        for prefix in value:
            if not re.fullmatch(r"0\d{1,9}", prefix):
                raise ValueError(f"prefix {prefix!r} must be 2 to 10 digits starting with 0")
        return value

    @field_validator("hlr")
    @classmethod
    def _operator_prefixes(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, operator in value.items():
            if not re.fullmatch(r"0\d{1,9}|\+\d{1,15}", prefix):
                raise ValueError(
                    f"prefix {prefix!r} must be 2 to 10 digits starting with 0, or + and digits"
                )
            if not re.fullmatch(r"[A-Za-z0-9]{1,16}", operator):
                raise ValueError(f"operator {operator!r} for {prefix!r}: 1 to 16 letters/digits")
        return value

    @model_validator(mode="after")
    def _unique_keyids(self) -> Settings:
        seen: set[str] = set()
        for account in self.accounts:
            if account.keyid in seen:
                raise ValueError(f"accounts: keyid {account.keyid!r} appears twice")
            seen.add(account.keyid)
        return self

    @property
    def http_is_loopback(self) -> bool:
        return is_loopback(self.http.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant with its offset (a naive time is ambiguous across DST)."""
    try:
        instant = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 instant") from None
    if instant.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; write e.g. 2026-11-29T21:00:00+01:00")
    in_range(instant)
    return instant


def load_settings(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """File, then `overrides`, then MAIL2SMS_* variables; every mistake is a ConfigError naming
    the key and where it was set."""
    data, origins = _gather(path, overrides, os.environ if environ is None else environ)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origins)) from None


def setting_origins(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Where each setting given was set: "smtp.port" (a whole list or section: "accounts") →
    the file's path or the MAIL2SMS_* variable's name. A key not listed has its default."""
    return _gather(path, None, os.environ if environ is None else environ)[1]


def _gather(
    path: str | Path | None, overrides: Mapping[str, Any] | None, environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged data, and the origin of each key given ("" for `overrides`)."""
    data: dict[str, Any] = {}
    origins: dict[str, str] = {}
    if path is not None:
        data = _read(path)
        origins.update(_origins_of(data, str(path)))
    if overrides:
        data = _deep_merge(data, dict(overrides))
        origins.update(_origins_of(overrides, ""))
    from_env, variables = _from_environment(environ)
    return _deep_merge(data, from_env), {**origins, **variables}


def _read(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; `mail2sms config` prints every setting with its "
            "default, to start one from"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _origins_of(data: Mapping[str, Any], origin: str) -> dict[str, str]:
    """Each setting given: its section, and "section.key" for each key of a table."""
    found: dict[str, str] = {}
    for section, value in data.items():
        found[section] = origin
        if isinstance(value, Mapping):
            found.update({f"{section}.{key}": origin for key in value})
    return found


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _from_environment(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """MAIL2SMS_<SECTION>__<KEY>=value as {section: {key: value}}, with the variable naming
    each; JSON for lists and tables; MAIL2SMS_<SECTION>=JSON sets a whole section. Any other
    MAIL2SMS_* variable (MAIL2SMS_HOME, docker-compose.yml's MAIL2SMS_ADMIN_TOKEN) is not a
    setting and is left alone."""
    found: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        section, separator, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not separator and section not in Settings.model_fields:
            continue
        if section not in Settings.model_fields:
            close = _closest(section, Settings.model_fields)
            rest = f"__{key.upper()}" if separator else ""
            hint = (
                f"did you mean {ENV_PREFIX}{close.upper()}{rest}?"
                if close
                else "use MAIL2SMS_<SECTION>__<KEY> with SECTION one of "
                f"{sorted(Settings.model_fields)}"
            )
            raise ConfigError(f"environment variable {name}: unknown section {section!r}; {hint}")
        parsed: Any = value
        if value.strip().startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"environment variable {name}: not valid JSON: {exc}") from None
        if not key:
            found[section] = parsed
            origins.update(_origins_of({section: parsed}, name))
            continue
        annotation = Settings.model_fields[section].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if key not in annotation.model_fields:
                close = _closest(key, annotation.model_fields)
                hint = (
                    f"did you mean {ENV_PREFIX}{section.upper()}__{close.upper()}?"
                    if close
                    else f"known keys: {sorted(annotation.model_fields)}"
                )
                raise ConfigError(
                    f"environment variable {name}: unknown key {section}.{key}; {hint}"
                )
        elif section not in ("number_plan", "hlr"):
            raise ConfigError(f"environment variable {name}: set {section} as a whole, as JSON")
        found.setdefault(section, {})[key] = parsed
        origins[f"{section}.{key}"] = name
    return found, origins


def _closest(name: str, known: Iterable[str]) -> str | None:
    """The known name `name` is most likely a typo of, if any."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _describe(exc: ValidationError, origins: Mapping[str, str]) -> str:
    """One line (SPEC §13), in plain words: each wrong key, where it was set, what it needs."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) or "(top level)"
        origin = next(
            (origins[k] for i in range(len(loc), 0, -1) if (k := ".".join(loc[:i])) in origins),
            "",
        )
        where = f" ({origin})" if origin else ""
        problems.append(f"{key}{where}: {_problem(error)}")
    return "invalid configuration: " + "; ".join(problems)


# What a setting needs, by pydantic's error type, in the words of someone writing TOML.
_NEEDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string, in quotes",
    "dict_type": "a table of key = value",
    "model_type": "a table of key = value",
    "missing": "required",
    "string_too_short": "must not be empty",
}


def _problem(error: ErrorDetails) -> str:
    kind, loc = error["type"], error["loc"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key([str(part) for part in loc])
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")  # ours: they name the value
    if kind in ("tuple_type", "list_type"):
        need = (
            "a list of [[accounts]] tables"
            if loc == ("accounts",)
            else 'a list of strings, e.g. ["a", "b"]'
        )
    elif kind == "literal_error":
        need = f"one of {context['expected']}"
    elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
        bound = next(k for k in words if k in context)
        limit = context[bound]
        need = f"{words[bound]} {int(limit) if float(limit).is_integer() else limit}"
    else:
        need = _NEEDS.get(kind) or str(error["msg"]).removeprefix("Input should be ")
    return need if kind == "missing" else f"{need} (got {error.get('input')!r})"


def _unknown_key(loc: list[str]) -> str:
    """An unknown key, with the known one it is closest to (or the known ones)."""
    model: Any = Settings
    if len(loc) > 1:
        model = (
            AccountSettings if loc[0] == "accounts" else Settings.model_fields[loc[0]].annotation
        )
    known = (
        list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
    )
    what = "unknown section" if len(loc) == 1 else "unknown key"
    close = _closest(loc[-1], known)
    if close is None:
        return f"{what}; known: {', '.join(known)}"
    return f"{what}, did you mean {'.'.join([*loc[:-1], close])}?"
