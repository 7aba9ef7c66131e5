"""Settings: one TOML file plus MAIL2SMS_<SECTION>__<KEY> overrides, validated once, frozen."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gateway.clock import in_range
from gateway.errors import ConfigError

ENV_PREFIX = "MAIL2SMS_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/gateway.db"
NumberKind = Literal["mobile", "unassigned", "fixed", "full_mvno"]
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
    max_message_size: int = Field(10 * 1024 * 1024, ge=1024)
    max_connections: int = Field(200, ge=1)
    timeout: float = Field(60.0, gt=0)
    starttls: bool = False
    tls_cert: str = ""
    tls_key: str = Field("", validate_default=True)  # checked against tls_cert even when unset
    auth: Literal["off", "any", "accounts"] = "off"
    auth_required: bool = False

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


class LimitsSettings(_Section):
    max_recipients: int = Field(500, ge=1)
    max_body_chars: int = Field(1_000_000, ge=1000)
    max_tags: int = Field(2100, ge=10)
    max_value_chars: int = Field(10_000, ge=100)


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

    @field_validator("domains")
    @classmethod
    def _lower_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value)

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value


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
    """File, then `overrides`, then MAIL2SMS_* variables; every mistake is a ConfigError."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} not found; copy config.example.toml") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if overrides:
        data = _deep_merge(data, dict(overrides))
    from_env = _from_environment(os.environ if environ is None else environ)
    if from_env:
        data = _deep_merge(data, from_env)
        source += " + environment"
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """MAIL2SMS_<SECTION>__<KEY>=value as {section: {key: value}}; JSON for lists and tables;
    MAIL2SMS_<SECTION>=JSON sets a whole section. Any other MAIL2SMS_* variable (MAIL2SMS_HOME,
    docker-compose.yml's MAIL2SMS_ADMIN_TOKEN) is not a setting and is left alone."""
    found: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        section, separator, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if not separator and section not in Settings.model_fields:
            continue
        if section not in Settings.model_fields:
            raise ConfigError(
                f"environment variable {name}: unknown section {section!r}; use "
                f"MAIL2SMS_<SECTION>__<KEY> with SECTION one of {sorted(Settings.model_fields)}"
            )
        parsed: Any = value
        if value.strip().startswith(("[", "{")):
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"environment variable {name}: not valid JSON: {exc}") from None
        if not key:
            found[section] = parsed
            continue
        annotation = Settings.model_fields[section].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if key not in annotation.model_fields:
                raise ConfigError(
                    f"environment variable {name}: unknown key {section}.{key}; "
                    f"known keys: {sorted(annotation.model_fields)}"
                )
        elif section not in ("number_plan", "hlr"):
            raise ConfigError(f"environment variable {name}: set {section} as a whole, as JSON")
        found.setdefault(section, {})[key] = parsed
    return found


def _describe(exc: ValidationError, source: str) -> str:
    """One line (SPEC §13), naming each wrong key."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key; see config.example.toml for the known keys")
        else:
            problems.append(f"{key}: {error['msg']} (got {error.get('input')!r})")
    return f"invalid configuration ({source}): " + "; ".join(problems)
