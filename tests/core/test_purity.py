"""The core stays pure: no I/O frameworks, no clock, no asyncio."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "gateway" / "core"
FORBIDDEN = {
    "asyncio",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "aiosmtpd",
    "aiosmtplib",
    "httpx",
    "socket",
    "os",
    "subprocess",
    "time",
}


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_imports_no_io(module: Path) -> None:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN


@pytest.mark.parametrize("module", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_core_module_never_reads_the_clock(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    for call in ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time("):
        assert call not in source
