"""The abuse phase: an ordinary client's latency while one party sends heavy mail (SPEC §16).

One gateway (SQLite); an ordinary client sends a 1-recipient request every 50 ms and a health
check asks `/healthz` every 100 ms, first alone (baseline), then while one heavy sender loops
over one kind of heavy mail just under `smtp.max_message_size` (4 MiB): a 150,000-line
`mobiles.csv` from an unknown keyid, the same from an authorised account (code 23 after 501
lines), and 3.5 MB bodies; or, once 300 requests of 500 numbers are stored, asks the API for
the emails 1,000 at a time in a loop (each email lists its 500 results). Each run is bounded
in count and time; the figures are the ordinary client's and the health check's p50/p99/max.
"""

from __future__ import annotations

import base64
import smtplib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.load import number, percentiles
from bench.phases import say
from bench.servers import KEYID, Server, start_gateway, write_config

GATEWAY_ADDRESS = "sendsms@isendpro-api.com"
ORDINARY_EVERY = 0.05
HEALTH_EVERY = 0.1
HEAVY_MAX = 200  # heavy emails or list requests per run at most
CAMPAIGNS = 300  # requests of 500 numbers stored before the emails list is polled
# What one heavy party does until told to stop: how many heavy emails or requests it made.
Party = Callable[[threading.Event], int]


def _email(body: str, *, attachments: tuple[tuple[str, bytes], ...] = (), n: int = 0) -> bytes:
    headers = (
        f"From: app@example.com\r\nTo: {GATEWAY_ADDRESS}\r\nSubject: abuse {n}\r\n"
        f"Message-ID: <abuse-{n}-{time.monotonic_ns()}@example.com>\r\nMIME-Version: 1.0\r\n"
    )
    if not attachments:
        return (headers + "Content-Type: text/plain\r\n\r\n" + body + "\r\n").encode()
    boundary = "abuse-boundary-7c1e"
    parts = [f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{body}\r\n"]
    for name, content in attachments:
        encoded = base64.encodebytes(content).decode().replace("\n", "\r\n")
        parts.append(
            f"--{boundary}\r\nContent-Type: text/csv\r\n"
            f'Content-Disposition: attachment; filename="{name}"\r\n'
            f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n"
        )
    return (
        headers + f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        + "".join(parts) + f"--{boundary}--\r\n"
    ).encode()


def _campaign(keyid: str) -> Callable[[int], bytes]:
    mobiles = b"".join(b"0612%06d;;v\n" % (n % 1_000_000) for n in range(150_000))
    attachments = (("mobiles.csv", mobiles), ("message.csv", b"Bonjour [1]\n"))

    def make(n: int) -> bytes:
        body = f"<envoi><keyid>{keyid}</keyid><emailId>{7_000_000 + n}</emailId></envoi>"
        return _email(body, attachments=attachments, n=n)

    return make


_BIG = ("z" * 998 + "\r\n") * 3500  # 3.5 MB; SMTP lines stay under 1000 octets


def _big_body(n: int) -> bytes:
    return _email("<envoi><keyid>nobody</keyid></envoi>\r\n" + _BIG, n=n)


def _numbers(n: int) -> bytes:
    numbers = "".join(f"<num{i}>{number(i)}</num{i}>\r\n" for i in range(1, 501))
    body = f"<envoi><keyid>{KEYID}</keyid>{numbers}<sms>x</sms><emailId>{9_000_000 + n}</emailId>"
    return _email(body + "</envoi>", n=n)


def _mailer(making: Callable[[], Callable[[int], bytes]]) -> Callable[[Server], Party]:
    """A party that sends the heavy emails `making()` makes (built when the run starts)."""

    def prepare(gateway: Server) -> Party:
        make = making()
        return lambda stop: _heavy(gateway.smtp, make, stop)

    return prepare


def _list_poller(gateway: Server) -> Party:
    """Stores CAMPAIGNS requests of 500 numbers, then asks for the emails, 1,000 a page."""
    with smtplib.SMTP(*gateway.smtp, timeout=120) as client:
        for n in range(CAMPAIGNS):
            client.sendmail("app@example.com", [GATEWAY_ADDRESS], _numbers(n))

    def poll(stop: threading.Event) -> int:
        asked = 0
        with httpx.Client(base_url=gateway.api, timeout=120) as http:
            while not stop.is_set() and asked < HEAVY_MAX:
                http.get("/api/v1/emails", params={"limit": 1000}).raise_for_status()
                asked += 1
        return asked

    return poll


HEAVY: dict[str, Callable[[Server], Party]] = {
    "150,000-line CSV, unknown keyid": _mailer(lambda: _campaign("nobody")),
    "150,000-line CSV, authorised (23)": _mailer(lambda: _campaign(KEYID)),
    "3.5 MB bodies, unknown keyid": _mailer(lambda: _big_body),
    "GET /api/v1/emails?limit=1000, 500 results each": _list_poller,
}


def _ordinary(smtp: tuple[str, int], stop: threading.Event, first_id: int) -> list[float]:
    latencies: list[float] = []
    n = 0
    with smtplib.SMTP(*smtp, timeout=60) as client:
        while not stop.is_set():
            n += 1
            body = (
                f"<envoi><keyid>{KEYID}</keyid><num>0612000001</num><sms>x</sms>"
                f"<emailId>{first_id + n}</emailId></envoi>"
            )
            started = time.perf_counter()
            client.sendmail("app@example.com", [GATEWAY_ADDRESS], _email(body, n=n))
            latencies.append(time.perf_counter() - started)
            stop.wait(ORDINARY_EVERY)
    return latencies


def _health(api: str, stop: threading.Event) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(base_url=api, timeout=30) as http:
        while not stop.is_set():
            started = time.perf_counter()
            http.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - started)
            stop.wait(HEALTH_EVERY)
    return latencies


def _heavy(smtp: tuple[str, int], make: Callable[[int], bytes], stop: threading.Event) -> int:
    """Heavy emails sent (answered 250 or a temporary 451 of the in-flight budget)."""
    sent = 0
    with smtplib.SMTP(*smtp, timeout=120) as client:
        while not stop.is_set() and sent < HEAVY_MAX:
            try:
                client.sendmail("app@example.com", [GATEWAY_ADDRESS], make(sent))
            except smtplib.SMTPDataError as refused:
                if refused.smtp_code != 451:
                    raise
            sent += 1
    return sent


def _measure(gateway: Server, party: Party | None, seconds: float, first_id: int) -> dict[str, Any]:
    stop = threading.Event()
    found: dict[str, Any] = {}

    def keep(name: str, work: Callable[[], Any]) -> threading.Thread:
        thread = threading.Thread(target=lambda: found.__setitem__(name, work()), daemon=True)
        thread.start()
        return thread

    threads = [
        keep("ordinary", lambda: _ordinary(gateway.smtp, stop, first_id)),
        keep("health", lambda: _health(gateway.api, stop)),
    ]
    if party is not None:
        threads.append(keep("heavy", lambda: party(stop)))
    stop.wait(seconds)
    stop.set()
    for thread in threads:
        thread.join(180)
    return {
        "ordinary_ms": percentiles(found.get("ordinary", [])),
        "health_ms": percentiles(found.get("health", [])),
        "heavy_emails": found.get("heavy", 0),
        "memory": gateway.memory(),
    }


def abuse_phase(folder: Path, seconds: float) -> dict[str, Any]:
    config = write_config(folder / "abuse.toml", f"sqlite+aiosqlite:///{folder / 'abuse.db'}")
    gateway = start_gateway("gateway-abuse", config, folder)
    results: dict[str, Any] = {}
    try:
        say("abuse: the ordinary client alone")
        results["alone"] = _measure(gateway, None, seconds, 8_000_000)
        for index, (name, prepare) in enumerate(HEAVY.items(), start=1):
            say(f"abuse: the ordinary client while one party sends {name}")
            party = prepare(gateway)
            results[name] = _measure(gateway, party, seconds, 8_000_000 + index * 100_000)
    finally:
        gateway.stop()
    return results


def abuse_table(results: dict[str, Any]) -> str:
    rows = [
        ("while one party sends", "ordinary p50", "p99", "max", "healthz p50", "p99", "max",
         "heavy sent", "peak RSS MiB")
    ]  # fmt: skip
    for name, found in results.items():
        ordinary, health = found["ordinary_ms"], found["health_ms"]
        rows.append(
            (
                name,
                *(f"{ordinary.get(k, 0):.1f}" for k in ("p50", "p99", "max")),
                *(f"{health.get(k, 0):.1f}" for k in ("p50", "p99", "max")),
                str(found["heavy_emails"]),
                f"{found['memory'].get('VmHWM', 0):.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "latency in ms (SMTP: DATA to 250 of a 1-recipient request)\n" + "\n".join(lines)
