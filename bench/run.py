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
- http: the provider's HTTP API channel, `POST /cgi-bin/sms` (1 number) and `/smsmulti`
  (500 numbers), against a minimal Starlette endpoint that parses the JSON and answers
  (`bench.http_sink`), same load (`bench.http_load`).
- api: `GET /api/v1/sms` latencies on a database seeded directly with `--sms-rows` SMS, then
  the 1- and 500-recipient loads on that database (intake with that many SMS stored).
- abuse: an ordinary client's latency (SMTP and /healthz) alone, then while one party sends
  heavy mail (150,000-line CSVs, anonymous and authorised; 3.5 MB bodies): bench/abuse.py.
- postgres (with `--postgres URL|auto`): the 1- and 500-recipient figures on PostgreSQL for one
  and for two gateway replicas on one database, the load split across them.

Raw results go to bench/results/ (JSON, and the profile's collapsed stacks). This module reads
the options and runs the phases; bench/servers.py starts the processes, bench/phases.py (and
bench/profile.py) measure, bench/report.py prints the tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.abuse import abuse_phase, abuse_table
from bench.phases import (
    SCENARIOS,
    Ids,
    api_phase,
    calibrate,
    check_recorded,
    http_phase,
    load_spec,
    long_run,
    postgres_phase,
    run_load,
    throughput,
)
from bench.profile import profile
from bench.report import report
from bench.servers import ROOT, start_gateway, start_http_sink, start_sink, write_config
from gateway.config import EVENT_LOOPS

RESULTS = ROOT / "bench" / "results"
PHASES = ("throughput", "profile", "rss", "http", "api", "abuse", "postgres")


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
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="throughput: each scenario this many times, sink and gateway in turn, with the "
        "median ratio and its range against the targets (1)",
    )
    parser.add_argument(
        "--loop",
        choices=EVENT_LOOPS,
        default="asyncio",
        help="the event loop of the gateway and of both sinks alike (runtime.event_loop)",
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
    if not 1 <= args.rounds <= 20:
        parser.error(f"--rounds: from 1 to 20, not {args.rounds}")
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
        sink = start_sink(folder, args.loop)
        try:
            sink_rows: list[dict[str, Any]] = []
            local = {"throughput", "profile", "rss", "http"} & set(args.phases)
            if local:
                config = write_config(
                    folder / "gateway.toml",
                    f"sqlite+aiosqlite:///{folder / 'gateway.db'}",
                    args.loop,
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
                    if "http" in args.phases:
                        http_sink = start_http_sink(folder, args.loop)
                        try:
                            results["http"] = http_phase(args, http_sink, gateway)
                        finally:
                            http_sink.stop()
                finally:
                    gateway.stop()
            if "api" in args.phases:
                results["api"] = api_phase(args, folder)
            if "abuse" in args.phases:
                results["abuse"] = abuse_phase(folder, 5.0 if args.quick else 20.0)
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
    if "abuse" in results:
        print()
        print(abuse_table(results["abuse"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
