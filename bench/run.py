"""`make bench`: the gateway (full processing) against a bare aiosmtpd sink, same load, one table.

Everything runs in its own process on loopback: the gateway (`python -m gateway serve`, SQLite in
a temporary folder, frozen weekday clock, replies kept), the sink (`bench.sink`) and, for every
measured run, a load generator (`bench.load`). Phases (`--phases`):

- throughput: 1-recipient emails on reused and on fresh connections, 500-recipient requests
  (numX and CSV), then a paced load at half the gateway's measured maximum; each run against the
  sink and against the gateway, bounded by `--messages` and `--seconds`.
- profile: py-spy on the gateway under the 1-recipient, then the 500-recipient numX load;
  the top functions by own time (py-spy: `.venv/bin/pip install py-spy`, else skipped).
- rss: `--emails-for-rss` emails in one long run; the gateway's VmRSS over time and its VmHWM.
- api: `GET /api/v1/sms` latencies on a database seeded directly with `--sms-rows` SMS.
- postgres (with `--postgres URL|auto`): the 1- and 500-recipient figures on PostgreSQL for one
  and for two gateway replicas on one database, the load split across them.

Raw results go to bench/results/ (JSON, and the profile's collapsed stacks).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
CLOCK = "2026-12-01T10:00:00+01:00"  # a Tuesday, 10:00 in Paris: quiet hours never refuse
KEYID = "bench"
RECIPIENTS = 500  # limits.max_recipients, the most one request may carry
SMS_TARGET = 20_000  # SMS recorded per second expected from 500-recipient requests
START_TIMEOUT = 120.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TICK = os.sysconf("SC_CLK_TCK")
PHASES = ("throughput", "profile", "rss", "api", "postgres")


# Processes ------------------------------------------------------------------------------------


def _clean_env() -> dict[str, str]:
    """Our environment without MAIL2SMS_* overrides: the bench's config file is the truth."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("MAIL2SMS_")}


def _proc_cpu(path: str) -> float:
    with open(path) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process, its children that ended, and its live children (PostgreSQL)."""
    try:
        with open(f"/proc/{root}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    total = sum(int(v) for v in fields[11:15]) / TICK
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            child = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(child[1]) == root:
                total += (int(child[11]) + int(child[12])) / TICK
    return total


def _system_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


@dataclass
class Server:
    """A gateway or sink subprocess we started, with its ports read from its first line."""

    name: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    smtp: tuple[str, int] = ("127.0.0.1", 0)
    api: str = ""
    expected_sms: int = 0  # SMS it answered 250 for, for the check against its API

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> tuple[float, float]:
        """(main thread, whole process) CPU seconds so far."""
        total = _proc_cpu(f"/proc/{self.pid}/stat")
        main = _proc_cpu(f"/proc/{self.pid}/task/{self.pid}/stat")
        return main, total

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM (the peak) in MiB."""
        found: dict[str, float] = {}
        with open(f"/proc/{self.pid}/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0]) / 1024
        return found

    def wait_ready(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            match = re.search(pattern, self.out.read_text(errors="replace"))
            if match:
                return match
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        tail = self.err.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"{self.name} did not start; its stderr ends with:\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def _spawn(name: str, args: Sequence[str], folder: Path) -> Server:
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [PYTHON, *args], stdout=stdout, stderr=stderr, env=_clean_env(), cwd=ROOT
        )
    return Server(name, process, out, err)


def start_sink(folder: Path) -> Server:
    server = _spawn("sink", ["-m", "bench.sink"], folder)
    match = server.wait_ready(r"sink: SMTP on ([\d.]+):(\d+)")
    server.smtp = (match.group(1), int(match.group(2)))
    return server


def start_gateway(name: str, config: Path, folder: Path) -> Server:
    server = _spawn(name, ["-m", "gateway", "--config", str(config), "serve"], folder)
    match = server.wait_ready(r"SMTP on ([\d.]+):(\d+) .*API on (http://[\d.]+:\d+)/")
    server.smtp = (match.group(1), int(match.group(2)))
    server.api = match.group(3)
    return server


def write_config(path: Path, database_url: str) -> Path:
    path.write_text(
        f"""# Written by bench/run.py for one benchmark run.
[smtp]
host = "127.0.0.1"
port = 0
[http]
host = "127.0.0.1"
port = 0
[database]
url = "{database_url}"
[relay]
host = ""
[clock]
fixed = "{CLOCK}"
[[accounts]]
keyid = "{KEYID}"
login = "{KEYID}"
password = "{KEYID}"
company = "Bench"
domains = ["example.com"]
credit = 1000000000000000
senders = ["MaSociete"]
"""
    )
    return path


def db_upgrade(config: Path) -> None:
    subprocess.run(
        [PYTHON, "-m", "gateway", "--config", str(config), "db", "upgrade"],
        check=True,
        capture_output=True,
        env=_clean_env(),
        cwd=ROOT,
        timeout=300,
    )


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
    (and the CPU of the PostgreSQL server whose postmaster is `database_pid`, when known)."""
    spec = {**spec, "targets": [list(s.smtp) for s in servers]}
    before = [s.cpu() for s in servers]
    database_before = _tree_cpu(database_pid) if database_pid else 0.0
    busy_before, wall_before = _system_busy(), time.monotonic()
    samples: list[tuple[float, float]] = []
    generator = subprocess.Popen(
        [PYTHON, "-m", "bench.load", json.dumps(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_clean_env(),
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
    busy = _system_busy() - busy_before
    server_cpu = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    main_cpu = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    ok = max(result["ok"], 1)
    database_cpu = _tree_cpu(database_pid) - database_before if database_pid else 0.0
    if database_pid:
        result["database_cpu_ms_per_email"] = database_cpu / ok * 1000
    result.update(
        server=[s.name for s in servers],
        server_cpu_s=server_cpu,
        server_main_thread_cpu_s=main_cpu,
        server_cpu_ms_per_email=server_cpu / ok * 1000,
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


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _brief(result: dict[str, Any]) -> str:
    latency = result["latency_ms"]
    errors = f", errors {result['errors']}" if result["errors"] else ""
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
    for label, kind, mode in SCENARIOS:
        row: dict[str, Any] = {"scenario": label}
        for name, target in (("sink", sink), ("gateway", gateway)):
            row[name] = run_load(load_spec(ids, kind, mode, args), [target])
            _say(f"{label} → {name}: {_brief(row[name])}")
        gateway.expected_sms += row["gateway"]["ok"] * row["gateway"]["spec"]["recipients"]
        rows.append(row)
    rate = rows[0]["gateway"]["msgs_per_s"] / 2
    label = f"1 rcpt, paced {rate:.0f}/s (50%)"
    row = {"scenario": label, "rate": rate}
    messages = max(1, min(args.messages, int(rate * args.seconds)))
    for name, target in (("sink", sink), ("gateway", gateway)):
        spec = load_spec(ids, "single", "reuse", args, rate=rate, messages=messages)
        row[name] = run_load(spec, [target])
        _say(f"{label} → {name}: {_brief(row[name])}")
    gateway.expected_sms += row["gateway"]["ok"]
    rows.append(row)
    return rows


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


# Profile --------------------------------------------------------------------------------------


def _py_spy() -> str | None:
    for candidate in (Path(PYTHON).parent / "py-spy", shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def profile(
    args: argparse.Namespace, gateway: Server, ids: Ids, stem: Path
) -> dict[str, Any] | None:
    """py-spy on the gateway under the 1-recipient load, then under 500-recipient numX."""
    spy = _py_spy()
    if spy is None:
        _say("profile skipped: py-spy is not installed (.venv/bin/pip install py-spy)")
        return None
    run_load(warm_up(ids, args), [gateway])
    profiles: dict[str, Any] = {}
    for kind in ("single", "numx"):
        out = stem.with_name(f"{stem.name}-{kind}.txt")
        options = ["--rate", "200", "--format", "raw", "--threads", "--output", str(out)]
        recorder = subprocess.Popen(
            [spy, "record", *options, "--pid", str(gateway.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        try:
            result = run_load(load_spec(ids, kind, "reuse", args), [gateway])
        finally:
            recorder.send_signal(signal.SIGINT)
            try:
                _, stderr = recorder.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                _, stderr = recorder.communicate()
        if not out.exists():
            _say(f"profile failed: {stderr.decode(errors='replace')[-1000:]}")
            return None
        _say(f"profile load {kind} (under py-spy): {_brief(result)}")
        profiles[kind] = {"load": result, **summarise_profile(out)}
    return profiles


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


_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _where(path: str) -> str:
    """A short name for a source file: gateway/…, the package name, or the stdlib module."""
    marker = "site-packages/"
    if marker in path:
        return path.split(marker, 1)[1]
    if "/gateway/" in path:
        return "gateway/" + path.split("/gateway/", 1)[1]
    return re.sub(r"^.*/lib/python3\.\d+/", "", path)


def _bucket(where: str) -> str:
    if where.startswith("gateway/"):
        return "/".join(where.split("/")[:2]).removesuffix(".py")
    head = where.split("/", 1)[0].removesuffix(".py")
    return head if "/" in where or head.isidentifier() else where


# Leaves where a thread waits rather than works: py-spy counts a thread as busy while it is
# runnable, and on a loaded machine a thread woken from epoll or from the aiosqlite queue may
# wait for a CPU there. They are counted apart, not in the own-time table.
WAITS = ("EpollSelector.select (selectors.py", "_connection_worker_thread (aiosqlite/core.py:59)")


# Frames every busy sample of the event loop passes through: no news in an inclusive list.
ENTRY_POINTS = (
    "(gateway/cli/__init__.py)",
    "(gateway/cli/serve.py)",
    "(gateway/__main__.py)",
    "Service.run (gateway/service.py)",
)


def summarise_profile(path: Path) -> dict[str, Any]:
    """Own and inclusive samples per function, from py-spy's collapsed stacks (--threads)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    buckets: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = waiting = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        frames = frames[1:]  # the first names the thread
        if not frames or frames[-1].startswith(WAITS):
            waiting += count
            continue
        names = []
        for frame in frames:
            match = _FRAME.match(frame)
            if match is None:
                names.append((frame, frame))
                continue
            where = _where(match.group("file"))
            names.append((f"{match.group('function')} ({where})", where))
        total += count
        threads["aiosqlite thread" if "_connection_worker" in stack else "event loop"] += count
        leaf, leaf_where = names[-1]
        own[leaf] += count
        buckets[_bucket(leaf_where)] += count
        for name in {n for n, _ in names}:
            inclusive[name] += count

    def top(counter: Counter[str], n: int) -> list[dict[str, Any]]:
        return [
            {"function": name, "samples": c, "percent": 100 * c / max(total, 1)}
            for name, c in counter.most_common(n)
        ]

    return {
        "samples": total,
        "waiting_samples": waiting,
        "top_own": top(own, 30),
        "top_inclusive_gateway": top(
            Counter(
                {
                    k: v
                    for k, v in inclusive.items()
                    if "(gateway/" in k and not k.endswith(ENTRY_POINTS)
                }
            ),
            30,
        ),
        "top_inclusive": top(inclusive, 60),
        "own_by_package": top(buckets, 20),
        "threads": top(threads, 10),
        "raw": str(path),
    }


# The API on a big database ---------------------------------------------------------------------

SMS_PER_EMAIL = 10
NUMBER_POOL = 10_000
TRACKERS = 1000


def _sqlite_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed(database: Path, sms_rows: int) -> dict[str, Any]:
    """`sms_rows` SMS (10 per email) on one account, by executemany in big transactions."""
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
        cursor = con.execute(
            "INSERT INTO accounts (keyid, login, password, company, contact, phone, email,"
            " domains, senders, credit, nostop_allowed, quiet_hours_lifted,"
            " international_allowed, allowed_ips, blacklist, rate_limit, created_at)"
            " VALUES (?, ?, ?, 'Bench', '', '', '', '[\"example.com\"]', '[\"MaSociete\"]',"
            " 1000000000000000, 0, 0, 0, '[]', '[]', 0, ?)",
            (KEYID, KEYID, KEYID, _sqlite_time(base)),
        )
        account_id = cursor.lastrowid
        con.execute("COMMIT")
        chunk = 20_000
        sent = 0
        for first in range(0, email_count, chunk):
            emails, sms = [], []
            for e in range(first, min(first + chunk, email_count)):
                when = _sqlite_time(base + timedelta(seconds=e))
                email_id = str(e + 1)
                emails.append(
                    (e + 1, when, "processed", email_id, account_id, KEYID, f"<seed-{e}@bench>")
                )
                for _ in range(min(SMS_PER_EMAIL, sms_rows - sent)):
                    to = numbers[rng.randrange(NUMBER_POOL)]
                    sms.append(
                        (e + 1, account_id, to, "MaSociete", text, 1, "gsm7",
                         f"campaign-{e % TRACKERS}", email_id, when)
                    )  # fmt: skip
                    sent += 1
            con.execute("BEGIN")
            con.executemany(
                "INSERT INTO emails (id, received_at, status, reason, code, email_id, account_id,"
                " keyid, sender, envelope_from, client_ip, message_id, subject, results,"
                " warnings, raw) VALUES (?, ?, ?, '', NULL, ?, ?, ?, 'app@example.com',"
                " 'app@example.com', '127.0.0.1', ?, 'envoi', '[]', '[]', X'')",
                emails,
            )
            con.executemany(
                'INSERT INTO sms (email_row, account_id, "to", sender, text, parts, encoding,'
                " tracker, email_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                sms,
            )
            con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return {
        "sms_rows": sms_rows,
        "emails": email_count,
        "seconds": time.monotonic() - started,
        "file_mib": database.stat().st_size / 2**20,
    }


def api_queries(
    gateway: Server, sms_rows: int, requests: int, seconds: float
) -> list[dict[str, Any]]:
    import httpx

    from bench.load import percentiles

    rng = random.Random(7)
    email_count = -(-sms_rows // SMS_PER_EMAIL)
    per_tracker = sms_rows // TRACKERS

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
        (f"offset={sms_rows // 2}", lambda: {"offset": sms_rows // 2}),
        (f"tracker= offset={per_tracker // 2}", lambda: {**tracker(), "offset": per_tracker // 2}),
        ("to= limit=1000", lambda: {**number(), "limit": 1000}),
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
            _say(
                f"GET /api/v1/sms {label}: p50 {row['latency_ms']['p50']:.1f} ms, "
                f"p99 {row['latency_ms']['p99']:.1f} ms (total ≈ {row['mean_total']:.0f})"
            )
    return rows


def api_phase(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    database = folder / "api.db"
    config = write_config(folder / "api.toml", f"sqlite+aiosqlite:///{database}")
    db_upgrade(config)
    seeded = seed(database, args.sms_rows)
    _say(f"seeded {seeded['sms_rows']} SMS in {seeded['seconds']:.1f}s")
    gateway = start_gateway("gateway-api", config, folder)
    try:
        queries = api_queries(gateway, args.sms_rows, args.api_requests, args.seconds)
        return {"seed": seeded, "queries": queries, "memory": gateway.memory()}
    finally:
        gateway.stop()


# PostgreSQL -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[tuple[str, int | None]]:
    """A PostgreSQL 15 cluster in a temporary folder, run as the postgres user; yields its URL
    and its postmaster's pid."""
    folder = Path(tempfile.mkdtemp(prefix="mail2sms-bench-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def as_postgres(*command: str) -> None:
        subprocess.run(command, check=True, capture_output=True, user="postgres", timeout=180)

    try:
        as_postgres(
            str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E",
            "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c max_connections=200"
            " -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on"
        )
        as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
        try:
            yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", postmaster
        finally:
            as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_database(server_url: str) -> Iterator[str]:
    """A database of our own on that server (the URL's user needs CREATEDB), dropped after."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"mail2sms_bench_{os.getpid()}"
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(statement: str) -> None:
        connection = await asyncpg.connect(plain, timeout=30)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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
                        _say(f"PostgreSQL ×{replicas} {label}: {_brief(result)}")
                        rows.append(
                            {"replicas": replicas, "scenario": label, "gateway": result,
                             "sink": sink}
                        )  # fmt: skip
                finally:
                    for gateway in gateways:
                        gateway.stop()
    return rows


# The report -------------------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def _ms(result: dict[str, Any], key: str) -> str:
    value = result["latency_ms"].get(key)
    return "-" if value is None else f"{value:.1f}"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def _errors(result: dict[str, Any]) -> str:
    return str(sum(result["errors"].values()))


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    settings = results["settings"]
    out.append(
        f"mail2sms bench — {settings['started']}, {os.cpu_count()} CPUs, concurrency "
        f"{settings['concurrency']}, each run ≤ {settings['messages']} emails or "
        f"{settings['seconds']:g} s; latency = end of DATA → final reply\n"
        "CPU check (a 2M-iteration Python loop, ms of CPU, start/end): "
        + "/".join(f"{c:.0f}" for c in settings["calibration_ms"])
        + "; 'others cores' = CPU the machine's other processes took during a run"
    )
    if "throughput" in results:
        rows = []
        for row in results["throughput"]:
            gw, sink = row["gateway"], row["sink"]
            rows.append(
                [
                    row["scenario"],
                    f"{gw['msgs_per_s']:.0f}",
                    f"{sink['msgs_per_s']:.0f}",
                    _ratio(gw["msgs_per_s"], sink["msgs_per_s"]),
                    f"{gw['sms_per_s']:.0f}",
                    _ms(gw, "p50"),
                    _ms(gw, "p99"),
                    _ms(sink, "p50"),
                    _ms(sink, "p99"),
                    _ratio(gw["latency_ms"].get("p99", 0), sink["latency_ms"].get("p99", 0)),
                    f"{gw['server_cpu_ms_per_email']:.2f}",
                    f"{100 * gw['server_main_thread_cpu_s'] / gw['elapsed']:.0f}",
                    f"{sink['server_cpu_ms_per_email']:.2f}",
                    f"{gw['memory'][0]['VmHWM']:.0f}",
                    f"{gw['others_cores']:.1f}",
                    _errors(gw),
                ]
            )
        out += [
            "",
            "SQLite (WAL, synchronous=FULL), gateway vs bare aiosmtpd sink, same load",
            _table(
                [
                    "scenario", "gw msg/s", "sink msg/s", "gw/sink", "gw SMS/s",
                    "gw p50 ms", "gw p99 ms", "sink p50", "sink p99", "p99 gw/sink",
                    "gw CPU ms/email", "gw loop CPU %", "sink CPU ms/email", "gw VmHWM MiB",
                    "others cores",
                    "gw errors",
                ],
                rows,
            ),
        ]  # fmt: skip
        best = max(
            (r["gateway"]["sms_per_s"] for r in results["throughput"] if "500" in r["scenario"]),
            default=0.0,
        )
        verdict = "met" if best >= SMS_TARGET else "NOT met"
        driver = results["throughput"][0]["sink"]
        client_ms = driver["client_cpu_s"] / max(driver["ok"], 1) * 1000
        out.append(
            f"load generator: {client_ms:.2f} ms CPU per email (1 rcpt against the sink), "
            f"enough for ≈ {1000 / client_ms:.0f} msg/s on a free core"
        )
        out.append(f"500-recipient target ≥ {SMS_TARGET} SMS/s: best {best:.0f} → {verdict}")
        if "recorded" in results:
            rec = results["recorded"]
            out.append(
                f"check: {rec['sms_recorded']} SMS recorded for {rec['sms_expected']} expected; "
                f"{rec['emails_processed']}/{rec['emails']} emails processed"
            )
    if results.get("rss"):
        rss = results["rss"]
        load = rss["load"]
        out += [
            "",
            f"Memory: long run of {load['ok']} emails ({load['msgs_per_s']:.0f} msg/s): "
            f"VmRSS {rss['before']['VmRSS']:.0f} → {rss['after']['VmRSS']:.0f} MiB, "
            f"peak (VmHWM) {rss['after']['VmHWM']:.0f} MiB; "
            f"gateway log {rss['log_bytes_per_email']:.0f} bytes/email",
        ]
    if results.get("api"):
        api = results["api"]
        out += [
            "",
            f"GET /api/v1/sms with {api['seed']['sms_rows']} SMS stored "
            f"({api['seed']['file_mib']:.0f} MiB database, seeded in "
            f"{api['seed']['seconds']:.0f} s), sequential requests, limit 100 unless said",
            _table(
                ["query", "requests", "p50 ms", "p99 ms", "max ms", "total matched"],
                [
                    [
                        q["query"],
                        str(q["requests"]),
                        _ms(q, "p50"),
                        _ms(q, "p99"),
                        _ms(q, "max"),
                        f"{q['mean_total']:.0f}",
                    ]
                    for q in api["queries"]
                ],
            ),
        ]
    if results.get("postgres"):
        rows = []
        for row in results["postgres"]:
            gw, sink = row["gateway"], row["sink"]
            rows.append(
                [
                    f"{row['replicas']}",
                    row["scenario"],
                    f"{gw['msgs_per_s']:.0f}",
                    f"{gw['sms_per_s']:.0f}",
                    _ratio(gw["msgs_per_s"], sink["msgs_per_s"]),
                    _ms(gw, "p50"),
                    _ms(gw, "p99"),
                    f"{gw['server_cpu_ms_per_email']:.2f}",
                    f"{gw.get('database_cpu_ms_per_email', float('nan')):.2f}",
                    "/".join(f"{m['VmHWM']:.0f}" for m in gw["memory"]),
                    f"{gw['others_cores']:.1f}",
                    _errors(gw),
                ]
            )
        out += [
            "",
            "PostgreSQL (synchronous_commit=on), replicas on one database, load split",
            _table(
                [
                    "replicas", "scenario", "msg/s", "SMS/s", "vs sink", "p50 ms", "p99 ms",
                    "gw CPU ms/email", "pg CPU ms/email", "VmHWM MiB", "others cores", "errors",
                ],
                rows,
            ),
        ]  # fmt: skip
    for kind, prof in (results.get("profile") or {}).items():
        label = "1 rcpt" if kind == "single" else "500 rcpt numX"
        out += [
            "",
            f"Profile (py-spy at 200 Hz, {label}, reused conns, {prof['load']['msgs_per_s']:.0f}"
            f" msg/s while sampled): {prof['samples']} busy samples (+{prof['waiting_samples']}"
            " waiting in epoll or the aiosqlite queue, left out); top 15 by own time",
            _table(
                ["#", "own %", "function (file)"],
                [
                    [str(i), f"{t['percent']:.1f}", t["function"]]
                    for i, t in enumerate(prof["top_own"][:15], 1)
                ],
            ),
            "own time by package: "
            + ", ".join(
                f"{b['function']} {b['percent']:.0f}%" for b in prof["own_by_package"][:12]
            ),
            "threads: "
            + ", ".join(f"{b['function']} {b['percent']:.0f}%" for b in prof["threads"]),
            "inclusive (gateway): "
            + ", ".join(
                f"{b['function'].split(' (')[0]} {b['percent']:.0f}%"
                for b in prof["top_inclusive_gateway"][:12]
            ),
        ]
    out.append(f"\nraw results: {results['file']}")
    return "\n".join(out)


# Main --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the gateway against a bare aiosmtpd sink (see bench/run.py).",
    )
    parser.add_argument("--messages", type=int, help="emails per run at most (3000; quick 1000)")
    parser.add_argument("--seconds", type=float, help="seconds per run at most (20; quick 3)")
    parser.add_argument("--concurrency", type=int, default=16, help="SMTP clients (16)")
    parser.add_argument(
        "--emails-for-rss", type=int, help="emails in the long run for memory (100000; quick 10000)"
    )
    parser.add_argument(
        "--rss-seconds", type=float, help="time bound of that long run (1800; quick 15)"
    )
    parser.add_argument(
        "--sms-rows", type=int, help="SMS stored for the API figures (1000000; quick 100000)"
    )
    parser.add_argument(
        "--api-requests", type=int, help="requests per API query kind (200; quick 30)"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL|auto",
        help="also run on PostgreSQL: a postgresql+asyncpg:// server URL (a throwaway database "
        "is created there and dropped), or auto for a throwaway local cluster",
    )
    parser.add_argument("--quick", action="store_true", help="about a minute, smaller figures")
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated subset of {','.join(PHASES)} (default: all)",
    )
    args = parser.parse_args(argv)
    defaults = (
        {"messages": 1000, "seconds": 3.0, "emails_for_rss": 10_000, "rss_seconds": 15.0,
         "sms_rows": 100_000, "api_requests": 30}
        if args.quick
        else {"messages": 3000, "seconds": 20.0, "emails_for_rss": 100_000, "rss_seconds": 1800.0,
              "sms_rows": 1_000_000, "api_requests": 200}
    )  # fmt: skip
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        parser.error(f"--phases: unknown {sorted(unknown)}; known: {','.join(PHASES)}")
    if args.postgres is None and "postgres" in args.phases:
        args.phases.remove("postgres")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now().astimezone()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    results: dict[str, Any] = {
        "settings": {
            "started": started.isoformat(timespec="seconds"),
            **{k: v for k, v in vars(args).items() if k != "postgres"},
            "postgres": None if args.postgres is None else args.postgres.split("@")[-1],
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "calibration_ms": [calibrate()],
        },
        "file": str(RESULTS / f"bench-{stamp}.json"),
    }
    with tempfile.TemporaryDirectory(prefix="mail2sms-bench-") as tmp:
        folder = Path(tmp)
        sink = start_sink(folder)
        try:
            sink_rows: list[dict[str, Any]] = []
            local = {"throughput", "profile", "rss"} & set(args.phases)
            if local:
                config = write_config(
                    folder / "gateway.toml", f"sqlite+aiosqlite:///{folder / 'gateway.db'}"
                )
                gateway = start_gateway("gateway", config, folder)
                ids = Ids()
                try:
                    if "throughput" in args.phases:
                        results["throughput"] = sink_rows = throughput(args, sink, gateway, ids)
                        results["recorded"] = check_recorded(gateway)
                    if "profile" in args.phases:
                        results["profile"] = profile(
                            args, gateway, ids, RESULTS / f"profile-{stamp}"
                        )
                    if "rss" in args.phases:
                        results["rss"] = long_run(args, gateway, ids)
                finally:
                    gateway.stop()
            if "api" in args.phases:
                results["api"] = api_phase(args, folder)
            if "postgres" in args.phases:
                if not sink_rows:
                    sink_rows = [
                        {"scenario": label, "sink": run_load(load_spec(Ids(), k, m, args), [sink])}
                        for label, k, m in SCENARIOS[:3]
                    ]
                results["postgres"] = postgres_phase(args, folder, sink_rows)
        finally:
            sink.stop()
    results["settings"]["calibration_ms"].append(calibrate())
    Path(results["file"]).write_text(json.dumps(results, indent=1, default=str))
    print(report(results))
    return 0


def long_run(args: argparse.Namespace, gateway: Server, ids: Ids) -> dict[str, Any]:
    log_before = gateway.err.stat().st_size
    before = gateway.memory()
    spec = load_spec(
        ids, "single", "reuse", args, messages=args.emails_for_rss, seconds=args.rss_seconds
    )
    result = run_load(spec, [gateway], sample_every=2.0)
    _say(f"long run: {_brief(result)}")
    log_bytes = gateway.err.stat().st_size - log_before
    return {
        "before": before,
        "after": gateway.memory(),
        "load": result,
        "log_bytes_per_email": log_bytes / max(result["ok"], 1),
    }


if __name__ == "__main__":
    sys.exit(main())
