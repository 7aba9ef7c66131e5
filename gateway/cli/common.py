"""What the commands share: exit statuses, how a subcommand is declared, JSON output."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_USAGE = 2
EXIT_FAILURE = 1

Formatter = argparse.RawDescriptionHelpFormatter


def command(
    commands: Any, name: str, summary: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=summary, epilog=epilog, formatter_class=Formatter
    )
    return parser


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))
