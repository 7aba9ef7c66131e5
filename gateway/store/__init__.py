"""Storage: tables, engine, migrations and the queries of the gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine as Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> Any:
    # The async engine's type, imported when asked for: the writer process, which imports
    # this package for its synchronous modules, never loads the async side (~8 MiB).
    if name == "Engine":
        from sqlalchemy.ext.asyncio import AsyncEngine

        return AsyncEngine
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
