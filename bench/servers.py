"""The processes a benchmark measures: the gateway, the bare SMTP sink and a throwaway
PostgreSQL, each started and stopped here; the CPU and memory the kernel counts for them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
CLOCK = "2026-12-01T10:00:00+01:00"  # a Tuesday, 10:00 in Paris: quiet hours never refuse
KEYID = "bench"
START_TIMEOUT = 120.0
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TICK = os.sysconf("SC_CLK_TCK")


# Processes ------------------------------------------------------------------------------------


def clean_env() -> dict[str, str]:
    """Our environment without MAIL2SMS_* overrides: the bench's config file is the truth."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("MAIL2SMS_")}


def _proc_cpu(path: str) -> float:
    with open(path) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu(root: int) -> float:
    """CPU seconds of a process, its children that ended, and its live children (PostgreSQL)."""
    try:
        with open(f"/proc/{root}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    total = sum(int(v) for v in fields[11:15]) / TICK
    for pid in _children(root):
        with contextlib.suppress(OSError):
            total += _proc_cpu(f"/proc/{pid}/stat")
    return total


def system_busy() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK


def _status_memory(pid: int) -> dict[str, float]:
    found: dict[str, float] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


def _children(root: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == root:
                    found.append(int(entry.name))
    return found


@dataclass
class Server:
    """A gateway or sink subprocess we started, with its ports read from its first line."""

    name: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    smtp: tuple[str, int] = ("127.0.0.1", 0)
    http: tuple[str, int] = ("127.0.0.1", 0)
    api: str = ""
    expected_sms: int = 0  # SMS it answered 250 for, for the check against its API

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> tuple[float, float, float]:
        """CPU seconds of its main thread, of it with its children (the writer process), and
        of its children alone."""
        main = _proc_cpu(f"/proc/{self.pid}/task/{self.pid}/stat")
        own = _proc_cpu(f"/proc/{self.pid}/stat")
        tree = tree_cpu(self.pid)
        return main, tree, max(0.0, tree - own)

    def memory(self) -> dict[str, float]:
        """VmRSS and VmHWM (the peak) in MiB; with `children_` the same summed over its live
        child processes (the gateway's writer process)."""
        found = _status_memory(self.pid)
        children = [_status_memory(pid) for pid in _children(self.pid)]
        for key in ("VmRSS", "VmHWM"):
            found[f"children_{key}"] = sum(child.get(key, 0.0) for child in children)
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


def _spawn(name: str, args: Sequence[str], folder: Path, tree: Path = ROOT) -> Server:
    """`python <args>` in `tree`: `-m gateway` runs that checkout's code (bench/ab.py)."""
    out, err = folder / f"{name}.out", folder / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [PYTHON, *args], stdout=stdout, stderr=stderr, env=clean_env(), cwd=tree
        )
    return Server(name, process, out, err)


def start_sink(folder: Path, loop: str = "asyncio") -> Server:
    server = _spawn("sink", ["-m", "bench.sink", "--loop", loop], folder)
    match = server.wait_ready(r"sink: SMTP on ([\d.]+):(\d+)")
    server.smtp = (match.group(1), int(match.group(2)))
    return server


def start_http_sink(folder: Path, loop: str = "asyncio") -> Server:
    server = _spawn("http-sink", ["-m", "bench.http_sink", "--loop", loop], folder)
    match = server.wait_ready(r"http sink: HTTP on ([\d.]+):(\d+)")
    server.http = (match.group(1), int(match.group(2)))
    return server


def start_gateway(name: str, config: Path, folder: Path, tree: Path = ROOT) -> Server:
    server = _spawn(name, ["-m", "gateway", "--config", str(config), "serve"], folder, tree)
    match = server.wait_ready(r"SMTP on ([\d.]+):(\d+) .*\n.*API on (http://([\d.]+):(\d+))/")
    server.smtp = (match.group(1), int(match.group(2)))
    server.api = match.group(3)
    server.http = (match.group(4), int(match.group(5)))
    return server


def write_config(path: Path, database_url: str, event_loop: str = "asyncio") -> Path:
    """The gateway's settings for a run; runtime.event_loop written only when not the default
    (bench.ab runs revisions that predate the key)."""
    runtime = f'[runtime]\nevent_loop = "{event_loop}"\n' if event_loop != "asyncio" else ""
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
{runtime}[[accounts]]
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


def db_upgrade(config: Path, tree: Path = ROOT) -> None:
    subprocess.run(
        [PYTHON, "-m", "gateway", "--config", str(config), "db", "upgrade"],
        check=True,
        capture_output=True,
        env=clean_env(),
        cwd=tree,
        timeout=300,
    )


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
