"""The load generator: raw asyncio SMTP clients in their own process, timing DATA end → reply.

Run as `python -m bench.load '<json spec>'` (see `Spec`); prints one JSON object (see `Run.report`).
Plain streams rather than smtplib or aiosmtplib keep the client's cost per email small, so that
on a 2-core machine the generator is not what is measured. No PIPELINING (aiosmtpd does not
offer it): MAIL, RCPT, DATA and the content each wait for their reply, as any client would.
Every run stops at `messages` emails or after `seconds`, whichever comes first, and a watchdog
cancels it all 30 s later whatever happens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import quopri
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

GATEWAY_ADDRESS = "sendsms@isendpro-api.com"
ID = b"@@ID@@"
TEXT = "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!"
CSV_TEXT = "Bonjour [1] [2], votre commande est prete. Super promo -10% !"
GRACE = 30.0  # the watchdog's margin beyond `seconds`
MAX_CONNECT_FAILURES = 200


@dataclass
class Spec:
    targets: list[tuple[str, int]]  # client n talks to targets[n % len(targets)]
    kind: str = "single"  # single | numx | csv
    recipients: int = 1  # for numx and csv
    mode: str = "reuse"  # reuse: one connection per client; fresh: one per email
    concurrency: int = 16
    messages: int = 1000
    seconds: float = 20.0
    rate: float | None = None  # emails per second, paced; None: as fast as replies come
    first_id: int = 1  # emailIds first_id, first_id + 1, … so that dedup never hits
    keyid: str = "bench"


def number(i: int) -> str:
    """The load's i-th recipient (1…500): every request of a load names the same ones."""
    return f"0612{i:06d}"


def _headers(extra: str = "") -> str:
    return (
        "From: Bench <app@example.com>\r\n"
        f"To: {GATEWAY_ADDRESS}\r\n"
        "Subject: envoi\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0100\r\n"
        "Message-ID: <bench-@@ID@@@example.com>\r\n"
        "MIME-Version: 1.0\r\n" + extra
    )


def _qp(text: str) -> str:
    return quopri.encodestring(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")


def _envoi(keyid: str, inner: str) -> str:
    return (
        "<envoi>\r\n"
        f"<keyid>{keyid}</keyid>\r\n{inner}"
        "<emetteur>MaSociete</emetteur>\r\n"
        "<emailNot>not@masociete.com</emailNot>\r\n"
        "<emailAck>ack@masociete.com</emailAck>\r\n"
        "<emailId>@@ID@@</emailId>\r\n"
        "</envoi>\r\n"
    )


def _base64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")


def template(kind: str, recipients: int, keyid: str) -> bytes:
    """The email as sent after DATA (dot-stuffed, ending CRLF . CRLF), with @@ID@@ to fill."""
    if kind == "single":
        body = _envoi(keyid, f"<num>{number(1)}</num>\r\n<sms>{TEXT}</sms>\r\n")
        text = _headers(
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ) + _qp(body)
    elif kind == "numx":
        numbers = "".join(f"<num{i}>{number(i)}</num{i}>\r\n" for i in range(1, recipients + 1))
        body = _envoi(keyid, f"{numbers}<sms>{TEXT}</sms>\r\n")
        text = _headers(
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ) + _qp(body)
    elif kind == "csv":
        boundary = "----bench-boundary-0hXqG3nE2vJ5Y1a8bC9dR4tW"
        mobiles = "".join(
            f"{number(i)};;Prenom{i};;Nom{i}\r\n" for i in range(1, recipients + 1)
        ).encode("utf-8")
        parts = [
            'Content-Type: text/plain; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: 7bit\r\n\r\n" + _envoi(keyid, ""),
            'Content-Type: text/csv; charset="utf-8"; name="mobiles.csv"\r\n'
            'Content-Disposition: attachment; filename="mobiles.csv"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n" + _base64(b"\xef\xbb\xbf" + mobiles),
            'Content-Type: text/csv; charset="utf-8"; name="message.csv"\r\n'
            'Content-Disposition: attachment; filename="message.csv"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + _base64(CSV_TEXT.encode("utf-8") + b"\r\n"),
        ]
        text = _headers(f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n')
        text += "This is a multi-part message in MIME format.\r\n"
        text += "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    else:
        raise ValueError(f"kind: single, numx or csv, not {kind!r}")
    lines = text.encode("ascii").split(b"\r\n")
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    return stuffed.rstrip(b"\r\n") + b"\r\n.\r\n"


class SmtpRefusal(Exception):
    def __init__(self, stage: str, code: int) -> None:
        super().__init__(f"{stage} {code}")
        self.key = f"{stage} {code}"
        self.code = code


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed by the server")
        if line[3:4] != b"-":
            return int(line[:3])


async def _expect(reader: asyncio.StreamReader, stage: str, code: int) -> None:
    got = await _reply(reader)
    if got != code:
        raise SmtpRefusal(stage, got)


@dataclass
class Run:
    spec: Spec
    body: bytes = b""
    issued: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    connect_failures: int = 0
    reconnects: int = 0  # sessions the server ended with 421, their email sent again
    start: float = 0.0
    deadline: float = 0.0
    end: float = 0.0

    def take(self) -> int | None:
        """The index of the next email to send, or None when the run is over."""
        if self.issued >= self.spec.messages or time.perf_counter() >= self.deadline:
            return None
        if self.connect_failures > MAX_CONNECT_FAILURES:
            return None
        index = self.issued
        self.issued += 1
        return index

    async def pace(self, index: int) -> None:
        if self.spec.rate:
            delay = self.start + index / self.spec.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def client(self, n: int) -> None:
        host, port = self.spec.targets[n % len(self.spec.targets)]
        fresh = self.spec.mode == "fresh"
        retry: int | None = None  # an email the server closed the session on (421), resent
        while (index := retry if retry is not None else self.take()) is not None:
            retry = None
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as exc:
                self.connect_failures += 1
                self.errors[f"connect errno {exc.errno}"] += 1
                await asyncio.sleep(0.05)
                continue
            try:
                await _expect(reader, "greeting", 220)
                writer.write(b"EHLO bench.example.com\r\n")
                await _expect(reader, "EHLO", 250)
                next_index: int | None = index
                sending = index
                while next_index is not None:
                    await self.pace(next_index)
                    sending = next_index
                    await self.transaction(reader, writer, next_index)
                    next_index = None if fresh else self.take()
                writer.write(b"QUIT\r\n")
                await _expect(reader, "QUIT", 221)
            except SmtpRefusal as exc:
                if exc.code == 421 and exc.key.startswith(("MAIL", "RCPT")):
                    # The server ends the session (its per-session caps): as a mail client
                    # does, the email goes again on a new connection.
                    self.reconnects += 1
                    retry = sending
                else:  # that email is lost, like a client giving up
                    self.errors[exc.key] += 1
            except (ConnectionError, ValueError) as exc:
                self.errors[type(exc).__name__] += 1
            finally:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()

    async def transaction(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, index: int
    ) -> None:
        writer.write(b"MAIL FROM:<app@example.com>\r\n")
        await _expect(reader, "MAIL", 250)
        writer.write(f"RCPT TO:<{GATEWAY_ADDRESS}>\r\n".encode())
        await _expect(reader, "RCPT", 250)
        writer.write(b"DATA\r\n")
        await _expect(reader, "DATA", 354)
        content = self.body.replace(ID, str(self.spec.first_id + index).encode())
        sent = time.perf_counter()
        writer.write(content)
        code = await _reply(reader)
        answered(self, sent, code == 250, f"end of DATA {code}")

    async def go(self) -> None:
        self.body = template(self.spec.kind, self.spec.recipients, self.spec.keyid)
        self.start = time.perf_counter()
        self.deadline = self.start + self.spec.seconds
        await run_clients(self, [self.client(n) for n in range(self.spec.concurrency)])

    def report(self, cpu: float) -> dict[str, Any]:
        return summary(self, cpu, len(self.body))


def answered(run: Any, sent: float, ok: bool, failure: str) -> None:
    """One answer of a run (SMTP or HTTP): its latency when it is a success, else `failure`
    counted."""
    done = time.perf_counter()
    run.end = done
    if ok:
        run.ok += 1
        run.latencies.append(done - sent)
    else:
        run.errors[failure] += 1


async def run_clients(run: Any, clients: list[Coroutine[Any, Any, None]]) -> None:
    """The clients of a run (SMTP or HTTP), bounded by its seconds plus a grace: a client
    still busy then is a `watchdog` error, never a hang."""
    try:
        async with asyncio.timeout(run.spec.seconds + GRACE):
            await asyncio.gather(*clients)
    except TimeoutError:
        run.errors["watchdog"] += 1


def summary(run: Any, cpu: float, message_bytes: int) -> dict[str, Any]:
    """What a run (SMTP or HTTP) reports: counts, rate, latency percentiles, client CPU."""
    elapsed = max(run.end - run.start, 1e-9)
    return {
        "spec": asdict(run.spec),
        "issued": run.issued,
        "ok": run.ok,
        "errors": dict(run.errors),
        "reconnects": getattr(run, "reconnects", 0),
        "elapsed": elapsed,
        "msgs_per_s": run.ok / elapsed,
        "latency_ms": percentiles(run.latencies),
        "client_cpu_s": cpu,
        "message_bytes": message_bytes,
    }


def percentiles(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    count = len(ordered)

    def at(q: float) -> float:
        return ordered[min(count - 1, int(q * count))] * 1000

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "p999": at(0.999),
        "max": ordered[-1] * 1000,
        "mean": sum(ordered) / count * 1000,
    }


def serve_spec(make: Callable[[dict[str, Any]], Any]) -> None:
    """A load generator's process: its spec as JSON (argument or stdin), the run made of it
    by `make`, its report as JSON on stdout with the generator's own CPU."""
    raw = json.loads(sys.argv[1] if len(sys.argv) > 1 else sys.stdin.read())
    raw["targets"] = [tuple(t) for t in raw["targets"]]
    run = make(raw)
    cpu = time.process_time()
    asyncio.run(run.go())
    json.dump(run.report(time.process_time() - cpu), sys.stdout)
    sys.stdout.write("\n")


def main() -> None:
    serve_spec(lambda raw: Run(Spec(**raw)))


if __name__ == "__main__":
    main()
