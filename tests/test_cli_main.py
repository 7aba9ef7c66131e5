"""The installed `mail2sms` command (gateway/cli/__init__.py): --config and -v anywhere, the
MAIL2SMS_* variables that are not settings, and user errors as one line (SPEC §13)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.tls import self_signed

MAIL2SMS = Path(sys.executable).with_name("mail2sms")  # the console script of pyproject.toml
LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) ")
# serve's start-up: one line per listener, then the database.
READY = re.compile(
    r"mail2sms: SMTP on .*\nmail2sms: web page and API on http://\S+/ .*\nmail2sms: database .*\n"
)
ADDRESS = "sms@config.test"  # the gateway address of the test's settings file


def _environment(**variables: str) -> dict[str, str]:
    """Ours without any MAIL2SMS_* variable, plus these."""
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MAIL2SMS_")}
    return {**environment, **variables}


def _run(cwd: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MAIL2SMS), *args],
        cwd=cwd,
        env=_environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _config(folder: Path, *lines: str) -> Path:
    """A settings file: free ports, a database in `folder`, our gateway address, then `lines`."""
    path = folder / "c.toml"
    path.write_text(
        "\n".join(
            [
                "[smtp]",
                "port = 0",
                f'gateway_addresses = ["{ADDRESS}"]',
                "[http]",
                "port = 0",
                "[database]",
                f'url = "sqlite+aiosqlite:///{folder / "c.db"}"',
                *lines,
            ]
        )
        + "\n"
    )
    return path


@dataclasses.dataclass
class Served:
    ready: str  # the start-up lines
    stdout: str = ""  # all of it, once stopped
    stderr: str = ""


@contextlib.contextmanager
def _serving(cwd: Path, *args: str, **variables: str) -> Iterator[Served]:
    """`mail2sms <args>` running until its start-up lines; then SIGTERM, exit 0, and the whole
    output in what it gave."""
    process = subprocess.Popen(
        [str(MAIL2SMS), *args],
        cwd=cwd,
        env=_environment(**variables),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        printed = b""
        deadline = time.monotonic() + 60
        while (left := deadline - time.monotonic()) > 0 and not READY.search(printed.decode()):
            if not select.select([process.stdout], [], [], left)[0]:
                break
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                break
            printed += chunk
        found = READY.search(printed.decode())
        if found is None:
            process.kill()
            _, errors = process.communicate(timeout=30)
            raise AssertionError(f"serve did not start: {printed!r}\n{errors.decode()[-3000:]}")
        served = Served(found.group(0))
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        rest, errors = process.communicate(timeout=30)
    served.stdout, served.stderr = (printed + rest).decode(), errors.decode()
    assert process.returncode == 0, served.stderr


def _user_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    """The one line of a user error, after checking that stderr holds nothing else (log
    records aside): no traceback, no second line."""
    assert done.returncode == status, (done.stdout, done.stderr)
    lines = [line for line in done.stderr.splitlines() if not LOG_RECORD.match(line)]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("mail2sms: ")
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


# --config and -v before or after the command ------------------------------------------------


@pytest.mark.parametrize("where", ["before", "after"])
def test_serve_reads_the_config_given_before_or_after_the_command(
    tmp_path: Path, where: str
) -> None:
    config = str(_config(tmp_path))
    args = ("--config", config, "serve") if where == "before" else ("serve", "--config", config)
    with _serving(tmp_path, *args) as served:
        assert f"(send to {ADDRESS};" in served.ready


@pytest.mark.parametrize(
    "args", ["--config {} db upgrade", "db --config {} upgrade", "db upgrade --config {}"]
)
def test_db_upgrade_reads_the_config_given_anywhere(tmp_path: Path, args: str) -> None:
    done = _run(tmp_path, *args.format(_config(tmp_path)).split())
    assert done.returncode == 0, done.stderr
    assert "mail2sms: database at revision" in done.stdout
    assert (tmp_path / "c.db").is_file()


def test_accounts_read_the_config_given_after_the_command(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    created = _run(tmp_path, "accounts", "--config", config, "create", "--keyid", "acme")
    assert created.returncode == 0, created.stderr
    listed = _run(tmp_path, "accounts", "list", "--json", "--config", config)
    assert [a["keyid"] for a in json.loads(listed.stdout)["items"]] == ["acme"]
    assert (tmp_path / "c.db").is_file()


def test_send_reads_the_config_given_after_the_command(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    done = _run(
        tmp_path, "send", "--to", "0601020304", "--text", "x", "--print", "--config", config
    )
    assert done.returncode == 0, done.stderr
    assert f"To: {ADDRESS}" in done.stdout


@pytest.mark.parametrize("args", ["-v db upgrade", "db -v upgrade", "db upgrade -v"])
def test_verbose_given_anywhere_logs(tmp_path: Path, args: str) -> None:
    done = _run(tmp_path, *args.split(), "--config", str(_config(tmp_path)))
    assert done.returncode == 0, done.stderr
    assert "Running upgrade" in done.stderr


def test_without_verbose_db_upgrade_only_names_the_database(tmp_path: Path) -> None:
    done = _run(tmp_path, "db", "upgrade", "--config", str(_config(tmp_path)))
    assert (done.returncode, done.stderr) == (
        0,
        f"mail2sms: database {tmp_path / 'c.db'} (SQLite)\n",
    )


@pytest.mark.parametrize("action", ["upgrade", "current"])
def test_db_names_an_sqlite_file_relative_to_where_it_runs(tmp_path: Path, action: str) -> None:
    done = _run(tmp_path, "db", action, MAIL2SMS_DATABASE__URL="sqlite+aiosqlite:///rel/g.db")
    assert done.returncode == 0, done.stderr
    assert done.stderr == f"mail2sms: database {tmp_path / 'rel' / 'g.db'} (SQLite)\n"


# MAIL2SMS_* variables -----------------------------------------------------------------------


def test_serve_ignores_mail2sms_variables_that_are_not_settings(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    with _serving(
        tmp_path, "--config", config, "serve", MAIL2SMS_HOME=str(tmp_path), MAIL2SMS_TOKEN="t"
    ) as served:
        assert f"(send to {ADDRESS};" in served.ready


def test_a_setting_variable_with_an_unknown_key_is_one_line_naming_it(tmp_path: Path) -> None:
    done = _run(tmp_path, "--config", str(_config(tmp_path)), "serve", MAIL2SMS_SMTP__PROT="1")
    line = _user_error(done, 2)
    assert "MAIL2SMS_SMTP__PROT: unknown key smtp.prot" in line


# User errors: one line naming the cause and the setting -------------------------------------


@pytest.mark.parametrize("command", ["serve", "db upgrade", "accounts list"])
def test_a_file_named_data_is_one_line_naming_database_url(tmp_path: Path, command: str) -> None:
    (tmp_path / "data").write_text("not a folder")
    line = _user_error(_run(tmp_path, *command.split()), 1)
    assert "cannot use database.url sqlite+aiosqlite:///data/gateway.db" in line
    assert "cannot create the folder data: File exists" in line
    assert "MAIL2SMS_DATABASE__URL" in line


def test_a_database_path_under_a_regular_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    url = f"sqlite+aiosqlite:///{tmp_path}/file/sub/g.db"
    line = _user_error(_run(tmp_path, "serve", MAIL2SMS_DATABASE__URL=url), 1)
    assert f"cannot use database.url {url}" in line
    assert "Not a directory" in line


def test_a_database_path_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}"
    line = _user_error(_run(tmp_path, "serve", MAIL2SMS_DATABASE__URL=url), 1)
    assert f"cannot use database.url {url} (unable to open database file)" in line


def test_an_unreachable_database_server_is_one_line_without_the_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        url = f"postgresql+asyncpg://user:s3cret@127.0.0.1:{probe.getsockname()[1]}/db"
        line = _user_error(_run(tmp_path, "serve", MAIL2SMS_DATABASE__URL=url), 1)
    assert "cannot use database.url postgresql+asyncpg://user:***@127.0.0.1:" in line
    assert "s3cret" not in line


def test_a_malformed_database_url_is_one_line(tmp_path: Path) -> None:
    url = "sqlite+aiosqlite://host:port/g.db"
    line = _user_error(_run(tmp_path, "db", "upgrade", MAIL2SMS_DATABASE__URL=url), 1)
    assert f"cannot use database.url {url}" in line


def test_a_taken_smtp_port_is_one_line_naming_the_setting(tmp_path: Path, taken_port: int) -> None:
    config = str(_config(tmp_path))
    done = _run(tmp_path, "--config", config, "serve", MAIL2SMS_SMTP__PORT=str(taken_port))
    line = _user_error(done, 2)
    assert f"smtp.port: cannot listen on 127.0.0.1:{taken_port}" in line
    assert "MAIL2SMS_SMTP__PORT" in line


def test_a_taken_http_port_is_one_line_naming_the_setting(tmp_path: Path, taken_port: int) -> None:
    config = str(_config(tmp_path))
    done = _run(tmp_path, "--config", config, "serve", MAIL2SMS_HTTP__PORT=str(taken_port))
    line = _user_error(done, 2)
    assert f"http.port {taken_port} on 127.0.0.1 is already in use" in line


def test_a_bad_setting_in_the_file_is_one_line_naming_it(tmp_path: Path) -> None:
    config = str(_config(tmp_path, "[limits]", "max_recipients = 'many'"))
    line = _user_error(_run(tmp_path, "--config", config, "serve"), 2)
    assert line == (
        f"mail2sms: invalid configuration: limits.max_recipients ({config}): a whole number "
        "(got 'many')"
    )


def test_an_unknown_key_in_the_file_suggests_the_known_one(tmp_path: Path) -> None:
    config = str(_config(tmp_path, "[relay]", "max_attempt = 3"))
    line = _user_error(_run(tmp_path, "--config", config, "serve"), 2)
    assert f"relay.max_attempt ({config}): unknown key, did you mean relay.max_attempts?" in line


def test_a_missing_config_file_points_to_the_config_command(tmp_path: Path) -> None:
    line = _user_error(_run(tmp_path, "--config", "nope.toml", "serve"), 2)
    assert line == (
        "mail2sms: config file nope.toml not found; `mail2sms config` prints every setting "
        "with its default, to start one from"
    )


# serve --smtp-port, --http-port, --db ------------------------------------------------------


def _port(ready: str, service: str) -> int:
    pattern = r"SMTP on [\d.]+:(\d+)" if service == "smtp" else r"API on http://[\d.]+:(\d+)/"
    found = re.search(pattern, ready)
    assert found is not None, ready
    return int(found.group(1))


@pytest.mark.parametrize("service", ["smtp", "http"])
def test_serve_port_options_win_over_the_settings(
    tmp_path: Path, taken_port: int, service: str
) -> None:
    variable = {f"MAIL2SMS_{service.upper()}__PORT": str(taken_port)}
    config = str(_config(tmp_path))
    with _serving(
        tmp_path, "serve", "--config", config, f"--{service}-port", "0", **variable
    ) as served:
        assert _port(served.ready, service) not in (0, taken_port)


@pytest.mark.parametrize("given", ["path", "url"])
def test_serve_db_option_wins_over_the_settings(tmp_path: Path, given: str) -> None:
    path = tmp_path / "other.db"
    db = str(path) if given == "path" else f"sqlite+aiosqlite:///{path}"
    with _serving(tmp_path, "serve", "--config", str(_config(tmp_path)), "--db", db):
        assert path.is_file()
    assert not (tmp_path / "c.db").exists()


def test_serve_db_option_with_an_unknown_driver_is_one_line_naming_it(tmp_path: Path) -> None:
    line = _user_error(_run(tmp_path, "serve", "--db", "mysql://db/x"), 2)
    assert line.startswith("mail2sms: --db: use sqlite+aiosqlite:///path/to/file.db or")


def test_serve_db_option_unusable_is_one_line_naming_its_url(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = _run(tmp_path, "serve", "--config", str(_config(tmp_path)), "--db", "file/g.db")
    line = _user_error(done, 1)
    assert "cannot use database.url sqlite+aiosqlite:///file/g.db" in line


# serve's start-up lines ---------------------------------------------------------------------


def test_serve_prints_one_line_per_listener_then_the_database(tmp_path: Path) -> None:
    config = str(_config(tmp_path))
    with _serving(tmp_path, "serve", "--config", config, "--db", "rel/g.db") as served:
        smtp, http, database = served.ready.splitlines()
        smtp_port, http_port = _port(served.ready, "smtp"), _port(served.ready, "http")
    assert smtp == (
        f"mail2sms: SMTP on 127.0.0.1:{smtp_port} (send to {ADDRESS}; STARTTLS off; AUTH off)"
    )
    web = f"http://127.0.0.1:{http_port}"
    assert http == f"mail2sms: web page and API on {web}/ (the provider's HTTP API: {web}/cgi-bin)"
    assert database == f"mail2sms: database {tmp_path / 'rel' / 'g.db'} (SQLite)"


def test_serve_says_nothing_twice_and_alembic_nothing(tmp_path: Path) -> None:
    with _serving(tmp_path, "serve", "--config", str(_config(tmp_path))) as served:
        pass
    assert served.stdout == served.ready
    assert "SMTP on" not in served.stderr
    assert "alembic" not in served.stderr


@pytest.mark.parametrize(
    ("lines", "said"),
    [
        (
            ["starttls = true", 'auth = "any"'],
            "STARTTLS on with a self-signed certificate; AUTH on: any login)",
        ),
        (
            ['tls_cert = "cert.pem"', 'tls_key = "key.pem"', "starttls = true"],
            "STARTTLS on with {folder}/cert.pem; AUTH off)",
        ),
        (
            ['auth = "accounts"', "auth_required = true"],
            "STARTTLS off; AUTH required: the accounts' logins)",
        ),
    ],
)
def test_serve_says_whether_starttls_and_auth_are_on(
    tmp_path: Path, lines: list[str], said: str
) -> None:
    certificate, key = self_signed(("localhost",))
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    config = _config(tmp_path).read_text().replace("[smtp]\n", "[smtp]\n" + "\n".join(lines) + "\n")
    (tmp_path / "c.toml").write_text(config)
    with _serving(tmp_path, "serve", "--config", "c.toml") as served:
        assert served.ready.splitlines()[0].endswith(said.format(folder=tmp_path))
