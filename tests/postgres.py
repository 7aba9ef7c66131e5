"""A throwaway PostgreSQL 15 cluster for the test session, from the Debian binaries.

`initdb` + `pg_ctl` into a temporary folder, listening on 127.0.0.1 only (free port, unix
socket inside the folder), trust authentication, fsync on (the gateway promises durable
commits; initdb alone skips its own syncs, as the cluster is thrown away). PostgreSQL
refuses to run as root, so as root it runs as the `postgres` system user.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
_T = TypeVar("_T")


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to its end on a loop of its own, in a thread of its own, from sync code
    (never on the thread of a test's event loop, whose current loop asyncio.run would reset)."""
    results: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(asyncio.run(coroutine))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="postgres-setup")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


class PostgresServer:
    """A running cluster: `url(name)` for the gateway, `sql(...)` for set-up statements."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.socket_dir = folder / "socket"
        self.host = "127.0.0.1"
        self.port = port
        self._names = itertools.count(1)
        self._idle: list[str] = []

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run SQL with psql over TCP as the superuser; the output, or CalledProcessError."""
        command = [str(BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        command += ["-h", self.host, "-p", str(self.port), "-U", SUPERUSER, "-d", database]
        done = subprocess.run(
            [*command, "-c", statement], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )
        return done.stdout

    @contextmanager
    def database(self, *, migrated: bool = True) -> Iterator[str]:
        """Yields the gateway URL of an empty database `t_<n>`: at the current schema (as after
        `mail2sms db upgrade`) or, with `migrated=False`, a new one without any table.

        Creating and migrating a database costs about a second here (the copy of template1
        waits for fsyncs; dropping one, for a checkpoint), so a migrated database is emptied
        afterwards (TRUNCATE … RESTART IDENTITY) and handed to the next test: it is then as
        good as new. One a test has tampered with (a trigger left behind) or that cannot be
        emptied is left aside, like the unmigrated ones; all go with the cluster at the end.
        """
        if migrated and self._idle:
            name = self._idle.pop()
        else:
            name = f"t_{next(self._names)}"
            self.sql(f"CREATE DATABASE {name}")
            if migrated:
                run_async(_upgrade(self.url(name)))
        yield self.url(name)
        if migrated and self._empty(name):
            self._idle.append(name)

    def _empty(self, name: str) -> bool:
        try:
            tampered = self.sql(_EMPTY, name).strip()
        except subprocess.CalledProcessError:
            return False
        return tampered == "0"


# Every table but Alembic's, emptied with its sequences; then the triggers a test added.
_EMPTY = """
SET lock_timeout = '10s';
DO $$ BEGIN EXECUTE (
  SELECT 'TRUNCATE ' || string_agg(format('%I', tablename), ', ') || ' RESTART IDENTITY CASCADE'
  FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'); END $$;
SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal;
"""


async def _upgrade(url: str) -> None:
    """What `mail2sms db upgrade` does."""
    from gateway.store.engine import make_engine
    from gateway.store.migrate import upgrade

    engine = make_engine(url)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_owner(command: list[str]) -> list[str]:
    """PostgreSQL refuses root: as root, run it as the postgres system user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", SUPERUSER, "--", *command]
    return command


def _run(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        _as_owner(command), cwd=cwd, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def binaries_missing() -> str | None:
    """Why no cluster can be started here, or None."""
    missing = [name for name in ("initdb", "pg_ctl", "psql") if not (BIN / name).is_file()]
    if missing:
        return f"PostgreSQL 15 binaries {missing} not found in {BIN}"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root and `runuser` is missing to run PostgreSQL as its own user"
    return None


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start the cluster (skip, or fail under CI=true, when PostgreSQL is not installed)."""
    missing = binaries_missing()
    if missing is not None:
        fix = f"{missing}; install it: apt-get install postgresql"
        if os.environ.get("CI") == "true":
            pytest.fail(fix, pytrace=False)
        pytest.skip(fix)
    folder = Path(tempfile.mkdtemp(prefix="mail2sms-pg-"))
    try:
        folder.chmod(0o700)
        (folder / "socket").mkdir()
        if os.geteuid() == 0:
            for path in (folder, folder / "socket"):
                shutil.chown(path, SUPERUSER, SUPERUSER)
        server = PostgresServer(folder, _free_port())
        _run(
            [str(BIN / "initdb"), "--no-sync", "-D", str(server.data), "-A", "trust",
             "-U", SUPERUSER, "-E", "UTF8", "--locale=C"],
            folder,
        )
        options = (
            f"-c listen_addresses={server.host} -c port={server.port} "
            f"-c unix_socket_directories={server.socket_dir} "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200"
        )
        _run(
            [str(BIN / "pg_ctl"), "start", "-D", str(server.data), "-w", "-t", "60",
             "-l", str(folder / "server.log"), "-o", options],
            folder,
        )
        try:
            yield server
        finally:
            _run(
                [str(BIN / "pg_ctl"), "stop", "-D", str(server.data), "-m", "immediate", "-w"],
                folder,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
