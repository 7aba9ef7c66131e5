"""The image, checked without a Docker engine: the Dockerfile's instructions, its pip steps run
in fresh venvs from the locked wheels, and the lock files in step with pyproject.toml."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
WHEELHOUSE = ROOT / ".venv" / "wheelhouse"  # filled by `make` from the lock files
BASE = "python:3.11-slim"
KEYWORDS = {
    "FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE", "HEALTHCHECK",
    "ENTRYPOINT", "CMD", "ARG", "LABEL",
}  # fmt: skip


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, keyword: str) -> list[str]:
        return [args for word, args in self.instructions if word == keyword]


def parse(text: str) -> list[Stage]:
    """The Dockerfile's stages and their instructions (comments dropped, lines joined)."""
    stages: list[Stage] = []
    logical = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue  # a comment, also inside a continued instruction
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            keyword, _, args = logical.strip().partition(" ")
            keyword = keyword.upper()
            assert keyword in KEYWORDS, f"unexpected instruction {keyword}"
            if keyword == "FROM":
                base, _, name = args.partition(" AS ")
                stages.append(Stage(base.strip(), name.strip()))
            else:
                assert stages, f"{keyword} before FROM"
                stages[-1].instructions.append((keyword, " ".join(args.split())))
        logical = ""
    return stages


def _exec_form(args: str) -> list[str]:
    """A JSON-array argument (ENTRYPOINT ["mail2sms"]); the shell form is refused."""
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON) form, not {args!r}"
    return [str(item) for item in value]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def test_every_stage_starts_from_python_3_11_slim(stages: list[Stage]) -> None:
    assert [stage.base for stage in stages] == [BASE, BASE]


def test_the_image_runs_mail2sms_serve_as_a_user_that_is_not_root(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.arguments("USER")[-1] not in ("root", "0")
    assert _exec_form(final.arguments("ENTRYPOINT")[-1]) + _exec_form(
        final.arguments("CMD")[-1]
    ) == ["mail2sms", "serve"]


def test_the_image_exposes_smtp_and_http_and_keeps_data_in_a_volume(stages: list[Stage]) -> None:
    final = stages[-1]
    assert final.arguments("EXPOSE") == ["2525 8025"]
    (volume,) = (path for args in final.arguments("VOLUME") for path in _exec_form(args))
    assert volume == final.arguments("WORKDIR")[-1] + "/data"  # the default database's folder


def test_the_healthcheck_asks_healthz_with_python_alone(stages: list[Stage]) -> None:
    (check,) = stages[-1].arguments("HEALTHCHECK")
    _, _, command = check.partition(" CMD ")
    argv = _exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:8025/healthz'" in argv[2]


def test_dependencies_are_installed_only_from_the_locks_with_their_hashes(
    stages: list[Stage],
) -> None:
    installs = [cmd for stage in stages for cmd in stage.arguments("RUN") if "pip " in cmd]
    from_locks = [cmd for cmd in installs if " -r " in cmd]
    assert {cmd.rpartition(" -r ")[2] for cmd in from_locks} == {
        "requirements-build.lock",
        "requirements.lock",
    }
    assert all("--require-hashes" in cmd for cmd in from_locks)
    # Anything else installs this repository's own wheel, never a dependency.
    assert all("--no-deps" in cmd for cmd in installs if cmd not in from_locks)


def test_the_build_context_is_what_copy_needs_and_nothing_else(stages: list[Stage]) -> None:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert rules[0] == "*"  # everything is left out, then what the image needs is let in
    let_in = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    copied = {
        source
        for stage in stages
        for args in stage.arguments("COPY")
        if not args.startswith("--from=")
        for source in shlex.split(args)[:-1]
    }
    assert copied == let_in


def _run_stage(stage: Stage, root: Path, roots: dict[str, Path], env: dict[str, str]) -> None:
    """Play a stage's WORKDIR, COPY, ENV and pip RUN lines under `root`, with the fresh venv
    first on PATH standing for the image's Python (other RUN lines need the image)."""
    cwd = root
    for keyword, args in stage.instructions:
        if keyword == "WORKDIR":
            cwd = root / args.lstrip("/")
            cwd.mkdir(parents=True, exist_ok=True)
        elif keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
        elif keyword == "COPY":
            *sources, target = shlex.split(args)
            origin = ROOT
            if sources[0].startswith("--from="):
                origin = roots[sources.pop(0).removeprefix("--from=")]
            destination = cwd / target if not target.startswith("/") else root / target[1:]
            for source in sources:
                found = origin / source.lstrip("/")
                if found.is_dir():
                    shutil.copytree(found, destination, dirs_exist_ok=True)
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(found, destination)
        elif keyword == "RUN" and args.startswith("pip "):
            assert not re.search(r"(^|\s)/", args), f"an absolute path cannot be replayed: {args}"
            done = subprocess.run(
                ["sh", "-c", args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"


def test_the_install_steps_give_a_working_mail2sms(stages: list[Stage], tmp_path: Path) -> None:
    assert WHEELHOUSE.is_dir(), "run `make .venv/.installed-stamp`: it downloads the locked wheels"
    python = Path(sys.base_prefix) / "bin" / "python3"
    roots: dict[str, Path] = {}
    for number, stage in enumerate(stages):
        root, venv = tmp_path / f"stage{number}", tmp_path / f"venv{number}"
        subprocess.run([python, "-m", "venv", venv], check=True, timeout=60)
        env = {
            "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(tmp_path),
            "PIP_CONFIG_FILE": os.devnull,  # nothing of this machine's pip set-up
            "PIP_NO_INDEX": "1",  # offline: the locked wheels only
            "PIP_FIND_LINKS": str(WHEELHOUSE),
        }
        _run_stage(stage, root, roots, env)
        roots[stage.name or str(number)] = root
    done = subprocess.run(
        [venv / "bin" / "mail2sms", "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout


def _locked(path: Path) -> dict[str, tuple[str, int, set[str]]]:
    """name → (version, number of hashes, what it is required by) from a uv lock file."""
    entries: dict[str, tuple[str, int, set[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        pinned = re.match(r"([A-Za-z0-9._-]+)==([^ ;\\]+)", line)
        if pinned:
            name = canonicalize_name(pinned[1])
            entries[name] = (pinned[2], 0, set())
        elif name and "--hash=sha256:" in line:
            version, hashes, via = entries[name]
            entries[name] = (version, hashes + 1, via)
        elif name and line.strip().startswith("#"):
            entries[name][2].add(re.sub(r"^#\s*(via\b)?\s*", "", line.strip()))
    return entries


def _in_step(requirements: list[str], locked: dict[str, tuple[str, int, set[str]]]) -> None:
    for text in requirements:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in the lock: run `make lock`"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{requirement.name}=={version} does not meet {requirement}: run `make lock`"
        )
    assert all(hashes > 0 for _, hashes, _ in locked.values()), "a pin without its hash"


def test_requirements_lock_is_in_step_with_the_dependencies_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = _locked(ROOT / "requirements.lock")
    _in_step(project["dependencies"], locked)
    direct = {name for name, (_, _, via) in locked.items() if "mail2sms (pyproject.toml)" in via}
    wanted = {canonicalize_name(Requirement(text).name) for text in project["dependencies"]}
    assert direct == wanted, "pyproject.toml's dependencies changed: run `make lock`"


def test_requirements_build_lock_is_in_step_with_the_build_system() -> None:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]
    locked = _locked(ROOT / "requirements-build.lock")
    _in_step(build["requires"], locked)
    direct = {name for name, (_, _, via) in locked.items() if not via - {""}}
    assert direct == {canonicalize_name(Requirement(text).name) for text in build["requires"]}
