"""The measured runs: one load generator against servers, and the phases built of such runs
(throughput, the long run for memory, the API on a seeded database, PostgreSQL)."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.servers import (
    KEYID,
    PYTHON,
    ROOT,
    Server,
    clean_env,
    db_upgrade,
    start_gateway,
    system_busy,
    throwaway_cluster,
    throwaway_database,
    tree_cpu,
    write_config,
)

RECIPIENTS = 500  # limits.max_recipients, the most one request may carry


# Load -----------------------------------------------------------------------------------------


@dataclass
class Ids:
    """emailIds never reused within one database, so that dedup never hits."""

    next: int = 1_000_000

    def take(self, count: int) -> int:
        first = self.next
        self.next += count + 1
        return first


def run_load(
    spec: dict[str, Any],
    servers: Sequence[Server],
    sample_every: float = 1.0,
    database_pid: int | None = None,
) -> dict[str, Any]:
    """One generator process against `servers`; their CPU and memory around and during it
    (and the CPU of the PostgreSQL server whose postmaster is `database_pid`, when known).
    HTTP kinds (http-…) go to the servers' HTTP ports through bench.http_load."""
    http = str(spec["kind"]).startswith("http")
    spec = {**spec, "targets": [list(s.http if http else s.smtp) for s in servers]}
    before = [s.cpu() for s in servers]
    database_before = tree_cpu(database_pid) if database_pid else 0.0
    busy_before, wall_before = system_busy(), time.monotonic()
    samples: list[tuple[float, float]] = []
    generator = subprocess.Popen(
        [PYTHON, "-m", "bench.http_load" if http else "bench.load", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
        cwd=ROOT,
    )
    limit = time.monotonic() + float(spec["seconds"]) + 90
    while generator.poll() is None:
        if time.monotonic() > limit:
            generator.kill()
            generator.wait(10)
            raise RuntimeError(f"the load generator did not stop: {spec}")
        time.sleep(sample_every)
        samples.append(
            (time.monotonic() - wall_before, sum(s.memory().get("VmRSS", 0) for s in servers))
        )
    stdout, stderr = generator.communicate()
    if generator.returncode != 0:
        raise RuntimeError(f"load generator failed: {stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    after = [s.cpu() for s in servers]
    wall = time.monotonic() - wall_before
    busy = system_busy() - busy_before
    # Server.cpu(): main thread, whole tree, children (the writer process), summed over servers.
    main_cpu, server_cpu, children_cpu = (
        sum(a[i] - b[i] for a, b in zip(after, before, strict=True)) for i in range(3)
    )
    ok = max(result["ok"], 1)
    database_cpu = tree_cpu(database_pid) - database_before if database_pid else 0.0
    if database_pid:
        result["database_cpu_ms_per_email"] = database_cpu / ok * 1000
    result.update(
        server=[s.name for s in servers],
        server_cpu_s=server_cpu,
        server_main_thread_cpu_s=main_cpu,
        server_cpu_ms_per_email=server_cpu / ok * 1000,
        # The gateway's writer process (its children): the rest is its event loop's process.
        server_children_cpu_ms_per_email=children_cpu / ok * 1000,
        sms_per_s=result["msgs_per_s"] * spec.get("recipients", 1),
        # CPU the rest of the machine (other people's jobs) took during the run, in cores.
        others_cores=max(0.0, busy - server_cpu - database_cpu - result["client_cpu_s"]) / wall,
        memory=[s.memory() for s in servers],
        rss_samples=samples,
    )
    return result


def load_spec(
    ids: Ids, kind: str, mode: str, args: argparse.Namespace, **extra: Any
) -> dict[str, Any]:
    recipients = 1 if kind == "single" else RECIPIENTS
    messages = extra.pop("messages", args.messages)
    return {
        "kind": kind,
        "recipients": recipients,
        "mode": mode,
        "concurrency": args.concurrency,
        "messages": messages,
        "seconds": extra.pop("seconds", args.seconds),
        "first_id": ids.take(messages),
        "keyid": KEYID,
        **extra,
    }


SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("1 rcpt, reused conns", "single", "reuse"),
    ("1 rcpt, fresh conns", "single", "fresh"),
    ("500 rcpt numX", "numx", "reuse"),
    ("500 rcpt CSV", "csv", "reuse"),
)


def calibrate() -> float:
    """CPU milliseconds of a fixed pure-Python loop: compares the machine's speed across runs."""
    started = time.process_time()
    total = 0
    for i in range(2_000_000):
        total += i
    return (time.process_time() - started) * 1000


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def brief(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    errors = f", errors {result['errors']}" if result["errors"] else ""
    if result.get("reconnects"):
        errors += f", {result['reconnects']} sessions ended by the server (421), email resent"
    return (
        f"{result['ok']} ok in {result['elapsed']:.1f}s: {result['msgs_per_s']:.0f} msg/s, "
        f"p50 {latency.get('p50', 0):.1f} ms, p99 {latency.get('p99', 0):.1f} ms{errors}"
    )


def throughput(
    args: argparse.Namespace, sink: Server, gateway: Server, ids: Ids
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for target in (sink, gateway):  # warm-up: imports, caches, first connections
        warm = run_load(warm_up(ids, args), [target])
    gateway.expected_sms += warm["ok"]
    rounds = getattr(args, "rounds", 1)
    for round_ in range(1, rounds + 1):
        for label, kind, mode in SCENARIOS:
            row: dict[str, Any] = {"scenario": label, "round": round_}
            for name, target in (("sink", sink), ("gateway", gateway)):
                row[name] = run_load(load_spec(ids, kind, mode, args), [target])
                say(f"{label} (round {round_}/{rounds}) → {name}: {brief(row[name])}")
            gateway.expected_sms += row["gateway"]["ok"] * row["gateway"]["spec"]["recipients"]
            rows.append(row)
    rate = rows[0]["gateway"]["msgs_per_s"] / 2
    label = f"1 rcpt, paced {rate:.0f}/s (50%)"
    row = {"scenario": label, "rate": rate}
    messages = max(1, min(args.messages, int(rate * args.seconds)))
    for name, target in (("sink", sink), ("gateway", gateway)):
        spec = load_spec(ids, "single", "reuse", args, rate=rate, messages=messages)
        row[name] = run_load(spec, [target])
        say(f"{label} → {name}: {brief(row[name])}")
    gateway.expected_sms += row["gateway"]["ok"]
    rows.append(row)
    return rows


HTTP_SCENARIOS: tuple[tuple[str, str, int], ...] = (
    ("POST /cgi-bin/sms, 1 number", "http-sms", 1),
    (f"POST /cgi-bin/smsmulti, {RECIPIENTS} numbers", "http-smsmulti", RECIPIENTS),
)


def http_phase(args: argparse.Namespace, sink: Server, gateway: Server) -> list[dict[str, Any]]:
    """The provider's HTTP API channel against a minimal Starlette endpoint (bench.http_sink)
    that parses the same JSON and answers, same load, kept-alive connections."""
    rows: list[dict[str, Any]] = []
    for target in (sink, gateway):  # warm-up
        run_load(http_spec("http-sms", 1, args, messages=min(300, args.messages // 3)), [target])
    for label, kind, recipients in HTTP_SCENARIOS:
        row: dict[str, Any] = {"scenario": label}
        for name, target in (("sink", sink), ("gateway", gateway)):
            row[name] = run_load(http_spec(kind, recipients, args), [target])
            say(f"{label} → {name}: {brief(row[name])}")
        rows.append(row)
    return rows


def http_spec(kind: str, recipients: int, args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "recipients": recipients,
        "concurrency": args.concurrency,
        "messages": args.messages,
        "seconds": args.seconds,
        "keyid": KEYID,
        **extra,
    }


def check_recorded(gateway: Server) -> dict[str, Any]:
    """What the gateway's API shows after the throughput runs: every accepted SMS recorded?"""
    import httpx

    with httpx.Client(base_url=gateway.api, timeout=60) as client:
        sms_total = client.get("/api/v1/sms", params={"limit": 0}).json()["total"]
        emails = client.get("/api/v1/emails", params={"limit": 0}).json()["total"]
        processed = client.get("/api/v1/emails", params={"limit": 0, "status": "processed"})
        processed_total = processed.json()["total"]
    return {
        "sms_recorded": sms_total,
        "sms_expected": gateway.expected_sms,
        "emails": emails,
        "emails_processed": processed_total,
    }


def warm_up(ids: Ids, args: argparse.Namespace) -> dict[str, Any]:
    """A short run first: imports, caches and first connections are not measured."""
    return load_spec(
        ids,
        "single",
        "reuse",
        args,
        messages=min(300, args.messages // 3),
        seconds=min(10.0, args.seconds),
    )


def long_run(args: argparse.Namespace, gateway: Server, ids: Ids) -> dict[str, Any]:
    log_before = gateway.err.stat().st_size
    before = gateway.memory()
    spec = load_spec(
        ids, "single", "reuse", args, messages=args.emails_for_rss, seconds=args.rss_seconds
    )
    result = run_load(spec, [gateway], sample_every=2.0)
    say(f"long run: {brief(result)}")
    log_bytes = gateway.err.stat().st_size - log_before
    return {
        "before": before,
        "after": gateway.memory(),
        "load": result,
        "log_bytes_per_email": log_bytes / max(result["ok"], 1),
    }


# The API on a big database ---------------------------------------------------------------------

SMS_PER_EMAIL = 10
NUMBER_POOL = 10_000
TRACKERS = 1000


def seed(database: Path, sms_rows: int) -> dict[str, Any]:
    """`sms_rows` SMS (10 per email) on one account, by executemany in big transactions; the
    rows go through the store's own driver inserts (column order and conversions of tables.py)."""
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    from gateway.store.sqlite_writer import DriverInsert
    from gateway.store.tables import accounts, emails, sms, sms_groups

    dialect = sqlite_dialect.dialect()
    insert_account, insert_email, insert_group = (
        DriverInsert(table, dialect) for table in (accounts, emails, sms_groups)
    )
    insert_sms = DriverInsert(sms, dialect, with_id=True)
    started = time.monotonic()
    rng = random.Random(20261201)
    numbers = [f"0613{n:06d}" for n in range(NUMBER_POOL)]
    base = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    text = "L'été est fini! Super promo -10% à partir de 50€ d'achat !!!\r\nSTOP SMS au 36111"
    email_count = -(-sms_rows // SMS_PER_EMAIL)
    con = sqlite3.connect(database, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
        account = {
            "keyid": KEYID, "login": KEYID, "password": KEYID, "company": "Bench",
            "contact": "", "phone": "", "email": "", "domains": ["example.com"],
            "senders": ["MaSociete"], "credit": 10**15, "nostop_allowed": False,
            "quiet_hours_lifted": False, "international_allowed": False, "allowed_ips": [],
            "blacklist": [], "rate_limit": 0, "created_at": base, "parent_id": None,
            "price": "",
        }  # fmt: skip
        account_id = con.execute(insert_account.sql, insert_account.values([account])[0]).lastrowid
        con.execute("COMMIT")
        chunk = 20_000
        sent = 0
        email_row = 0
        for first in range(0, email_count, chunk):
            email_rows, group_rows, sms_rows_chunk = [], [], []
            for e in range(first, min(first + chunk, email_count)):
                when = base + timedelta(seconds=e)
                email_id = str(e + 1)
                email_rows.append(
                    {
                        "received_at": when, "status": "processed", "reason": "", "code": None,
                        "email_id": email_id, "account_id": account_id, "keyid": KEYID,
                        "sender": "app@example.com", "envelope_from": "app@example.com",
                        "client_ip": "127.0.0.1", "message_id": f"<seed-{e}@bench>",
                        "subject": "envoi", "results": [], "warnings": [], "raw": b"",
                    }
                )  # fmt: skip
                email_row += 1
                count = min(SMS_PER_EMAIL, sms_rows - sent)
                group_rows.append(
                    {
                        "id": sent + 1, "last_id": sent + count, "email_row": email_row,
                        "account_id": account_id, "email_id": email_id, "created_at": when,
                        "channel": "mail",
                    }
                )  # fmt: skip
                for _ in range(count):
                    sent += 1
                    sms_rows_chunk.append(
                        {
                            "id": sent, "group_id": group_rows[-1]["id"],
                            "to": numbers[rng.randrange(NUMBER_POOL)], "sender": "MaSociete",
                            "text": text, "parts": 1, "encoding": "gsm7",
                            "tracker": f"campaign-{e % TRACKERS}", "state": "sent",
                            "due_at": None,
                        }
                    )  # fmt: skip
            con.execute("BEGIN")
            con.executemany(insert_email.sql, insert_email.values(email_rows))
            con.executemany(insert_group.sql, insert_group.values(group_rows))
            con.executemany(insert_sms.sql, insert_sms.values(sms_rows_chunk))
            con.execute("COMMIT")
        # What the writer keeps: the last SMS id given (tables.id_counters) and the SMS counts
        # (tables.sms_counts); the SMS of each number are entered below, as the writer would.
        con.execute("INSERT OR REPLACE INTO id_counters (name, last) VALUES ('sms', ?)", (sent,))
        con.execute(
            "INSERT INTO sms_counts (account_id, channel, total) "
            "SELECT account_id, channel, COUNT(*) FROM sms JOIN sms_groups AS g "
            "ON g.id = sms.group_id GROUP BY account_id, channel"
        )
        _enter_numbers(database)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return {
        "sms_rows": sms_rows,
        "emails": email_count,
        "seconds": time.monotonic() - started,
        "file_mib": database.stat().st_size / 2**20,
    }


def _enter_numbers(database: Path) -> None:
    """The seeded SMS entered in sms_to the way the writer enters its own (by_number.py)."""
    from sqlalchemy import create_engine

    from gateway.store import by_number

    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as conn:
            by_number.catch_up(conn, at_least=1)
    finally:
        engine.dispose()


def api_queries(
    gateway: Server, sms_rows: int, requests: int, seconds: float
) -> list[dict[str, Any]]:
    import httpx

    from bench.load import percentiles

    rng = random.Random(7)
    email_count = -(-sms_rows // SMS_PER_EMAIL)
    per_tracker = sms_rows // TRACKERS
    middle = sms_rows // 2  # a deep page: the SMS ids are 1…sms_rows

    def number() -> dict[str, Any]:
        return {"to": f"0613{rng.randrange(NUMBER_POOL):06d}"}

    def tracker() -> dict[str, Any]:
        return {"tracker": f"campaign-{rng.randrange(TRACKERS)}"}

    def email_id() -> dict[str, Any]:
        return {"email_id": str(rng.randrange(1, email_count + 1))}

    kinds: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("newest 100 (no filter)", dict),
        ("to=", number),
        ("tracker=", tracker),
        ("email_id=", email_id),
        ("account=", lambda: {"account": KEYID}),
        ("offset=1000", lambda: {"offset": 1000}),
        (f"before_id={middle}", lambda: {"before_id": middle}),
        (f"account= before_id={middle}", lambda: {"account": KEYID, "before_id": middle}),
        (f"tracker= offset={per_tracker // 2}", lambda: {**tracker(), "offset": per_tracker // 2}),
        (f"tracker= before_id={middle}", lambda: {**tracker(), "before_id": middle}),
        ("to= limit=1000", lambda: {**number(), "limit": 1000}),
        ("channel=mail", lambda: {"channel": "mail"}),
        # Kept for compatibility, not a target: skipping half a million rows costs their read.
        (f"offset={middle} (compat)", lambda: {"offset": middle}),
    ]
    rows: list[dict[str, Any]] = []
    with httpx.Client(base_url=gateway.api, timeout=120) as client:
        client.get("/api/v1/sms", params={"limit": 1})  # warm-up: first connection
        for label, params in kinds:
            latencies: list[float] = []
            totals: list[int] = []
            items = 0
            deadline = time.monotonic() + seconds
            while len(latencies) < requests and time.monotonic() < deadline:
                query = params()
                started = time.perf_counter()
                response = client.get("/api/v1/sms", params=query)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()
                body = response.json()
                totals.append(body["total"])
                items += len(body["items"])
            rows.append(
                {
                    "query": label,
                    "requests": len(latencies),
                    "latency_ms": percentiles(latencies),
                    "mean_total": sum(totals) / max(len(totals), 1),
                    "mean_items": items / max(len(latencies), 1),
                }
            )
            row = rows[-1]
            say(
                f"GET /api/v1/sms {label}: p50 {row['latency_ms']['p50']:.1f} ms, "
                f"p99 {row['latency_ms']['p99']:.1f} ms (total ≈ {row['mean_total']:.0f})"
            )
    return rows


def api_phase(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    database = folder / "api.db"
    config = write_config(folder / "api.toml", f"sqlite+aiosqlite:///{database}")
    db_upgrade(config)
    seeded = seed(database, args.sms_rows)
    say(f"seeded {seeded['sms_rows']} SMS in {seeded['seconds']:.1f}s")
    gateway = start_gateway("gateway-api", config, folder)
    try:
        queries = api_queries(gateway, args.sms_rows, args.api_requests, args.seconds)
        intake = stored_intake(args, gateway, seeded["sms_rows"])
        return {"seed": seeded, "queries": queries, "intake": intake, "memory": gateway.memory()}
    finally:
        gateway.stop()


def stored_intake(args: argparse.Namespace, gateway: Server, stored: int) -> list[dict[str, Any]]:
    """The 1- and 500-recipient loads of the throughput phase on that seeded database: what
    a sandbox that already holds `stored` SMS takes in (the writer's indexes are that large)."""
    rows: list[dict[str, Any]] = []
    ids = Ids()
    warm = run_load(warm_up(ids, args), [gateway])
    gateway.expected_sms += warm["ok"]
    reused = [s for s in SCENARIOS if s[1] in ("single", "numx") and s[2] == "reuse"]
    for label, kind, mode in reused:
        row = {"scenario": label, "stored": stored}
        row["gateway"] = run_load(load_spec(ids, kind, mode, args), [gateway])
        say(f"{label} over {stored} stored SMS → gateway: {brief(row['gateway'])}")
        rows.append(row)
    return rows


# PostgreSQL -------------------------------------------------------------------------------------


def postgres_phase(
    args: argparse.Namespace, folder: Path, sink_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    given: tuple[str, int | None] = (args.postgres, None)
    cluster = throwaway_cluster() if args.postgres == "auto" else contextlib.nullcontext(given)
    rows: list[dict[str, Any]] = []
    with cluster as (server_url, postmaster):
        for replicas in (1, 2):
            with throwaway_database(server_url) as url:
                config = write_config(folder / f"pg{replicas}.toml", url)
                db_upgrade(config)
                gateways: list[Server] = []
                try:
                    for n in range(replicas):
                        gateways.append(start_gateway(f"gateway-pg{replicas}-{n}", config, folder))
                    ids = Ids()
                    run_load(warm_up(ids, args), gateways)
                    for label, kind, mode in SCENARIOS[:3]:
                        spec = load_spec(ids, kind, mode, args)
                        result = run_load(spec, gateways, database_pid=postmaster)
                        sink = next(r["sink"] for r in sink_rows if r["scenario"] == label)
                        say(f"PostgreSQL ×{replicas} {label}: {brief(result)}")
                        rows.append(
                            {"replicas": replicas, "scenario": label, "gateway": result,
                             "sink": sink}
                        )  # fmt: skip
                finally:
                    for gateway in gateways:
                        gateway.stop()
    return rows
