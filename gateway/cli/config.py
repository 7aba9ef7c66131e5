"""`mail2sms config`: the effective settings as TOML, every key with its value or its default."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from typing import Any

from gateway.cli.common import command, hide_password
from gateway.config import Settings, setting_origins

CONFIG_EPILOG = """\
examples:
  mail2sms config                              # every setting with its default
  mail2sms --config staging.toml config        # what staging.toml and MAIL2SMS_* change
  mail2sms config > config.toml                # a settings file to start from

A setting given by the --config file or a MAIL2SMS_* variable says which in a comment; the
others have their default. Passwords and tokens given there are shown as "***"."""

# Settings whose value is a secret once somebody sets it (a default is no secret).
SECRETS = frozenset({"http.admin_token", "accounts.password"})
HIDDEN = "***"
COMMENT_COLUMN = 40
BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def add_parser(commands: Any) -> None:
    command(
        commands,
        "config",
        "print the effective settings as TOML: every key, with its default when not set",
        CONFIG_EPILOG,
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    print(render(settings, setting_origins(args.config)), end="")
    return 0


def render(settings: Settings, origins: Mapping[str, str]) -> str:
    """The settings as a TOML document that loads back to them (secrets aside); each setting
    given says where in a comment."""
    data = settings.model_dump(mode="json")
    accounts: list[dict[str, Any]] = data.pop("accounts")
    lines = [
        "# mail2sms: the effective settings. A comment names where a setting was given;",
        '# the others have their default. Passwords and tokens given are shown as "***".',
    ]
    if not accounts:  # a top-level key: it must come before the first table
        lines.append(_line("accounts", "[]", origins.get("accounts")))
    for section, values in data.items():
        lines += ["", f"[{section}]"]
        if not values:
            lines.append("# none")
        for key, value in values.items():
            path = f"{section}.{key}"
            name = key if BARE_KEY.fullmatch(key) else json.dumps(key)  # "+44" in [hlr]
            shown = _shown(path, value, origins.get(path))
            lines.append(_line(name, shown, origins.get(path)))
    origin = origins.get("accounts")
    for account in accounts:
        lines += ["", _line("[[accounts]]", "", origin or "default: the demo account")]
        for key, value in account.items():
            lines.append(_line(key, _shown(f"accounts.{key}", value, origin), None))
    return "\n".join(lines) + "\n"


def _shown(path: str, value: Any, origin: str | None) -> str:
    if origin and value and path in SECRETS:
        return _toml(HIDDEN)
    if origin and path == "database.url":
        return _toml(hide_password(value))
    return _toml(value)


def _line(key: str, value: str, origin: str | None) -> str:
    text = f"{key} = {value}" if value else key
    return f"{text.ljust(COMMENT_COLUMN)}  # {origin}" if origin else text


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
