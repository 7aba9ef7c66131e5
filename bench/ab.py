"""`python -m bench.ab REV`: the code at a git revision against the working tree, in alternating
rounds of the same load.

Why: this machine's speed drifts by ±20 % within minutes (bench/run.py's CPU check), so two
full runs minutes apart cannot tell a change of a few percent. Here two gateways run at once,
the revision's (from a temporary `git worktree`) and the working tree's, each with its own
database that grows alike; each round loads one and then the other (the order swapped every
round), and a change is the geometric mean over the rounds of the working tree's rate over the
revision's. `--control` runs the working tree against itself: the noise floor, what a change
must beat (on 2026-12-02, twelve rounds of 3 s: +4.5 % and +3.3 %, ahead in 8 and 9 of 12,
for no change at all). `--loop uvloop` runs the working tree's gateway on uvloop (with
`--control`: the same code on asyncio's loop, then on uvloop's).

Each load is bounded by `--messages` and `--seconds`, the number of rounds by `--rounds`; all
on loopback. Raw results go to bench/results/ab-<time>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.phases import Ids, load_spec, run_load, warm_up
from bench.servers import ROOT, Server, db_upgrade, start_gateway, write_config
from gateway.config import EVENT_LOOPS

# name on the command line → (load kind, connections)
KINDS = {
    "single": ("single", "reuse"),
    "fresh": ("single", "fresh"),
    "numx": ("numx", "reuse"),
    "csv": ("csv", "reuse"),
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ab",
        description="The code at REV against the working tree, alternating rounds (bench/ab.py).",
    )
    parser.add_argument("rev", nargs="?", default="HEAD", help="git revision (HEAD)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds (8)")
    parser.add_argument(
        "--kinds",
        default="single,fresh,csv",
        help=f"comma-separated loads among {','.join(KINDS)} (single,fresh,csv)",
    )
    parser.add_argument("--messages", type=int, default=3000, help="emails per load at most")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per load at most")
    parser.add_argument("--concurrency", type=int, default=16, help="SMTP clients (16)")
    parser.add_argument(
        "--control", action="store_true", help="the working tree against itself (A/A)"
    )
    parser.add_argument(
        "--loop",
        choices=EVENT_LOOPS,
        default="asyncio",
        help="the working tree's event loop (runtime.event_loop); the revision's is asyncio's: "
        "with --control, the working tree on each",
    )
    parser.add_argument(
        "--results", type=Path, default=ROOT / "bench" / "results", help="where the JSON goes"
    )
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        parser.error(f"--kinds: unknown {', '.join(unknown)}; choose among {', '.join(KINDS)}")
    if args.rounds < 1 or args.messages < 1 or args.seconds <= 0:
        parser.error("--rounds, --messages and --seconds must be positive")
    args.kinds = kinds
    return args


@contextlib.contextmanager
def checkout(rev: str, folder: Path) -> Iterator[Path]:
    """The revision in a worktree of its own, removed afterwards."""
    tree = folder / "rev"
    try:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"bench.ab: cannot check out {rev!r}: {exc.stderr.strip()}") from None
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
            check=False,
            capture_output=True,
        )


def _gateway(name: str, tree: Path, folder: Path, loop: str = "asyncio") -> Server:
    url = f"sqlite+aiosqlite:///{folder / name}.db"
    config = write_config(folder / f"{name}.toml", url, loop)
    db_upgrade(config, tree)
    return start_gateway(name, config, folder, tree)


def geometric_mean(values: Sequence[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values))


def measure(args: argparse.Namespace, a: Server, b: Server) -> dict[str, list[dict[str, Any]]]:
    ids = Ids()  # one sequence for both: every emailId is new to each database
    for gateway in (a, b):
        run_load(warm_up(ids, args), [gateway])
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in args.kinds}
    for number in range(args.rounds):
        order = (a, b) if number % 2 == 0 else (b, a)
        for kind in args.kinds:
            load, connections = KINDS[kind]
            found = {g.name: run_load(load_spec(ids, load, connections, args), [g]) for g in order}
            rounds[kind].append(found)
            ra, rb = found["a"]["msgs_per_s"], found["b"]["msgs_per_s"]
            print(
                f"round {number + 1}/{args.rounds} {kind}: a {ra:.0f}, b {rb:.0f} emails/s, "
                f"b/a {rb / ra:.3f}",
                flush=True,
            )
    return rounds


def summary(rounds: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "load    rounds  b/a (geometric mean)  b ahead  p50 ms a / b  p99 ms a / b  "
        "CPU ms/email a / b"
    ]
    for kind, found in rounds.items():
        ratios = [r["b"]["msgs_per_s"] / r["a"]["msgs_per_s"] for r in found]
        mean = geometric_mean(ratios)
        p50 = [_median(found, side, "latency_ms", "p50") for side in "ab"]
        p99 = [_median(found, side, "latency_ms", "p99") for side in "ab"]
        cpu = [_median(found, side, "server_cpu_ms_per_email") for side in "ab"]
        lines.append(
            f"{kind:7s} {len(found):6d}  {mean:.3f} ({(mean - 1) * 100:+.1f} %)"
            f"{sum(r > 1 for r in ratios):>13d}/{len(ratios)}"
            f"  {p50[0]:5.2f} / {p50[1]:5.2f}  {p99[0]:5.1f} / {p99[1]:5.1f}"
            f"  {cpu[0]:.2f} / {cpu[1]:.2f}"
        )
    return "\n".join(lines)


def _median(found: Sequence[dict[str, Any]], side: str, field: str, key: str = "") -> float:
    """The median over the rounds of one gateway's figure (`key` within `field`)."""
    values = [float(r[side][field][key] if key else r[side][field]) for r in found]
    return statistics.median(values)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="mail2sms-ab-") as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            tree = ROOT if args.control else stack.enter_context(checkout(args.rev, folder))
            a = _gateway("a", tree, folder)
            stack.callback(a.stop)
            b = _gateway("b", ROOT, folder, args.loop)
            stack.callback(b.stop)
            what = "the working tree twice (control)" if args.control else f"a = {args.rev}"
            if args.loop != "asyncio":
                what += f", b on {args.loop}"
            print(f"bench.ab: {what}, b = the working tree; {args.rounds} rounds", flush=True)
            rounds = measure(args, a, b)
    print(summary(rounds))
    out = args.results / f"ab-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {**vars(args), "results": str(args.results)}
    out.write_text(json.dumps({"settings": settings, "rounds": rounds}, indent=1))
    print(f"raw results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
