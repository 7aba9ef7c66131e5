"""The report: the results of every phase as the tables and figures printed at the end."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from typing import Any

SMS_TARGET = 20_000  # SMS recorded per second expected from 500-recipient requests


_PROFILED = {
    "single": "1 rcpt, reused conns",
    "fresh": "1 rcpt, fresh conns",
    "numx": "500 rcpt numX, reused conns",
}


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


def _memory(memory: dict[str, float]) -> str:
    """The gateway's peak, plus its writer process's when it has one."""
    writer = memory.get("children_VmHWM", 0.0)
    return f"{memory['VmHWM']:.0f}" + (f"+{writer:.0f}" if writer else "")


def _writer_memory(memory: dict[str, float]) -> str:
    if not memory.get("children_VmHWM"):
        return ""
    return (
        f" (its writer process: VmRSS {memory['children_VmRSS']:.0f} MiB, peak "
        f"{memory['children_VmHWM']:.0f} MiB)"
    )


def _writer_cpu(result: dict[str, Any]) -> str:
    """The writer process's share of the gateway's CPU an email ("-" in results made before
    it was measured)."""
    value = result.get("server_children_cpu_ms_per_email")
    return "-" if value is None else f"{value:.2f}"


def _errors(result: dict[str, Any]) -> str:
    return str(sum(result["errors"].values()))


# Issue 15's ratio targets (gateway msg/s ÷ sink msg/s, the same load in the same run).
RATIO_TARGETS = {
    "1 rcpt, reused conns": 0.6,
    "1 rcpt, fresh conns": 0.8,
    "500 rcpt numX": 0.15,
    "500 rcpt CSV": 0.15,
}


def _rounds(rows: Sequence[dict[str, Any]]) -> str:
    """Per scenario over the rounds: the median ratio, its range, and the target."""
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if "round" in row:
            by_scenario.setdefault(row["scenario"], []).append(row)
    table = []
    for scenario, runs in by_scenario.items():
        ratios = [r["gateway"]["msgs_per_s"] / max(r["sink"]["msgs_per_s"], 1e-9) for r in runs]
        rates = [r["gateway"]["msgs_per_s"] for r in runs]
        cpu = [r["gateway"]["server_cpu_ms_per_email"] for r in runs]
        target = RATIO_TARGETS.get(scenario)
        median = statistics.median(ratios)
        table.append(
            [
                scenario,
                str(len(runs)),
                f"{median:.2f}",
                f"{min(ratios):.2f}–{max(ratios):.2f}",
                f"{statistics.median(rates):.0f}",
                f"{statistics.median(cpu):.2f}",
                "" if target is None else f"≥ {target}",
                "" if target is None else ("met" if median >= target else "NOT met"),
            ]
        )
    return "over the rounds (median of the gateway/sink ratios):\n" + _table(
        ["scenario", "rounds", "gw/sink", "range", "gw msg/s", "gw CPU ms/email", "target", ""],
        table,
    )


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    settings = results["settings"]
    out.append(
        f"mail2sms bench — {settings['started']}, {os.cpu_count()} CPUs, concurrency "
        f"{settings['concurrency']}, each run ≤ {settings['messages']} emails or "
        f"{settings['seconds']:g} s; latency = end of DATA → final reply; event loop "
        f"{settings.get('loop', 'asyncio')} (gateway and sinks)\n"
        "CPU check (a 2M-iteration Python loop, ms of CPU, start/end): "
        + "/".join(f"{c:.0f}" for c in settings["calibration_ms"])
        + "; 'others cores' = CPU the machine's other processes took during a run"
    )
    if "throughput" in results:
        rows = []
        rounds = max(row.get("round", 1) for row in results["throughput"])
        for row in results["throughput"]:
            gw, sink = row["gateway"], row["sink"]
            numbered = rounds > 1 and "round" in row
            rows.append(
                [
                    row["scenario"] + (f" #{row['round']}" if numbered else ""),
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
                    _writer_cpu(gw),
                    f"{100 * gw['server_main_thread_cpu_s'] / gw['elapsed']:.0f}",
                    f"{sink['server_cpu_ms_per_email']:.2f}",
                    _memory(gw["memory"][0]),
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
                    "gw CPU ms/email", "of it writer", "gw loop CPU %", "sink CPU ms/email",
                    "gw+writer VmHWM MiB",
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
        if any(row.get("round", 1) > 1 for row in results["throughput"]):
            out += ["", _rounds(results["throughput"])]
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
            f"peak (VmHWM) {rss['after']['VmHWM']:.0f} MiB"
            f"{_writer_memory(rss['after'])}; "
            f"gateway log {rss['log_bytes_per_email']:.0f} bytes/email",
        ]
    if results.get("http"):
        rows = [
            [
                row["scenario"],
                f"{row['gateway']['msgs_per_s']:.0f}",
                f"{row['sink']['msgs_per_s']:.0f}",
                _ratio(row["gateway"]["msgs_per_s"], row["sink"]["msgs_per_s"]),
                f"{row['gateway']['sms_per_s']:.0f}",
                _ms(row["gateway"], "p50"),
                _ms(row["gateway"], "p99"),
                _ms(row["sink"], "p50"),
                _ms(row["sink"], "p99"),
                f"{row['gateway']['server_cpu_ms_per_email']:.2f}",
                f"{row['sink']['server_cpu_ms_per_email']:.2f}",
                f"{row['gateway']['others_cores']:.1f}",
                _errors(row["gateway"]),
            ]
            for row in results["http"]
        ]
        out += [
            "",
            "HTTP API channel, gateway vs a minimal Starlette endpoint that parses the JSON",
            _table(
                [
                    "call", "gw calls/s", "sink calls/s", "gw/sink", "gw SMS/s", "gw p50 ms",
                    "gw p99 ms", "sink p50", "sink p99", "gw CPU ms/call", "sink CPU ms/call",
                    "others cores", "gw errors",
                ],
                rows,
            ),
        ]  # fmt: skip
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
        if api.get("intake"):
            out += [
                "",
                f"Intake on that database ({api['seed']['sms_rows']} SMS stored before), "
                "same loads as the throughput phase",
                _table(
                    ["scenario", "gw msg/s", "gw SMS/s", "gw p50 ms", "gw p99 ms",
                     "gw CPU ms/email", "others cores", "gw errors"],
                    [
                        [
                            row["scenario"],
                            f"{row['gateway']['msgs_per_s']:.0f}",
                            f"{row['gateway']['sms_per_s']:.0f}",
                            _ms(row["gateway"], "p50"),
                            _ms(row["gateway"], "p99"),
                            f"{row['gateway']['server_cpu_ms_per_email']:.2f}",
                            f"{row['gateway']['others_cores']:.2f}",
                            _errors(row["gateway"]),
                        ]
                        for row in api["intake"]
                    ],
                ),
            ]  # fmt: skip
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
        label = _PROFILED.get(kind, kind)
        out += [
            "",
            f"Profile (py-spy at 200 Hz, {label}, {prof['load']['msgs_per_s']:.0f}"
            f" msg/s while sampled): {prof['samples']} busy samples (+{prof['waiting_samples']}"
            " waiting in epoll, the aiosqlite queue or the writer's socket, left out);"
            " top 15 by own time",
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
