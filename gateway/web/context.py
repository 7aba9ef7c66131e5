"""What the web side is given by the gateway that composes it (app.py), never the Gateway."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core.model import Intake, RuleSettings
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store.engine import Database
from gateway.store.writer import Written


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    engine: Database
    clock: Clock
    changes: Changes
    metrics: Metrics
    rules: RuleSettings
    # The pipeline, once the gateway runs: a channel's request in, its committed result out.
    send: Callable[[Intake], Awaitable[Written]] | None = None
