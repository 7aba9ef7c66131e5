"""Prometheus metrics of one gateway (its own registry: several gateways may share a process)."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.emails = Counter(
            "mail2sms_emails", "Inbound emails by outcome", ["status"], registry=self.registry
        )
        self.sms = Counter(
            "mail2sms_recipients",
            "Recipients judged, by provider code",
            ["code"],
            registry=self.registry,
        )
        self.replies = Counter(
            "mail2sms_replies",
            "Ack/Not replies by state reached",
            ["state"],
            registry=self.registry,
        )
        self.http_calls = Counter(
            "mail2sms_http_calls",
            "Sends over the provider's HTTP API by outcome",
            ["status"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "mail2sms_processing_seconds",
            "From end of DATA to the durable commit of the email",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )

    def email_done(self, status: str, codes: Iterable[int], seconds: float) -> None:
        self.emails.labels(status).inc()
        for code, count in Tally(codes).items():
            self.sms.labels(str(code)).inc(count)
        self.processing.observe(seconds)

    def http_call_done(self, status: str, codes: Iterable[int], seconds: float) -> None:
        self.http_calls.labels(status).inc()
        for code, count in Tally(codes).items():
            self.sms.labels(str(code)).inc(count)
        self.processing.observe(seconds)

    def reply_state(self, state: str) -> None:
        self.replies.labels(state).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
