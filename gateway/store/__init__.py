"""Storage: tables, engine, migrations and the queries of the gateway."""

from sqlalchemy.ext.asyncio import AsyncEngine as Engine

__all__ = ["Engine"]
