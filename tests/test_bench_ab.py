"""bench/ab.py: the code at a revision against the working tree, alternating rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import ab


def _run(rate: float, p50: float) -> dict[str, Any]:
    return {
        "msgs_per_s": rate,
        "latency_ms": {"p50": p50, "p99": p50 * 3},
        "server_cpu_ms_per_email": 1000 / rate,
    }


def test_the_summary_is_the_geometric_mean_of_the_rounds_ratios() -> None:
    rounds = {
        "single": [
            {"a": _run(100, 2.0), "b": _run(200, 1.0)},
            {"a": _run(100, 4.0), "b": _run(50, 3.0)},
            {"a": _run(100, 3.0), "b": _run(125, 2.0)},
        ]
    }
    (header, line) = ab.summary(rounds).splitlines()
    assert header.startswith("load")
    # ratios 2, 0.5, 1.25: geometric mean 1.25 ** (1/3); b ahead in two rounds of three
    assert line.split()[:5] == ["single", "3", "1.077", "(+7.7", "%)"]
    assert "2/3" in line
    assert "3.00 /  2.00" in line  # p50 medians
    assert "9.0 /   6.0" in line  # p99 medians
    assert "10.00 / 8.00" in line  # CPU medians: 10, 10, 10 and 5, 20, 8


def test_unknown_loads_and_empty_bounds_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        ab.parse_args(["--kinds", "single,nope"])
    assert "--kinds: unknown nope; choose among single, fresh, numx, csv" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ab.parse_args(["--rounds", "0"])
    assert "must be positive" in capsys.readouterr().err


def test_an_unknown_revision_is_a_clear_error() -> None:
    with pytest.raises(SystemExit, match="cannot check out 'no-such-rev'"):
        ab.main(["no-such-rev", "--rounds", "1"])


def test_a_round_runs_both_gateways_and_keeps_what_it_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """HEAD's gateway (a worktree) and the working tree's, on the same small load."""
    options = ["--rounds", "1", "--kinds", "single", "--messages", "20", "--seconds", "5"]
    assert ab.main(["HEAD", *options, "--results", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "a = HEAD, b = the working tree; 1 rounds" in printed
    assert "round 1/1 single: a " in printed
    (saved,) = tmp_path.glob("ab-*.json")
    found = json.loads(saved.read_text())["rounds"]["single"]
    assert [(r["a"]["ok"], r["b"]["ok"]) for r in found] == [(20, 20)]
