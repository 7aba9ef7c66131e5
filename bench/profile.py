"""The profile phase: py-spy on the gateway under load, its samples summed per function."""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.phases import Ids, brief, load_spec, run_load, say, warm_up
from bench.servers import PYTHON, Server


def _py_spy() -> str | None:
    for candidate in (Path(PYTHON).parent / "py-spy", shutil.which("py-spy")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def profile(
    args: argparse.Namespace, gateway: Server, ids: Ids, stem: Path
) -> dict[str, Any] | None:
    """py-spy on the gateway (and its writer process) under the 1-recipient load on reused
    and on fresh connections, then under 500-recipient numX."""
    spy = _py_spy()
    if spy is None:
        say("profile skipped: py-spy is not installed (.venv/bin/pip install py-spy)")
        return None
    run_load(warm_up(ids, args), [gateway])
    profiles: dict[str, Any] = {}
    for name, kind, connections in (
        ("single", "single", "reuse"),
        ("fresh", "single", "fresh"),
        ("numx", "numx", "reuse"),
    ):
        out = stem.with_name(f"{stem.name}-{name}.txt")
        options = ["--rate", "200", "--format", "raw", "--threads", "--output", str(out)]
        options.append("--subprocesses")  # the writer process too
        recorder = subprocess.Popen(
            [spy, "record", *options, "--pid", str(gateway.pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(1.0)
        try:
            result = run_load(load_spec(ids, kind, connections, args), [gateway])
        finally:
            recorder.send_signal(signal.SIGINT)
            try:
                _, stderr = recorder.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                _, stderr = recorder.communicate()
        if not out.exists():
            say(f"profile failed: {stderr.decode(errors='replace')[-1000:]}")
            return None
        say(f"profile load {name} (under py-spy): {brief(result)}")
        profiles[name] = {"load": result, **summarise_profile(out)}
    return profiles


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
WAITS = (
    "EpollSelector.select (selectors.py",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "SocketIO.readinto (socket.py",  # the writer process waiting for a batch
)


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
        processes = 0  # py-spy --subprocesses: "process …" frames, a child's after its parent's
        while processes < len(frames) and frames[processes].startswith("process "):
            processes += 1
        process = frames[processes - 1] if processes else ""
        frames = frames[processes + 1 :]  # then the thread
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
        if "writer_process" in process:
            threads["writer process"] += count
        elif "_connection_worker" in stack:
            threads["aiosqlite thread"] += count
        else:
            threads["event loop"] += count
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
