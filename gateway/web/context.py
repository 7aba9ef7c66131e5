"""What the web side is given by the gateway that composes it (app.py), never the Gateway."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.clock import Clock
from gateway.config import Settings
from gateway.core.model import RuleSettings
from gateway.events import Changes
from gateway.metrics import Metrics
from gateway.store import Engine


@dataclass(frozen=True, slots=True)
class WebContext:
    settings: Settings
    engine: Engine
    clock: Clock
    changes: Changes
    metrics: Metrics
    rules: RuleSettings
